import ParleyCrypto

/// Decodes a hex string; whitespace (including line breaks) is ignored so long vectors can be wrapped.
func hex(_ string: String) -> [UInt8] {
    let digits = Array(string.filter { !$0.isWhitespace }.utf8)
    precondition(digits.count % 2 == 0, "odd-length hex string")
    func nibble(_ c: UInt8) -> UInt8 {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return c - UInt8(ascii: "A") + 10
        default: preconditionFailure("not a hex digit: \(c)")
        }
    }
    return stride(from: 0, to: digits.count, by: 2).map { nibble(digits[$0]) << 4 | nibble(digits[$0 + 1]) }
}

/// Lower-case hex of some bytes, for readable `#expect` failures.
func hexString(_ bytes: some Sequence<UInt8>) -> String {
    let table = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    for b in bytes { out.append(table[Int(b >> 4)]); out.append(table[Int(b & 0x0f)]) }
    return String(decoding: out, as: UTF8.self)
}

/// Hex of a secret's bytes (tests only).
func hexString(_ secret: SecretBytes) -> String { hexString(secret.unprotectedBytes) }

func secret(_ hexDigits: String) -> SecretBytes { SecretBytes(hex(hexDigits)) }

func utf8(_ s: String) -> [UInt8] { Array(s.utf8) }
