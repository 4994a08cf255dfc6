import ParleyProtocol

/// Addresses of this relay's accounts as a group send names its recipients: up to `maxGroupRecipients` per
/// request, each parsed by `parseLocalAddress` (a general parser over Characters, a lower-casing and a new
/// String) was a measurable part of the relay's accepting a commit to 1,000 devices (issue #22, item 6).
/// An address already in the one form that parser returns unchanged is recognised from its bytes instead;
/// anything else still goes through the parser, so what is accepted, refused and returned is the same.
struct LocalAddressReader: Sendable {
    /// "@" and the relay's name, lower-cased; nil when that name is not itself a relay the address syntax
    /// accepts (every address would then take the parser, which refuses them).
    private let suffix: [UInt8]?

    init(relayName: String) {
        let lowered = relayName.lowercased()
        let parsed = try? AccountAddress("a@" + relayName)
        suffix = parsed?.relay == lowered && parsed?.name == "a" ? Array(("@" + lowered).utf8) : nil
    }

    /// `text` when it is `NAME@RELAY` with NAME 1–64 bytes of a–z, 0–9, '.', '_', '-' and RELAY exactly this
    /// relay's lower-cased name: `parseLocalAddress(text)` returns such a text as it is. Nil otherwise.
    func canonical(_ text: String) -> String? {
        guard let suffix else { return nil }
        let matches = text.utf8.withContiguousStorageIfAvailable { bytes -> Bool in
            let nameLength = bytes.count - suffix.count
            guard (1...64).contains(nameLength), bytes[nameLength...].elementsEqual(suffix) else { return false }
            return bytes[..<nameLength].allSatisfy(Self.isNameByte)
        }
        return matches == true ? text : nil
    }

    private static func isNameByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"): true
        default: false
        }
    }
}

extension RelayCore {
    /// A recipient's address as `parseLocalAddress` returns it, through `reader` when the text is already
    /// in that form.
    func parseLocalAddress(_ text: String, with reader: LocalAddressReader) throws -> String {
        if let canonical = reader.canonical(text) { return canonical }
        return try parseLocalAddress(text)
    }
}
