import ParleyProtocol
import ParleyRelayAPI
import Testing

/// Which account addresses parse: `name@host[:port]` with a host name, an IPv4 address or a bracketed IPv6
/// address; anything else is refused before it reaches a URL.
@Suite("Account addresses")
struct AccountAddressTests {
    @Test("accepted forms, and the parts they split into", arguments: [
        ("bob@relay.example", "relay.example", nil as Int?),
        ("bob@127.0.0.1:8443", "127.0.0.1", 8443),
        ("bob@[::1]:8443", "::1", 8443),
        ("bob@[fe80::1]", "fe80::1", nil),
        ("a.b_c-d@Relay-1.Example:1", "relay-1.example", 1),
    ])
    func accepted(_ text: String, _ host: String, _ port: Int?) throws {
        let address = try AccountAddress(text)
        #expect(address.host == host)
        #expect(address.port == port)
    }

    @Test("refused forms", arguments: [
        "bob@127.0.0.1:18443:1", "bob@::1", "bob@host:", "bob@host:0", "bob@host:65536", "bob@host:+80", "bob@:80",
        "bob@[::1", "bob@[::1]x", "bob@[]:80", "bob@[zz::1]", "bob@ho st", "bob@host/path", "bob@", "@host", "Bob@host",
        "bob@host@x", "bob", "bob@host:٨٠",
    ])
    func refused(_ text: String) {
        #expect(throws: AddressError.self) { try AccountAddress(text) }
    }

    @Test("loopback: 127.0.0.0/8 literals, ::1 and localhost; not a name that merely starts with 127.")
    func loopback() {
        for host in ["127.0.0.1", "127.1.2.3", "::1", "localhost"] { #expect(AccountAddress.isLoopback(host: host), "\(host)") }
        for host in ["127.evil.example", "127.0.0.1.nip.io", "128.0.0.1", "127.0.0", "127.0.0.256", "example.org"] {
            #expect(!AccountAddress.isLoopback(host: host), "\(host)")
        }
    }
}

