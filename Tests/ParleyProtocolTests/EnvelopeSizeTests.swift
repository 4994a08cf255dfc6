import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// `EnvelopeSize` against envelopes the session manager really makes: a sender refuses a message by these
/// figures before encrypting it, so they must be exact.
@Suite struct EnvelopeSizeTests {
    /// A session start from an account with a long address (the certificate inside the envelope carries it).
    private func firstEnvelope(contentBytes: Int, from sender: String) async throws -> [UInt8] {
        let world = TestWorld()
        let alice = world.account(sender)
        let bob = world.account("bob@relay.test")
        world.introduce(alice, bob)
        let envelope = try bob[0].envelope(in: try await alice[0].manager.send([UInt8](repeating: 0x61, count: contentBytes),
                                                                               to: "bob@relay.test"))
        #expect(try bob[0].peek(envelope).message.isPreKey)
        return envelope.envelope
    }

    @Test(arguments: [0, 1, 159, 160, 1_000, 20_000])
    func sessionStartMatchesRealEnvelopes(contentBytes: Int) async throws {
        for sender in ["a@r.test", String(repeating: "n", count: 64) + "@" + String(repeating: "h", count: 60) + ".example:65535"] {
            let envelope = try await firstEnvelope(contentBytes: contentBytes, from: sender)
            #expect(envelope.count == EnvelopeSize.sessionStart(contentBytes: contentBytes, senderAddressBytes: sender.utf8.count))
        }
    }

    @Test func largestContentIsTheLastThatFits() {
        for limit in [4096, 10_000, 96 * 1024] {
            for addressBytes in [8, 200] {
                let largest = EnvelopeSize.largestContent(within: limit, senderAddressBytes: addressBytes)
                #expect(EnvelopeSize.sessionStart(contentBytes: largest, senderAddressBytes: addressBytes) <= limit)
                #expect(EnvelopeSize.sessionStart(contentBytes: largest + 1, senderAddressBytes: addressBytes) > limit)
            }
        }
        #expect(EnvelopeSize.largestContent(within: 100, senderAddressBytes: 8) == 0)
    }
}
