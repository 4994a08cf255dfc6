import ParleyCrypto

/// The sender's identity as its account vouches for it, carried inside sealed envelopes (PROTOCOL.md §7).
public struct SenderCertificate: Equatable, Sendable {
    public let address: String
    public let accountKey: Ed25519.PublicKey
    public let deviceId: UInt32
    public let deviceKey: Ed25519.PublicKey
    public let expiresAt: UInt64
    public let signature: [UInt8]

    public static func issue(address: String, accountKey: Ed25519.KeyPair, deviceId: UInt32, deviceKey: Ed25519.PublicKey,
                             expiresAt: UInt64) -> SenderCertificate {
        let body = encodeBody(address: address, accountKey: accountKey.publicKey, deviceId: deviceId, deviceKey: deviceKey,
                              expiresAt: expiresAt)
        return SenderCertificate(address: address, accountKey: accountKey.publicKey, deviceId: deviceId, deviceKey: deviceKey,
                                 expiresAt: expiresAt,
                                 signature: LabelledSignature.sign(body, label: ProtocolConstants.signatureSenderCertificate, with: accountKey))
    }

    init(address: String, accountKey: Ed25519.PublicKey, deviceId: UInt32, deviceKey: Ed25519.PublicKey, expiresAt: UInt64,
         signature: [UInt8]) {
        self.address = address
        self.accountKey = accountKey
        self.deviceId = deviceId
        self.deviceKey = deviceKey
        self.expiresAt = expiresAt
        self.signature = signature
    }

    public var encoded: [UInt8] {
        Self.encodeBody(address: address, accountKey: accountKey, deviceId: deviceId, deviceKey: deviceKey, expiresAt: expiresAt)
            + signature
    }

    /// Parses the layout and checks the address's syntax; `verify(now:)` checks the signature and the expiry.
    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "SenderCertificate")
        try r.version()
        guard let address = String(validating: try r.bytes16(), as: UTF8.self) else {
            throw .malformed("SenderCertificate: address is not UTF-8")
        }
        // Anyone can sign a certificate for any text with a throw-away key, and the address is shown to the
        // user (even when the message cannot be decrypted): only an account address as written everywhere
        // passes, so no control, escape sequence or look-alike spelling rides in on it.
        guard AccountAddressSyntax.isCanonical(address) else {
            throw .malformed("SenderCertificate: the address is not an account address")
        }
        let accountKey = try SignedDeviceList.ed25519(try r.raw(32))
        let deviceId = try r.u32()
        let deviceKey = try SignedDeviceList.ed25519(try r.raw(32))
        let expiresAt = try r.u64()
        let signature = try r.raw(Ed25519.signatureLength)
        try r.finish()
        self.init(address: address, accountKey: accountKey, deviceId: deviceId, deviceKey: deviceKey, expiresAt: expiresAt,
                  signature: signature)
    }

    /// Checks the account key's signature and that the certificate has not expired.
    public func verify(now: UInt64) throws(ProtocolError) {
        let body = Self.encodeBody(address: address, accountKey: accountKey, deviceId: deviceId, deviceKey: deviceKey,
                                   expiresAt: expiresAt)
        // A signature is always 64 bytes, so body and signature cannot trade bytes in the key.
        let certificate = body + signature
        if Self.verified[certificate] == nil {
            guard LabelledSignature.verify(signature, body: body, label: ProtocolConstants.signatureSenderCertificate, key: accountKey) else {
                throw .badSignature("sender certificate")
            }
            Self.verified.store((), for: certificate)
        }
        guard expiresAt > now else { throw .senderCertificateExpired }
    }

    /// Certificates whose signature verified, by their exact bytes (body, which names the account key, and
    /// signature): a sender's device uses one certificate for every message until it renews it, and the
    /// Ed25519 verification (~55 µs) would otherwise be repeated for each — the largest single cost of
    /// receiving a message. Only a byte-identical certificate is recognised; the expiry is checked on
    /// every use.
    static let verified = BoundedCache<Void>(capacity: 1024)

    static func encodeBody(address: String, accountKey: Ed25519.PublicKey, deviceId: UInt32, deviceKey: Ed25519.PublicKey,
                           expiresAt: UInt64) -> [UInt8] {
        var w = ByteWriter(capacity: 120 + address.utf8.count)
        w.u8(ProtocolConstants.version)
        w.bytes16(Array(address.utf8))
        w.raw(accountKey.bytes)
        w.u32(deviceId)
        w.raw(deviceKey.bytes)
        w.u64(expiresAt)
        return w.bytes
    }
}

/// What a sealed envelope carries: the certificate and one ratchet-layer message.
public struct SealedContent: Equatable, Sendable {
    public enum Message: Equatable, Sendable {
        case ratchet(RatchetMessage)
        case preKey(PreKeyMessage)
    }

    public let certificate: SenderCertificate
    public let message: Message

    public init(certificate: SenderCertificate, message: Message) {
        self.certificate = certificate
        self.message = message
    }

    var encoded: [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.bytes16(certificate.encoded)
        switch message {
        case .ratchet(let m): w.u8(0x01); w.raw(m.encoded)
        case .preKey(let m): w.u8(0x02); w.raw(m.encoded)
        }
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "sealed inner content")
        certificate = try SenderCertificate(decoding: try r.bytes16())
        switch try r.u8() {
        case 0x01: message = .ratchet(try RatchetMessage(decoding: r.rest()))
        case 0x02: message = .preKey(try PreKeyMessage(decoding: r.rest()))
        case let other: throw .malformed("sealed inner content: unknown content type \(other)")
        }
    }
}

/// Sealing and opening envelopes (PROTOCOL.md §7). Only the recipient device's key can open one; the
/// relay sees the recipient (outside the envelope), the size and the time.
public enum SealedSender {
    public static func seal(_ content: SealedContent, to recipient: Ed25519.PublicKey,
                            random: any RandomSource = SystemRandom()) throws(ProtocolError) -> [UInt8] {
        let recipientKey = try RecipientKeys.x25519(for: recipient)
        let ephemeral = X25519.KeyPair(random: random)
        let keyAndNonce = try envelopeKey(privateKey: ephemeral.privateKey, peerKey: recipientKey,
                                          ephemeral: ephemeral.publicKey, recipient: recipientKey)
        let header = [ProtocolConstants.version] + ephemeral.publicKey.bytes
        // Inner is padded too, so the length of the sender's address does not show in the envelope size.
        return header + XChaCha20Poly1305.seal(Padding.pad(content.encoded), associatedData: header, keyAndNonce: keyAndNonce)
    }

    /// Opens an envelope addressed to `identity`. Checks only the envelope layer; the certificate and the
    /// session checks belong to the session manager, which knows the sender's account.
    public static func open(_ envelope: [UInt8], identity: DeviceIdentity) throws(ProtocolError) -> SealedContent {
        var r = ByteReader(envelope, structure: "Envelope")
        try r.version()
        let ephemeral = try PreKeyBundle.x25519(try r.raw(32))
        let ciphertext = r.rest()
        let keyAndNonce = try envelopeKey(privateKey: identity.agreementKey.privateKey, peerKey: ephemeral,
                                          ephemeral: ephemeral, recipient: identity.agreementKey.publicKey)
        let inner: [UInt8]
        do {
            inner = try XChaCha20Poly1305.open(ciphertext, associatedData: Array(envelope[0..<33]), keyAndNonce: keyAndNonce)
        } catch { throw .decryptionFailed }
        return try SealedContent(decoding: try Padding.unpad(inner))
    }

    /// The X25519 form of recipients' identity keys: the conversion (a point decompression and a subgroup
    /// check) would otherwise be repeated for every envelope to the same device.
    enum RecipientKeys {
        private static let converted = BoundedCache<X25519.PublicKey>(capacity: 1024)

        static func x25519(for key: Ed25519.PublicKey) throws(ProtocolError) -> X25519.PublicKey {
            if let known = converted[key.bytes] { return known }
            let x25519 = try ProtocolError.wrap { () throws(CryptoError) in try key.toX25519() }
            converted.store(x25519, for: key.bytes)
            return x25519
        }
    }

    /// kn = HKDF(salt = E.pub ‖ X(IK_R), IKM = s, INFO_SEALED, 56), where s = X25519(E.priv, X(IK_R)) on the
    /// sender's side and X25519(X(IK_R).priv, E.pub) on the recipient's.
    private static func envelopeKey(privateKey: SecretBytes, peerKey: X25519.PublicKey,
                                    ephemeral: X25519.PublicKey, recipient: X25519.PublicKey) throws(ProtocolError) -> SecretBytes {
        let shared = try ProtocolError.wrap { () throws(CryptoError) in try X25519.sharedSecret(privateKey: privateKey, publicKey: peerKey) }
        return HKDFSHA256.deriveKey(inputKeyMaterial: shared, salt: ephemeral.bytes + recipient.bytes,
                                    info: ProtocolConstants.infoSealed, length: 56)
    }
}
