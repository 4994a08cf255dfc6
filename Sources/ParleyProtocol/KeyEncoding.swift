import ParleyCrypto

/// `Encode(K)` of PROTOCOL.md §2: a type byte, then the raw public key.
public enum KeyEncoding {
    public static let x25519: UInt8 = 0x05
    public static let ed25519: UInt8 = 0x06
    public static let mlkem1024: UInt8 = 0x08

    public static func encode(_ key: X25519.PublicKey) -> [UInt8] { [x25519] + key.bytes }
    public static func encode(_ key: Ed25519.PublicKey) -> [UInt8] { [ed25519] + key.bytes }
    public static func encode(_ key: MLKEM1024KEM.PublicKey) -> [UInt8] { [mlkem1024] + key.bytes }
}

/// Signs `label ‖ 0x00 ‖ body` (PROTOCOL.md §1): labelled signatures can never be confused with each
/// other or with prekey signatures.
enum LabelledSignature {
    static func message(label: String, body: [UInt8]) -> [UInt8] { Array(label.utf8) + [0] + body }

    static func sign(_ body: [UInt8], label: String, with key: Ed25519.KeyPair) -> [UInt8] {
        key.sign(message(label: label, body: body))
    }

    static func verify(_ signature: [UInt8], body: [UInt8], label: String, key: Ed25519.PublicKey) -> Bool {
        key.isValidSignature(signature, for: message(label: label, body: body))
    }
}
