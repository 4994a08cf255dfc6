import ParleyCrypto

/// The old account key's statement that names the account's new key (PROTOCOL.md §3.5): the relay takes
/// a new account key only with it, and a contact's client shows that the old key signed the change. It
/// vouches for nothing more: a thief holding the old key can sign one too, so the new key is never
/// trusted because of it (the safety number changes and must be verified again).
public struct AccountKeyChange: Hashable, Sendable {
    /// The account's address, canonical text (as `AccountAddress.description` spells it).
    public let address: String
    public let oldKey: Ed25519.PublicKey
    public let newKey: Ed25519.PublicKey
    /// When the change was signed, milliseconds since the Unix epoch (informational: shown, not checked).
    public let signedAt: UInt64
    public let signature: [UInt8]

    /// Signs the change with the old key pair.
    public static func sign(address: String, oldKey: Ed25519.KeyPair, newKey: Ed25519.PublicKey, signedAt: UInt64) -> AccountKeyChange {
        let body = encodeBody(address: address, oldKey: oldKey.publicKey, newKey: newKey, signedAt: signedAt)
        let signature = LabelledSignature.sign(body, label: ProtocolConstants.signatureAccountKeyChange, with: oldKey)
        return AccountKeyChange(address: address, oldKey: oldKey.publicKey, newKey: newKey, signedAt: signedAt, signature: signature)
    }

    private init(address: String, oldKey: Ed25519.PublicKey, newKey: Ed25519.PublicKey, signedAt: UInt64, signature: [UInt8]) {
        self.address = address
        self.oldKey = oldKey
        self.newKey = newKey
        self.signedAt = signedAt
        self.signature = signature
    }

    /// Parses the statement and checks its signature under the old key it names. Whether that old key is
    /// the one the reader knows for the account, and whether the address is the one it asked for, is
    /// `check(address:oldKey:newKey:)`'s: a statement that verifies proves only that some key signed it.
    public init(verifying bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "AccountKeyChange")
        try r.version()
        guard let address = String(validating: try r.bytes16(), as: UTF8.self), !address.isEmpty else {
            throw .malformed("AccountKeyChange: the address is not UTF-8 text")
        }
        let old = try SignedDeviceList.ed25519(try r.raw(32))
        let new = try SignedDeviceList.ed25519(try r.raw(32))
        let signedAt = try r.u64()
        let signature = try r.raw(Ed25519.signatureLength)
        try r.finish()
        guard old != new else { throw .malformed("AccountKeyChange: the new key is the old key") }
        let body = Self.encodeBody(address: address, oldKey: old, newKey: new, signedAt: signedAt)
        guard LabelledSignature.verify(signature, body: body, label: ProtocolConstants.signatureAccountKeyChange, key: old) else {
            throw .badSignature("account key change")
        }
        self.init(address: address, oldKey: old, newKey: new, signedAt: signedAt, signature: signature)
    }

    /// Refuses a statement about another account, from another old key, or naming another new key.
    public func check(address expected: String, oldKey expectedOld: Ed25519.PublicKey, newKey expectedNew: Ed25519.PublicKey) throws(ProtocolError) {
        guard address == expected else { throw .senderMismatch("the key change is for \(address), not \(expected)") }
        guard oldKey == expectedOld else { throw .senderMismatch("the key change is signed by another key than the account's") }
        guard newKey == expectedNew else { throw .senderMismatch("the key change names another key than the account's new one") }
    }

    public var encoded: [UInt8] {
        Self.encodeBody(address: address, oldKey: oldKey, newKey: newKey, signedAt: signedAt) + signature
    }

    static func encodeBody(address: String, oldKey: Ed25519.PublicKey, newKey: Ed25519.PublicKey, signedAt: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 75 + address.utf8.count)
        w.u8(ProtocolConstants.version)
        w.bytes16(Array(address.utf8))
        w.raw(oldKey.bytes)
        w.raw(newKey.bytes)
        w.u64(signedAt)
        return w.bytes
    }
}
