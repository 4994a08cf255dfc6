import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// A sender certificate is signed by whoever holds its account key, and anyone can make one: its address
/// is refused when decoded unless it is an account address as written everywhere (issue #19, item 1).
@Suite struct SenderCertificateAddressTests {
    let accountKey = Ed25519.KeyPair(random: DeterministicRandom(label: "throw-away account"))
    let deviceKey = Ed25519.KeyPair(random: DeterministicRandom(label: "throw-away device")).publicKey

    private func certificate(_ address: String) -> [UInt8] {
        SenderCertificate.issue(address: address, accountKey: accountKey, deviceId: 1, deviceKey: deviceKey,
                                expiresAt: 1_900_000_000_000).encoded
    }

    @Test(arguments: [
        "\u{1B}]0;owned\u{7}ceo@relay.test",            // OSC 0: retitles the terminal
        "ceo@relay.test\u{1B}]52;c;ZWNobyBoaQ==\u{7}",   // OSC 52: writes the clipboard
        "x@y\r\u{1B}[2Kboss@relay.test: wire the money\u{1B}[8m",
        "ceo@relay.test\u{9B}31m",                       // C1 CSI
        "ceo@\u{202E}tset.yaler",                        // right-to-left override
        "ceo@relay.test\n", "CEO@relay.test", "ceo@Relay.Test", "ceo relay.test", "ceo@relay.test:0", "@relay.test", "",
    ])
    func decodingRefusesAnythingButAnAccountAddress(_ address: String) {
        #expect(throws: ProtocolError.self) { try SenderCertificate(decoding: certificate(address)) }
    }

    @Test(arguments: ["ceo@relay.test", "a.b-c_d@127.0.0.1:9", "bob@[::1]:8443"])
    func anAccountAddressDecodes(_ address: String) throws {
        #expect(try SenderCertificate(decoding: certificate(address)).address == address)
    }

    @Test func theRefusalDoesNotRepeatTheAddress() {
        do {
            _ = try SenderCertificate(decoding: certificate("ceo@relay.test\u{1B}[8m"))
            Issue.record("decoded")
        } catch {
            #expect(!String(describing: error).unicodeScalars.contains(where: PeerText.isDangerous))
        }
    }
}

@Suite struct PeerTextTests {
    static let hostile = "a\u{1B}]0;t\u{7}b\u{9B}c\u{85}d\u{202A}\u{202E}\u{2066}\u{2069}e\u{7F}f\r\ng"

    @Test func terminalTextCarriesNoControlOrOverride() {
        let shown = PeerText.forTerminal(Self.hostile)
        #expect(!shown.unicodeScalars.contains(where: PeerText.isDangerous))
        #expect(shown == "a^[]0;t^Gb\u{FFFD}c\u{FFFD}d\u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}e^?f^M^Jg")
        #expect(PeerText.forTerminal("line\nnext", multiline: true) == "line\n    next")
        #expect(PeerText.forTerminal("plain — ünïcode 🙂\ttab") == "plain — ünïcode 🙂\ttab")
    }

    @Test func jsonEscapingKeepsTheValueAndShowsNothingDangerous() {
        let json = "{\"from\":\"x\u{9B}y\u{202E}z\u{2028}\u{7F}\"}"
        let escaped = PeerText.escapingForJSON(json)
        #expect(escaped == "{\"from\":\"x\\u009by\\u202ez\\u2028\\u007f\"}")
        #expect(!escaped.unicodeScalars.contains(where: PeerText.isDangerous))
    }

    @Test func fileNamesCarryNoControlOrOverride() {
        #expect(PeerText.forFileName("invoice\u{202E}fdp.exe\u{1B}") == "invoice_fdp.exe_")
    }
}
