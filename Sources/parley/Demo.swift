import ArgumentParser
import ParleyCrypto
import ParleyProtocol

/// `parley demo`: the chat window against a relay and a guide bot, all in this process (see
/// DemoSession.swift). `--script` keeps the earlier non-interactive tour of the protocol layer: Alice (one
/// device) and Bob (two devices) start sessions, exchange messages and the relay's view of each envelope
/// is printed.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Try Parley: chat with a guide bot over an embedded relay, end-to-end encrypted.",
        discussion: """
            Starts a relay on 127.0.0.1 (a free port), creates your account and a guide bot's account in a \
            temporary directory, makes them contacts and opens the chat window with the guide's conversation. \
            Talk to the guide, verify its safety number (/verify), switch themes (/theme), then /quit: \
            everything is deleted (unless --keep).

            With --script, instead creates two accounts in memory (alice@demo with one device, bob@demo with \
            two), exchanges messages and prints, for every envelope, exactly what a relay would see. Nothing \
            is written to disk.
            """
    )

    @Flag(help: "Print the non-interactive protocol tour instead of opening the chat window.")
    var script = false

    @Option(name: .shortAndLong, help: "With --script: how many messages each side sends.")
    var messages: Int = 3

    @Flag(help: "Keep the demo's accounts and relay data (the directory is printed at the end).")
    var keep = false

    @Option(help: ArgumentHelp("Colour theme for the chat window.", valueName: "NAME"))
    var theme: String?

    @Option(help: ArgumentHelp("emacs or vi.", valueName: "KEYMAP"))
    var keymap: String?

    func validate() throws {
        guard (1...1000).contains(messages) else { throw ValidationError("--messages must be between 1 and 1000") }
    }

    func run() async throws {
        if !script {
            let options = try chatOptions(configPath: nil, theme: theme, keymap: keymap)
            try await DemoSession(keep: keep).run(options: options)
            return
        }
        let world = DemoWorld()
        let alice = world.account("alice@demo", devices: 1)
        let bob = world.account("bob@demo", devices: 2)
        try world.introduce(alice, bob)
        print("alice@demo: 1 device, bob@demo: 2 devices; sessions start with PQXDH (X25519 + ML-KEM-1024)\n")
        for round in 1...messages {
            try await exchange(from: alice[0], to: "bob@demo", text: "Hello Bob (\(round))", all: alice + bob)
            try await exchange(from: bob[1], to: "alice@demo", text: "Hi Alice (\(round))", all: alice + bob)
        }
        print("\nEvery message was encrypted once per recipient device and once per other device of the sender.")
    }

    private func exchange(from sender: DemoDevice, to peer: String, text: String, all: [DemoDevice]) async throws {
        let envelopes = try await sender.manager.send(Array(text.utf8), to: try AccountAddress(peer))
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
