import ParleyCrypto

public enum PQPreKeyKind: UInt8, Sendable {
    case oneTime = 0x01
    case lastResort = 0x02
}

/// The public keys an initiator needs to start a session with one device (PROTOCOL.md §3.3).
/// Parsing checks the layout only; `verifySignatures()` checks the prekeys against the device key.
public struct PreKeyBundle: Equatable, Sendable {
    public let identityKey: Ed25519.PublicKey
    public let deviceId: UInt32
    public let signedPreKeyId: UInt32
    public let signedPreKey: X25519.PublicKey
    public let signedPreKeySignature: [UInt8]
    public let pqPreKeyId: UInt32
    public let pqKind: PQPreKeyKind
    public let pqPreKey: MLKEM1024KEM.PublicKey
    public let pqPreKeySignature: [UInt8]
    public let oneTimePreKeyId: UInt32
    public let oneTimePreKey: X25519.PublicKey?

    public init(identityKey: Ed25519.PublicKey, deviceId: UInt32,
                signedPreKeyId: UInt32, signedPreKey: X25519.PublicKey, signedPreKeySignature: [UInt8],
                pqPreKeyId: UInt32, pqKind: PQPreKeyKind, pqPreKey: MLKEM1024KEM.PublicKey, pqPreKeySignature: [UInt8],
                oneTimePreKeyId: UInt32 = 0, oneTimePreKey: X25519.PublicKey? = nil) {
        precondition((oneTimePreKeyId == 0) == (oneTimePreKey == nil), "one-time prekey id 0 means none")
        self.identityKey = identityKey
        self.deviceId = deviceId
        self.signedPreKeyId = signedPreKeyId
        self.signedPreKey = signedPreKey
        self.signedPreKeySignature = signedPreKeySignature
        self.pqPreKeyId = pqPreKeyId
        self.pqKind = pqKind
        self.pqPreKey = pqPreKey
        self.pqPreKeySignature = pqPreKeySignature
        self.oneTimePreKeyId = oneTimePreKeyId
        self.oneTimePreKey = oneTimePreKey
    }

    /// Refuses the bundle unless both prekey signatures verify under the device identity key.
    public func verifySignatures() throws(ProtocolError) {
        guard identityKey.isValidSignature(signedPreKeySignature, for: KeyEncoding.encode(signedPreKey)) else {
            throw .badSignature("signed prekey")
        }
        guard identityKey.isValidSignature(pqPreKeySignature, for: KeyEncoding.encode(pqPreKey)) else {
            throw .badSignature("post-quantum prekey")
        }
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 1800)
        w.u8(ProtocolConstants.version)
        w.raw(identityKey.bytes)
        w.u32(deviceId)
        w.u32(signedPreKeyId)
        w.raw(signedPreKey.bytes)
        w.raw(signedPreKeySignature)
        w.u32(pqPreKeyId)
        w.u8(pqKind.rawValue)
        w.raw(pqPreKey.bytes)
        w.raw(pqPreKeySignature)
        w.u32(oneTimePreKeyId)
        if let opk = oneTimePreKey { w.raw(opk.bytes) }
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "PreKeyBundle")
        try r.version()
        let ik = try SignedDeviceList.ed25519(try r.raw(32))
        let deviceId = try r.u32()
        let spkId = try r.u32()
        let spk = try Self.x25519(try r.raw(32))
        let spkSig = try r.raw(64)
        let pqId = try r.u32()
        guard let kind = PQPreKeyKind(rawValue: try r.u8()) else { throw .malformed("PreKeyBundle: unknown PQ prekey kind") }
        let pqBytes = try r.raw(MLKEM1024KEM.publicKeyLength)
        let pq = try ProtocolError.wrap { () throws(CryptoError) in try MLKEM1024KEM.PublicKey(pqBytes) }
        let pqSig = try r.raw(64)
        let opkId = try r.u32()
        let opk: X25519.PublicKey? = opkId == 0 ? nil : try Self.x25519(try r.raw(32))
        try r.finish()
        self.init(identityKey: ik, deviceId: deviceId, signedPreKeyId: spkId, signedPreKey: spk, signedPreKeySignature: spkSig,
                  pqPreKeyId: pqId, pqKind: kind, pqPreKey: pq, pqPreKeySignature: pqSig,
                  oneTimePreKeyId: opkId, oneTimePreKey: opk)
    }

    static func x25519(_ bytes: [UInt8]) throws(ProtocolError) -> X25519.PublicKey {
        try ProtocolError.wrap { () throws(CryptoError) in try X25519.PublicKey(bytes) }
    }
}
