import ParleyCrypto

/// One Double Ratchet session (PROTOCOL.md §5), as a value: `decrypt` works on a copy and only replaces
/// `self` when the message authenticated, so a failed decryption changes nothing.
public struct RatchetSession: Sendable {
    public let associatedData: [UInt8]
    public let localIdentityKey: Ed25519.PublicKey
    public let remoteIdentityKey: Ed25519.PublicKey
    /// Set on the initiator's side until a message from the peer decrypts (PROTOCOL.md §8).
    public internal(set) var pendingPreKey: PreKeyHeader?
    /// The initiator's ephemeral key EK_A of the PQXDH run that started this session. A PreKeyMessage
    /// naming the same EK_A belongs to this session and to no new one, so a replayed session start is
    /// refused instead of starting a second session (PROTOCOL.md §8).
    public internal(set) var initiationKey: X25519.PublicKey?

    var rootKey: SecretBytes
    var sendingRatchetKey: X25519.KeyPair
    var remoteRatchetKey: X25519.PublicKey?
    var sendingChainKey: SecretBytes?
    var receivingChainKey: SecretBytes?
    var sendCount: UInt32 = 0
    var receiveCount: UInt32 = 0
    var previousSendCount: UInt32 = 0
    var skipped = SkippedMessageKeys()
    /// Remote ratchet keys already replaced, so a late duplicate from an old chain is recognised as such.
    var retiredRemoteRatchetKeys: [X25519.PublicKey] = []

    /// Alice's side (§5.2): the first sending chain comes from her new ratchet key and Bob's signed prekey.
    public static func initiator(_ initiation: PQXDH.Initiation, localIdentity: Ed25519.PublicKey, bundle: PreKeyBundle,
                                 random: any RandomSource = SystemRandom()) throws(ProtocolError) -> RatchetSession {
        let ratchetKey = X25519.KeyPair(random: random)
        let dh = try ProtocolError.wrap { () throws(CryptoError) in
            try X25519.sharedSecret(privateKey: ratchetKey.privateKey, publicKey: bundle.signedPreKey)
        }
        let (root, chain) = kdfRoot(initiation.sharedKey, dh)
        var session = RatchetSession(associatedData: initiation.associatedData, localIdentityKey: localIdentity,
                                     remoteIdentityKey: bundle.identityKey, rootKey: root, sendingRatchetKey: ratchetKey)
        session.remoteRatchetKey = bundle.signedPreKey
        session.sendingChainKey = chain
        session.pendingPreKey = initiation.header
        session.initiationKey = initiation.header.ephemeralKey
        return session
    }

    /// Bob's side (§5.2): his signed prekey is his first ratchet key; the first message ratchets.
    public static func responder(_ response: PQXDH.Response, localIdentity: Ed25519.PublicKey,
                                 remoteIdentity: Ed25519.PublicKey, initiationKey: X25519.PublicKey? = nil) -> RatchetSession {
        var session = RatchetSession(associatedData: response.associatedData, localIdentityKey: localIdentity,
                                     remoteIdentityKey: remoteIdentity, rootKey: response.sharedKey, sendingRatchetKey: response.signedPreKey)
        session.initiationKey = initiationKey
        return session
    }

    /// Rebuilds the fixed part of a stored session (StateCodec fills in the rest).
    init(restoring associatedData: [UInt8], localIdentityKey: Ed25519.PublicKey, remoteIdentityKey: Ed25519.PublicKey,
         rootKey: SecretBytes, sendingRatchetKey: X25519.KeyPair) {
        self.init(associatedData: associatedData, localIdentityKey: localIdentityKey, remoteIdentityKey: remoteIdentityKey,
                  rootKey: rootKey, sendingRatchetKey: sendingRatchetKey)
    }

    private init(associatedData: [UInt8], localIdentityKey: Ed25519.PublicKey, remoteIdentityKey: Ed25519.PublicKey,
                 rootKey: SecretBytes, sendingRatchetKey: X25519.KeyPair) {
        self.associatedData = associatedData
        self.localIdentityKey = localIdentityKey
        self.remoteIdentityKey = remoteIdentityKey
        self.rootKey = rootKey
        self.sendingRatchetKey = sendingRatchetKey
    }

    /// True once this side can send (the responder can only after the first received message).
    public var canSend: Bool { sendingChainKey != nil }

    // MARK: Encrypt

    public mutating func encrypt(_ plaintext: [UInt8]) throws(ProtocolError) -> RatchetMessage {
        guard let chainKey = sendingChainKey else { throw .noSession(address: "(responder has not received yet)", deviceId: 0) }
        let (nextChainKey, messageKey) = Self.kdfChain(chainKey)
        let header = RatchetHeader(ratchetKey: sendingRatchetKey.publicKey, previousChainLength: previousSendCount,
                                   messageNumber: sendCount)
        sendingChainKey = nextChainKey
        sendCount += 1
        let ciphertext = XChaCha20Poly1305.seal(plaintext, associatedData: associatedData + header.encoded,
                                                keyAndNonce: Self.expandMessageKey(messageKey))
        return RatchetMessage(header: header, ciphertext: ciphertext)
    }

    // MARK: Decrypt

    public mutating func decrypt(_ message: RatchetMessage, random: any RandomSource = SystemRandom()) throws(ProtocolError) -> [UInt8] {
        var next = self
        let plaintext = try next.decryptInPlace(message, random: random)
        next.pendingPreKey = nil
        self = next
        return plaintext
    }

    private mutating func decryptInPlace(_ message: RatchetMessage, random: any RandomSource) throws(ProtocolError) -> [UInt8] {
        let header = message.header
        if let messageKey = skipped.take(ratchetKey: header.ratchetKey, number: header.messageNumber) {
            return try open(message, with: messageKey)
        }
        if header.ratchetKey != remoteRatchetKey {
            if retiredRemoteRatchetKeys.contains(header.ratchetKey) { throw .duplicateOrReplayedMessage }
            try skipMessageKeys(until: header.previousChainLength)
            try ratchetStep(remoteKey: header.ratchetKey, random: random)
        } else if header.messageNumber < receiveCount {
            throw .duplicateOrReplayedMessage
        }
        try skipMessageKeys(until: header.messageNumber)
        guard let chainKey = receivingChainKey else { throw .decryptionFailed }
        let (nextChainKey, messageKey) = Self.kdfChain(chainKey)
        receivingChainKey = nextChainKey
        receiveCount += 1
        return try open(message, with: messageKey)
    }

    private func open(_ message: RatchetMessage, with messageKey: SecretBytes) throws(ProtocolError) -> [UInt8] {
        do {
            return try XChaCha20Poly1305.open(message.ciphertext, associatedData: associatedData + message.header.encoded,
                                              keyAndNonce: Self.expandMessageKey(messageKey))
        } catch { throw .decryptionFailed }
    }

    private mutating func skipMessageKeys(until end: UInt32) throws(ProtocolError) {
        guard var chainKey = receivingChainKey else { return }
        guard end >= receiveCount else { return }
        let count = Int(end - receiveCount)
        guard count <= ProtocolConstants.maxSkip else {
            throw .tooManySkippedMessages(requested: count, limit: ProtocolConstants.maxSkip)
        }
        guard let ratchetKey = remoteRatchetKey else { return }
        while receiveCount < end {
            let (nextChainKey, messageKey) = Self.kdfChain(chainKey)
            skipped.store(messageKey, ratchetKey: ratchetKey, number: receiveCount)
            chainKey = nextChainKey
            receiveCount += 1
        }
        receivingChainKey = chainKey
    }

    private mutating func ratchetStep(remoteKey: X25519.PublicKey, random: any RandomSource) throws(ProtocolError) {
        if let old = remoteRatchetKey {
            retiredRemoteRatchetKeys.append(old)
            if retiredRemoteRatchetKeys.count > 8 { retiredRemoteRatchetKeys.removeFirst() }
        }
        previousSendCount = sendCount
        sendCount = 0
        receiveCount = 0
        remoteRatchetKey = remoteKey
        let received = try Self.dh(sendingRatchetKey, remoteKey)
        (rootKey, receivingChainKey) = Self.kdfRoot(rootKey, received)
        sendingRatchetKey = X25519.KeyPair(random: random)
        let sent = try Self.dh(sendingRatchetKey, remoteKey)
        (rootKey, sendingChainKey) = Self.kdfRoot(rootKey, sent)
    }

    // MARK: KDFs (§5)

    static func dh(_ own: X25519.KeyPair, _ remote: X25519.PublicKey) throws(ProtocolError) -> SecretBytes {
        try ProtocolError.wrap { () throws(CryptoError) in try X25519.sharedSecret(privateKey: own.privateKey, publicKey: remote) }
    }

    /// KDF_RK: HKDF(salt = rk, IKM = dh, INFO_ROOT, 64) → (rk', ck).
    static func kdfRoot(_ rootKey: SecretBytes, _ dh: SecretBytes) -> (SecretBytes, SecretBytes) {
        let out = HKDFSHA256.deriveKey(inputKeyMaterial: dh, salt: rootKey, info: ProtocolConstants.infoRoot, length: 64)
        return (out.slice(0..<32), out.slice(32..<64))
    }

    private static let messageKeyConstant: [UInt8] = [0x01]
    private static let chainKeyConstant: [UInt8] = [0x02]

    /// KDF_CK: ck' = HMAC(ck, 0x02), mk = HMAC(ck, 0x01).
    static func kdfChain(_ chainKey: SecretBytes) -> (chainKey: SecretBytes, messageKey: SecretBytes) {
        chainKey.withUnsafeBytes { ck in
            let next = SecretBytes(count: 32) { out in
                chainKeyConstant.withUnsafeBytes { HMACSHA256.authenticate($0, key: ck, into: out) }
            }
            let message = SecretBytes(count: 32) { out in
                messageKeyConstant.withUnsafeBytes { HMACSHA256.authenticate($0, key: ck, into: out) }
            }
            return (next, message)
        }
    }

    private static let zeroSalt = [UInt8](repeating: 0, count: 32)

    /// HKDF(0x00^32, mk, INFO_MESSAGE, 56) → key ‖ nonce.
    static func expandMessageKey(_ messageKey: SecretBytes) -> SecretBytes {
        HKDFSHA256.deriveKey(inputKeyMaterial: messageKey, salt: zeroSalt, info: ProtocolConstants.infoMessage,
                             length: XChaCha20Poly1305.keyLength + XChaCha20Poly1305.nonceLength)
    }
}

/// Skipped message keys, keyed by (ratchet key, message number), evicted oldest-first beyond the cap.
struct SkippedMessageKeys: Sendable {
    struct Slot: Hashable, Sendable {
        let ratchetKey: X25519.PublicKey
        let number: UInt32
    }
    private var keys: [Slot: SecretBytes] = [:]
    private var order: [Slot] = []

    var count: Int { keys.count }

    /// The stored keys, oldest first (the order eviction follows).
    var orderedEntries: [(Slot, SecretBytes)] { order.compactMap { slot in keys[slot].map { (slot, $0) } } }

    mutating func store(_ key: SecretBytes, ratchetKey: X25519.PublicKey, number: UInt32) {
        let slot = Slot(ratchetKey: ratchetKey, number: number)
        keys[slot] = key
        order.append(slot)
        while keys.count > ProtocolConstants.maxStoredSkippedKeys, !order.isEmpty {
            keys[order.removeFirst()] = nil
        }
    }

    mutating func take(ratchetKey: X25519.PublicKey, number: UInt32) -> SecretBytes? {
        guard !keys.isEmpty else { return nil }
        let slot = Slot(ratchetKey: ratchetKey, number: number)
        guard let key = keys.removeValue(forKey: slot) else { return nil }
        if let index = order.firstIndex(of: slot) { order.remove(at: index) }
        return key
    }
}

extension RatchetSession {
    /// The session's current secrets, for the interoperability peer and test vectors only. This copies key
    /// material out of wiped buffers into plain arrays: no product code path calls it.
    public struct ExportedSecrets: Sendable {
        public let rootKey: [UInt8]
        public let sendingChainKey: [UInt8]?
        public let receivingChainKey: [UInt8]?
        public let sendingRatchetPublicKey: [UInt8]
        public let remoteRatchetPublicKey: [UInt8]?
        public let sendCount: UInt32
        public let receiveCount: UInt32
        public let previousSendCount: UInt32
        public let skippedKeyCount: Int
    }

    public func exportSecretsForTesting() -> ExportedSecrets {
        ExportedSecrets(rootKey: rootKey.unprotectedBytes, sendingChainKey: sendingChainKey?.unprotectedBytes,
                        receivingChainKey: receivingChainKey?.unprotectedBytes,
                        sendingRatchetPublicKey: sendingRatchetKey.publicKey.bytes, remoteRatchetPublicKey: remoteRatchetKey?.bytes,
                        sendCount: sendCount, receiveCount: receiveCount, previousSendCount: previousSendCount,
                        skippedKeyCount: skipped.count)
    }
}
