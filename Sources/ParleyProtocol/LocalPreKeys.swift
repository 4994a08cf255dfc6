import ParleyCrypto

/// A device's own prekey private keys (PROTOCOL.md §3.3). A value type: the session manager changes a
/// copy and the store commits it together with the session that consumed a key.
public struct LocalPreKeys: Sendable {
    public internal(set) var signedPreKeys: [UInt32: X25519.KeyPair] = [:]
    public internal(set) var currentSignedPreKeyId: UInt32 = 0
    public internal(set) var oneTimePreKeys: [UInt32: X25519.KeyPair] = [:]
    public internal(set) var lastResortPQPreKeys: [UInt32: MLKEM1024KEM.KeyPair] = [:]
    public internal(set) var currentLastResortPQPreKeyId: UInt32 = 0
    public internal(set) var oneTimePQPreKeys: [UInt32: MLKEM1024KEM.KeyPair] = [:]
    var nextId: UInt32 = 1

    public init() {}

    /// How many one-time prekeys of each kind a device keeps uploaded (Signal's server takes up to 100).
    public static let defaultOneTimeCount = 100

    private mutating func allocateId() -> UInt32 {
        defer { nextId &+= 1; if nextId == 0 { nextId = 1 } }
        return nextId
    }

    /// Makes a new signed prekey current, keeping only the previous one (for messages in flight).
    @discardableResult
    public mutating func rotateSignedPreKey(random: any RandomSource = SystemRandom()) -> UInt32 {
        let id = allocateId()
        let previous = currentSignedPreKeyId
        signedPreKeys = signedPreKeys.filter { $0.key == previous }
        signedPreKeys[id] = X25519.KeyPair(random: random)
        currentSignedPreKeyId = id
        return id
    }

    /// Makes a new last-resort PQ prekey current, keeping only the previous one.
    @discardableResult
    public mutating func rotateLastResortPQPreKey(random: any RandomSource = SystemRandom()) -> UInt32 {
        let id = allocateId()
        let previous = currentLastResortPQPreKeyId
        lastResortPQPreKeys = lastResortPQPreKeys.filter { $0.key == previous }
        lastResortPQPreKeys[id] = MLKEM1024KEM.KeyPair(random: random)
        currentLastResortPQPreKeyId = id
        return id
    }

    @discardableResult
    public mutating func generateOneTimePreKeys(_ count: Int, random: any RandomSource = SystemRandom()) -> [UInt32] {
        (0..<count).map { _ in
            let id = allocateId()
            oneTimePreKeys[id] = X25519.KeyPair(random: random)
            return id
        }
    }

    @discardableResult
    public mutating func generateOneTimePQPreKeys(_ count: Int, random: any RandomSource = SystemRandom()) -> [UInt32] {
        (0..<count).map { _ in
            let id = allocateId()
            oneTimePQPreKeys[id] = MLKEM1024KEM.KeyPair(random: random)
            return id
        }
    }

    /// A fresh set: one signed prekey, one last-resort PQ prekey, and `oneTime` of each one-time kind.
    public static func generate(oneTime: Int, random: any RandomSource = SystemRandom()) -> LocalPreKeys {
        var keys = LocalPreKeys()
        keys.rotateSignedPreKey(random: random)
        keys.rotateLastResortPQPreKey(random: random)
        keys.generateOneTimePreKeys(oneTime, random: random)
        keys.generateOneTimePQPreKeys(oneTime, random: random)
        return keys
    }

    /// The private keys a PreKeyMessage names, or an error naming the one that is missing.
    public func keys(for header: PreKeyHeader) throws(ProtocolError) -> (spk: X25519.KeyPair, opk: X25519.KeyPair?, pq: MLKEM1024KEM.KeyPair) {
        guard let spk = signedPreKeys[header.signedPreKeyId] else { throw .unknownPreKey("signed prekey \(header.signedPreKeyId)") }
        var opk: X25519.KeyPair?
        if header.oneTimePreKeyId != 0 {
            guard let key = oneTimePreKeys[header.oneTimePreKeyId] else { throw .unknownPreKey("one-time prekey \(header.oneTimePreKeyId)") }
            opk = key
        }
        let pqTable = header.pqKind == .oneTime ? oneTimePQPreKeys : lastResortPQPreKeys
        guard let pq = pqTable[header.pqPreKeyId] else { throw .unknownPreKey("post-quantum prekey \(header.pqPreKeyId)") }
        return (spk, opk, pq)
    }

    /// Deletes the one-time keys a session start used; called when that session's first message decrypted.
    public mutating func consume(_ header: PreKeyHeader) {
        if header.oneTimePreKeyId != 0 { oneTimePreKeys[header.oneTimePreKeyId] = nil }
        if header.pqKind == .oneTime { oneTimePQPreKeys[header.pqPreKeyId] = nil }
    }

    /// Builds a bundle signed by `identity`, taking one-time keys if any are left (and removing them from
    /// what will be offered next — as the relay does when a bundle is fetched). The private halves stay
    /// here until a PreKeyMessage uses them.
    public func bundle(identity: DeviceIdentity, oneTimePreKeyId: UInt32? = nil, oneTimePQPreKeyId: UInt32? = nil) -> PreKeyBundle {
        let spk = signedPreKeys[currentSignedPreKeyId]!.publicKey
        let (pqId, pqKind, pq): (UInt32, PQPreKeyKind, MLKEM1024KEM.PublicKey) =
            if let id = oneTimePQPreKeyId, let key = oneTimePQPreKeys[id] { (id, .oneTime, key.publicKey) }
            else { (currentLastResortPQPreKeyId, .lastResort, lastResortPQPreKeys[currentLastResortPQPreKeyId]!.publicKey) }
        let opk = oneTimePreKeyId.flatMap { oneTimePreKeys[$0] }
        return PreKeyBundle(
            identityKey: identity.publicKey, deviceId: identity.deviceId,
            signedPreKeyId: currentSignedPreKeyId, signedPreKey: spk,
            signedPreKeySignature: identity.keyPair.sign(KeyEncoding.encode(spk)),
            pqPreKeyId: pqId, pqKind: pqKind, pqPreKey: pq,
            pqPreKeySignature: identity.keyPair.sign(KeyEncoding.encode(pq)),
            oneTimePreKeyId: opk == nil ? 0 : oneTimePreKeyId!, oneTimePreKey: opk?.publicKey)
    }
}
