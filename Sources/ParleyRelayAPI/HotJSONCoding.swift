/// Appends compact JSON to a byte array (see `HotJSON`).
public struct HotJSONWriter {
    public private(set) var bytes: [UInt8] = []

    /// `expected`: about how many bytes the document will take (one allocation instead of several).
    init(expected: Int = 2048) { bytes.reserveCapacity(expected) }

    mutating func raw(_ text: StaticString) { text.withUTF8Buffer { bytes.append(contentsOf: $0) } }
    mutating func byte(_ value: UInt8) { bytes.append(value) }

    mutating func number(_ value: UInt64) {
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                      UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0, rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            repeat {
                buffer[19 - count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            } while rest > 0
            bytes.append(contentsOf: buffer[(20 - count)...])
        }
    }

    /// A JSON string: '"' and '\' escaped, control characters as \u00XX, everything else as its UTF-8.
    mutating func string(_ text: String) {
        bytes.append(UInt8(ascii: "\""))
        for unit in text.utf8 {
            switch unit {
            case UInt8(ascii: "\""), UInt8(ascii: "\\"):
                bytes.append(UInt8(ascii: "\\")); bytes.append(unit)
            case 0..<0x20:
                raw("\\u00")
                bytes.append(Base64.hexDigits[Int(unit >> 4)]); bytes.append(Base64.hexDigits[Int(unit & 0xF)])
            default:
                bytes.append(unit)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }

    /// Standard base64 with padding, in quotes (the alphabet needs no escaping).
    mutating func base64(_ data: [UInt8]) {
        bytes.append(UInt8(ascii: "\""))
        Base64.encode(data, into: &bytes)
        bytes.append(UInt8(ascii: "\""))
    }
}

/// Reads the compact JSON `HotJSONWriter` writes; every method answers nil (or false) for anything else.
public struct HotJSONReader {
    private let input: UnsafeRawBufferPointer
    private var index = 0

    init(_ input: UnsafeRawBufferPointer) { self.input = input }

    private var current: UInt8? { index < input.count ? input[index] : nil }

    private mutating func skipSpace() {
        while let byte = current, byte == 0x20 || byte == 0x0A || byte == 0x0D || byte == 0x09 { index += 1 }
    }

    private mutating func take(_ byte: UInt8) -> Bool {
        skipSpace()
        guard current == byte else { return false }
        index += 1
        return true
    }

    /// Only space may follow the value.
    mutating func atEnd() -> Bool {
        skipSpace()
        return index == input.count
    }

    /// `{ "key": value, … }`: `field` reads each value and says whether it was wanted and well formed.
    mutating func object(_ field: (String, inout HotJSONReader) -> Bool) -> Bool {
        guard take(UInt8(ascii: "{")) else { return false }
        if take(UInt8(ascii: "}")) { return true }
        repeat {
            guard let key = string(), take(UInt8(ascii: ":")), field(key, &self) else { return false }
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "}"))
    }

    mutating func array<Element>(_ element: (inout HotJSONReader) -> Element?) -> [Element]? {
        guard take(UInt8(ascii: "[")) else { return nil }
        var elements: [Element] = []
        if take(UInt8(ascii: "]")) { return elements }
        repeat {
            guard let value = element(&self) else { return nil }
            elements.append(value)
        } while take(UInt8(ascii: ","))
        return take(UInt8(ascii: "]")) ? elements : nil
    }

    /// A non-negative integer without fraction or exponent that fits 64 bits.
    mutating func number() -> UInt64? {
        skipSpace()
        let start = index
        var value: UInt64 = 0
        while let byte = current, byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            let (times10, overflow1) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflow2) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflow1, !overflow2 else { return nil }
            value = sum
            index += 1
        }
        let length = index - start
        guard length > 0, length == 1 || input[start] != UInt8(ascii: "0") else { return nil }
        if let byte = current, byte == UInt8(ascii: ".") || byte == UInt8(ascii: "e") || byte == UInt8(ascii: "E") { return nil }
        return value
    }

    mutating func bool() -> Bool? {
        skipSpace()
        if matches("true") { return true }
        if matches("false") { return false }
        return nil
    }

    private mutating func matches(_ word: StaticString) -> Bool {
        let count = word.utf8CodeUnitCount
        guard input.count - index >= count else { return false }
        let equal = word.withUTF8Buffer { expected in (0..<count).allSatisfy { input[index + $0] == expected[$0] } }
        if equal { index += count }
        return equal
    }

    /// The raw bytes between quotes, when no escape or control character is among them.
    private mutating func quoted() -> UnsafeRawBufferPointer? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let start = index
        while let byte = current, byte != UInt8(ascii: "\"") {
            guard byte != UInt8(ascii: "\\"), byte >= 0x20 else { return nil }
            index += 1
        }
        guard current != nil else { return nil }
        defer { index += 1 }
        return UnsafeRawBufferPointer(rebasing: input[start..<index])
    }

    mutating func string() -> String? {
        guard let bytes = quoted() else { return nil }
        return String(validating: bytes, as: UTF8.self)
    }

    mutating func base64() -> [UInt8]? {
        guard let text = quoted() else { return nil }
        return Base64.decodeCanonical(text)
    }
}

/// Standard base64 (RFC 4648 §4) with padding.
enum Base64 {
    static let alphabet = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
    static let hexDigits = Array("0123456789abcdef".utf8)
    /// Each byte's value in the alphabet, or 0xFF.
    static let values: [UInt8] = {
        var table = [UInt8](repeating: 0xFF, count: 256)
        for (value, symbol) in alphabet.enumerated() { table[Int(symbol)] = UInt8(value) }
        return table
    }()

    /// How long the encoding of `count` bytes is.
    static func encodedLength(_ count: Int) -> Int { (count + 2) / 3 * 4 }

    static func encode(_ data: [UInt8], into out: inout [UInt8]) {
        var index = 0
        while index + 3 <= data.count {
            let word = UInt32(data[index]) << 16 | UInt32(data[index + 1]) << 8 | UInt32(data[index + 2])
            out.append(alphabet[Int(word >> 18)]); out.append(alphabet[Int(word >> 12 & 63)])
            out.append(alphabet[Int(word >> 6 & 63)]); out.append(alphabet[Int(word & 63)])
            index += 3
        }
        switch data.count - index {
        case 1:
            let word = UInt32(data[index]) << 16
            out.append(alphabet[Int(word >> 18)]); out.append(alphabet[Int(word >> 12 & 63)])
            out.append(UInt8(ascii: "=")); out.append(UInt8(ascii: "="))
        case 2:
            let word = UInt32(data[index]) << 16 | UInt32(data[index + 1]) << 8
            out.append(alphabet[Int(word >> 18)]); out.append(alphabet[Int(word >> 12 & 63)])
            out.append(alphabet[Int(word >> 6 & 63)]); out.append(UInt8(ascii: "="))
        default:
            break
        }
    }

    /// The bytes of canonical padded base64 (the unused bits of the last symbol zero), else nil.
    static func decodeCanonical(_ text: UnsafeRawBufferPointer) -> [UInt8]? {
        guard text.count % 4 == 0 else { return nil }
        if text.isEmpty { return [] }
        let padding = text[text.count - 1] == UInt8(ascii: "=") ? (text[text.count - 2] == UInt8(ascii: "=") ? 2 : 1) : 0
        var out = [UInt8]()
        out.reserveCapacity(text.count / 4 * 3)
        let values = Self.values
        var index = 0
        while index < text.count {
            let last = index + 4 == text.count
            let symbols = last ? 4 - padding : 4
            var word: UInt32 = 0
            for offset in 0..<4 {
                var value: UInt8 = 0
                if offset < symbols {
                    value = values[Int(text[index + offset])]
                    guard value != 0xFF else { return nil }
                }
                word = word << 6 | UInt32(value)
            }
            out.append(UInt8(word >> 16))
            if symbols >= 3 { out.append(UInt8(word >> 8 & 0xFF)) } else if word & 0xFFFF != 0 { return nil }
            if symbols == 4 { out.append(UInt8(word & 0xFF)) } else if word & 0xFF != 0 { return nil }
            index += 4
        }
        return out
    }
}
