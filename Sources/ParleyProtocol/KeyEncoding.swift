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

    /// Checks the signature, remembering exact (label, key, body, signature) inputs that verified: device
    /// lists and sender certificates are checked again every time they are read or arrive (every message
    /// of a sender carries the same certificate), and the same bytes always give the same answer.
    static func verify(_ signature: [UInt8], body: [UInt8], label: String, key: Ed25519.PublicKey) -> Bool {
        let checked = VerifiedSignatures.Entry(label: label, key: key.bytes, body: body, signature: signature)
        if VerifiedSignatures.shared.contains(checked) { return true }
        guard key.isValidSignature(signature, for: message(label: label, body: body)) else { return false }
        VerifiedSignatures.shared.insert(checked)
        return true
    }
}

/// A bounded set of signature checks that succeeded (emptied when full).
final class VerifiedSignatures: @unchecked Sendable {
    struct Entry: Hashable {
        let label: String
        let key: [UInt8]
        let body: [UInt8]
        let signature: [UInt8]
    }

    static let shared = VerifiedSignatures()
    private static let capacity = 4096
    private var entries: Set<Entry> = []
    private let lock = Lock()

    func contains(_ entry: Entry) -> Bool { lock.withLock { entries.contains(entry) } }

    func insert(_ entry: Entry) {
        lock.withLock {
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries.insert(entry)
        }
    }
}
