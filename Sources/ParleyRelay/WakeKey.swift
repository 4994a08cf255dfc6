import ParleyCrypto
import ParleyProtocol

/// The name a device is woken by across relay nodes (`PostgresWakeBroker`): the first 16 bytes of a
/// domain-separated hash of its address and device id, so a notification on the shared channel names no
/// account. In a notification's payload it is 32 lower-case hex digits after the action letter.
struct WakeKey: Hashable, Sendable {
    /// The 16 bytes as two big-endian words: hashed and compared without an array.
    private let high: UInt64
    private let low: UInt64

    init(_ device: DeviceAddress) {
        let digest = SHA256.hash(Array("parley-wake-v1\u{0}\(device.address)\u{0}\(device.deviceId)".utf8))
        high = Self.word(digest[0..<8])
        low = Self.word(digest[8..<16])
    }

    /// The key a payload names; nil unless `hex` is exactly 32 hex digits.
    init?(hex: Substring) {
        guard hex.utf8.count == 32, let bytes = Hex.decode(String(hex)) else { return nil }
        high = Self.word(bytes[0..<8])
        low = Self.word(bytes[8..<16])
    }

    var hex: String {
        Hex.encode(withUnsafeBytes(of: high.bigEndian) { Array($0) } + withUnsafeBytes(of: low.bigEndian) { Array($0) })
    }

    private static func word(_ bytes: ArraySlice<UInt8>) -> UInt64 { bytes.reduce(0) { $0 << 8 | UInt64($1) } }
}
