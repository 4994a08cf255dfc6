import ParleyCrypto

/// The ratchet header of PROTOCOL.md §5: version, sender's ratchet key, PN, N (41 bytes).
public struct RatchetHeader: Equatable, Sendable {
    public static let length = 41
    public let ratchetKey: X25519.PublicKey
    public let previousChainLength: UInt32
    public let messageNumber: UInt32

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: Self.length)
        w.u8(ProtocolConstants.version)
        w.raw(ratchetKey.bytes)
        w.u32(previousChainLength)
        w.u32(messageNumber)
        return w.bytes
    }

    init(ratchetKey: X25519.PublicKey, previousChainLength: UInt32, messageNumber: UInt32) {
        self.ratchetKey = ratchetKey
        self.previousChainLength = previousChainLength
        self.messageNumber = messageNumber
    }

    /// Reads the header at the front of a RatchetMessage.
    init(reading r: inout ByteReader) throws(ProtocolError) {
        try r.version()
        ratchetKey = try PreKeyBundle.x25519(try r.raw(32))
        previousChainLength = try r.u32()
        messageNumber = try r.u32()
    }
}

/// `RatchetMessage = Header ‖ ciphertext ‖ tag` (PROTOCOL.md §6.1).
public struct RatchetMessage: Equatable, Sendable {
    public let header: RatchetHeader
    public let ciphertext: [UInt8]

    public init(header: RatchetHeader, ciphertext: [UInt8]) {
        self.header = header
        self.ciphertext = ciphertext
    }

    public var encoded: [UInt8] { header.encoded + ciphertext }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "RatchetMessage")
        header = try RatchetHeader(reading: &r)
        ciphertext = r.rest()
        guard ciphertext.count >= XChaCha20Poly1305.tagLength else { throw .malformed("RatchetMessage: too short") }
    }
}

/// What the responder needs to finish PQXDH (PROTOCOL.md §6.2).
public struct PreKeyHeader: Equatable, Sendable {
    public let identityKey: Ed25519.PublicKey
    public let ephemeralKey: X25519.PublicKey
    public let signedPreKeyId: UInt32
    public let oneTimePreKeyId: UInt32
    public let pqPreKeyId: UInt32
    public let pqKind: PQPreKeyKind
    public let kemCiphertext: [UInt8]

    public init(identityKey: Ed25519.PublicKey, ephemeralKey: X25519.PublicKey, signedPreKeyId: UInt32,
                oneTimePreKeyId: UInt32, pqPreKeyId: UInt32, pqKind: PQPreKeyKind, kemCiphertext: [UInt8]) {
        self.identityKey = identityKey
        self.ephemeralKey = ephemeralKey
        self.signedPreKeyId = signedPreKeyId
        self.oneTimePreKeyId = oneTimePreKeyId
        self.pqPreKeyId = pqPreKeyId
        self.pqKind = pqKind
        self.kemCiphertext = kemCiphertext
    }
}

/// `PreKeyMessage = 0x01 ‖ IK_A ‖ EK_A ‖ ids ‖ CT ‖ RatchetMessage` (PROTOCOL.md §6.2).
public struct PreKeyMessage: Equatable, Sendable {
    public let preKey: PreKeyHeader
    public let message: RatchetMessage

    public init(preKey: PreKeyHeader, message: RatchetMessage) {
        self.preKey = preKey
        self.message = message
    }

    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 1700 + message.ciphertext.count)
        w.u8(ProtocolConstants.version)
        w.raw(preKey.identityKey.bytes)
        w.raw(preKey.ephemeralKey.bytes)
        w.u32(preKey.signedPreKeyId)
        w.u32(preKey.oneTimePreKeyId)
        w.u32(preKey.pqPreKeyId)
        w.u8(preKey.pqKind.rawValue)
        w.raw(preKey.kemCiphertext)
        w.raw(message.encoded)
        return w.bytes
    }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "PreKeyMessage")
        try r.version()
        let ik = try SignedDeviceList.ed25519(try r.raw(32))
        let ek = try PreKeyBundle.x25519(try r.raw(32))
        let spkId = try r.u32()
        let opkId = try r.u32()
        let pqId = try r.u32()
        guard let kind = PQPreKeyKind(rawValue: try r.u8()) else { throw .malformed("PreKeyMessage: unknown PQ prekey kind") }
        let ct = try r.raw(MLKEM1024KEM.ciphertextLength)
        preKey = PreKeyHeader(identityKey: ik, ephemeralKey: ek, signedPreKeyId: spkId, oneTimePreKeyId: opkId,
                              pqPreKeyId: pqId, pqKind: kind, kemCiphertext: ct)
        message = try RatchetMessage(decoding: r.rest())
    }
}

/// PROTOCOL.md §6.3: pad to a multiple of 160 bytes with 0x80 then zeros.
public enum Padding {
    public static func pad(_ content: [UInt8]) -> [UInt8] {
        let block = ProtocolConstants.paddingBlock
        let total = (content.count / block + 1) * block
        var out = content
        out.reserveCapacity(total)
        out.append(0x80)
        out.append(contentsOf: repeatElement(0, count: total - out.count))
        return out
    }

    public static func unpad(_ padded: [UInt8]) throws(ProtocolError) -> [UInt8] {
        guard padded.count % ProtocolConstants.paddingBlock == 0,
              let marker = padded.lastIndex(where: { $0 != 0 }), padded[marker] == 0x80 else {
            throw .malformed("padding")
        }
        return Array(padded[..<marker])
    }
}
