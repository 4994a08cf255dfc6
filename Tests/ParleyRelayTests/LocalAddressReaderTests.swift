import Foundation
@testable import ParleyRelay
import Testing

/// The byte check that reads a group send's recipients (`LocalAddressReader`) against the parser it stands in
/// for (`RelayCore.parseLocalAddress`): for every text, either the same address or the same refusal, and the
/// shortcut itself taken only for texts the parser returns unchanged.
@Suite("Local addresses read from their bytes")
struct LocalAddressReaderTests {
    static let names = ["relay.test", "Relay.Test", "127.0.0.1:8443", "relay-1.example.org:443", "[::1]:9000", "bad name", "a@b", ""]

    static let texts: [String] = {
        var texts = ["bob@relay.test", "b@relay.test", "bob.smith_2-x@relay.test", String(repeating: "a", count: 64) + "@relay.test",
                     String(repeating: "a", count: 65) + "@relay.test", "@relay.test", "Bob@relay.test", "bob@Relay.Test", "bob@RELAY.TEST",
                     "bob@relay.test.", "bob@relay.tes", "bob@relay.testx", "bob@@relay.test", "bob@relay.test@relay.test", "bö@relay.test",
                     "bob@relay.test:0", "bob@127.0.0.1:8443", "bob@127.0.0.1:08443", "bob@127.0.0.1", "bob@relay-1.example.org:443",
                     "bob@RELAY-1.example.org:443", "bob@[::1]:9000", "bob@[::1]", "bob relay.test", "bob@ relay.test", " bob@relay.test",
                     "bob\u{0}@relay.test", "bob@relay.test\u{0}", "", "@", "bob@", "b\u{301}@relay.test", "ｂob@relay.test", "bob@bad name"]
        for name in names { texts += ["x@" + name, "x@" + name.lowercased(), "x@" + name.uppercased()] }
        return texts
    }()

    static func core(name: String) throws -> RelayCore {
        let directory = try TemporaryDirectory("local-addresses")
        return RelayCore(configuration: RelayConfiguration(name: name, host: "127.0.0.1", port: 1, dataDirectory: directory.path),
                         storage: try SQLiteRelayStorage(path: directory.sub("relay.db")), broker: LocalWakeBroker())
    }

    @Test("the same address or the same refusal as parseLocalAddress, for every relay name and text", arguments: names)
    func sameAsTheParser(name: String) throws {
        let core = try Self.core(name: name)
        let reader = LocalAddressReader(relayName: name)
        for text in Self.texts {
            let parsed = Result { try core.parseLocalAddress(text) }
            let read = Result { try core.parseLocalAddress(text, with: reader) }
            switch (parsed, read) {
            case (.success(let a), .success(let b)): #expect(a == b, "\(text) at \(name)")
            case (.failure(let a), .failure(let b)): #expect("\(a)" == "\(b)", "\(text) at \(name)")
            default: Issue.record("\(text) at \(name): parser \(parsed), reader \(read)")
            }
            if let shortcut = reader.canonical(text) {
                #expect(shortcut == text && (try? core.parseLocalAddress(text)) == text, "the shortcut took \(text) at \(name)")
            }
        }
    }

    @Test("the shortcut is taken for this relay's canonical addresses")
    func shortcutTaken() {
        #expect(LocalAddressReader(relayName: "Relay.Test").canonical("bob_1.x-y@relay.test") == "bob_1.x-y@relay.test")
        #expect(LocalAddressReader(relayName: "127.0.0.1:8443").canonical("member12@127.0.0.1:8443") == "member12@127.0.0.1:8443")
        #expect(LocalAddressReader(relayName: "relay.test").canonical("bob@Relay.Test") == nil, "not canonical: left to the parser")
        #expect(LocalAddressReader(relayName: "bad name").canonical("bob@bad name") == nil)
    }
}
