import ArgumentParser
import ParleyCrypto
import ParleyProtocol

/// `parley demo`: what the protocol layer does, end to end, in one process. Alice (one device) and Bob (two
/// devices) start sessions, exchange messages and the relay's view of each envelope is shown. The full
/// demo with a relay and the curses client replaces this as those land.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Run an in-process demonstration of Parley's end-to-end encryption.",
        discussion: """
            Creates two accounts in memory (alice@demo with one device, bob@demo with two), starts PQXDH \
            sessions, exchanges messages in both directions and prints, for every envelope, exactly what a \
            relay would see: the recipient device and the envelope size. Nothing is written to disk.
            """
    )

    @Option(name: .shortAndLong, help: "How many messages each side sends.")
    var messages: Int = 3

    func validate() throws {
        guard (1...1000).contains(messages) else { throw ValidationError("--messages must be between 1 and 1000") }
    }

    func run() async throws {
        let world = DemoWorld()
        let alice = world.account("alice@demo", devices: 1)
        let bob = world.account("bob@demo", devices: 2)
        world.introduce(alice, bob)
        print("alice@demo: 1 device, bob@demo: 2 devices; sessions start with PQXDH (X25519 + ML-KEM-1024)\n")
        for round in 1...messages {
            try await exchange(from: alice[0], to: "bob@demo", text: "Hello Bob (\(round))", all: alice + bob)
            try await exchange(from: bob[1], to: "alice@demo", text: "Hi Alice (\(round))", all: alice + bob)
        }
        print("\nEvery message was encrypted once per recipient device and once per other device of the sender.")
    }

    private func exchange(from sender: DemoDevice, to peer: String, text: String, all: [DemoDevice]) async throws {
        let envelopes = try await sender.manager.send(Array(text.utf8), to: peer)
        print("\(sender.address) → \(peer): \"\(text)\"")
        for envelope in envelopes {
            guard let recipient = all.first(where: { $0.address == envelope.recipient }) else { continue }
            let received = try await recipient.manager.receive(envelope.envelope)
            let kind = received.startedSession ? "session start" : "ratchet message"
            print("  relay sees: to \(envelope.recipient), \(envelope.envelope.count) bytes" +
                  " → \(recipient.address) reads \"\(String(decoding: received.content, as: UTF8.self))\" (\(kind))")
        }
    }
}
