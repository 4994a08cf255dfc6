import Crypto
import Foundation
import ParleyCrypto

/// An MLS cipher suite (RFC 9420 §5.1) and the labelled functions built on it. Parley implements the two
/// X25519/Ed25519/SHA-256 suites; they differ only in the AEAD:
///   1 `MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519` (AES-128-GCM from swift-crypto; mandatory to implement)
///   3 `MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519` (ChaCha20-Poly1305 from libsodium)
/// HPKE (RFC 9180, base mode) is swift-crypto's; X25519, Ed25519, SHA-256 and HKDF are libsodium's.
public struct CipherSuite: Hashable, Sendable, CustomStringConvertible {
    public let id: UInt16

    public static let x25519AES128GCM = CipherSuite(uncheckedID: 1)
    public static let x25519ChaCha20Poly1305 = CipherSuite(uncheckedID: 3)
    public static let supported: [CipherSuite] = [.x25519AES128GCM, .x25519ChaCha20Poly1305]

    public init(id: UInt16) throws(MLSError) {
        guard id == 1 || id == 3 else { throw .unsupportedCipherSuite(id) }
        self.id = id
    }

    private init(uncheckedID id: UInt16) { self.id = id }

    public var description: String {
        id == 1 ? "MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519" : "MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519"
    }

    /// Nh: the hash and KDF output length.
    public var hashLength: Int { 32 }
    public var kdfExtractLength: Int { 32 }
    public var aeadKeyLength: Int { id == 1 ? 16 : 32 }
    public var aeadNonceLength: Int { 12 }
    public var aeadTagLength: Int { 16 }
    /// Npk and Nsk of DHKEM(X25519, HKDF-SHA256).
    public var hpkePublicKeyLength: Int { 32 }
    public var hpkePrivateKeyLength: Int { 32 }
    public var signaturePublicKeyLength: Int { Ed25519.publicKeyLength }

    // MARK: Hash and KDF

    public func hash(_ data: [UInt8]) -> [UInt8] { ParleyCrypto.SHA256.hash(data) }

    public func mac(key: SecretBytes, data: [UInt8]) -> [UInt8] { HMACSHA256.authenticate(data, key: key) }

    public func extract(salt: SecretBytes, ikm: SecretBytes) -> SecretBytes {
        HKDFSHA256.extract(salt: salt, inputKeyMaterial: ikm)
    }

    public func expand(secret: SecretBytes, info: [UInt8], length: Int) -> SecretBytes {
        HKDFSHA256.expand(pseudoRandomKey: secret, info: info, length: length)
    }

    /// A zero-filled secret of Nh bytes (the "0" of the key schedule).
    public var zeroSecret: SecretBytes { SecretBytes(count: hashLength) { $0.initializeMemory(as: UInt8.self, repeating: 0) } }

    /// ExpandWithLabel(Secret, Label, Context, Length) = KDF.Expand(Secret, KDFLabel, Length), with
    /// KDFLabel = struct { uint16 length; opaque label<V> = "MLS 1.0 " + Label; opaque context<V>; }.
    public func expandWithLabel(secret: SecretBytes, label: String, context: [UInt8], length: Int) -> SecretBytes {
        expandWithLabel(secret: secret, label: Array(label.utf8), context: context, length: length)
    }

    /// The same with a label of raw bytes (an exporter's label is the application's choice).
    public func expandWithLabel(secret: SecretBytes, label: [UInt8], context: [UInt8], length: Int) -> SecretBytes {
        var info = TLSWriter()
        info.writeUInt16(UInt16(length))
        info.writeOpaque(Self.labelPrefix + label)
        info.writeOpaque(context)
        return expand(secret: secret, info: info.bytes, length: length)
    }

    /// DeriveSecret(Secret, Label) = ExpandWithLabel(Secret, Label, "", Nh).
    public func deriveSecret(secret: SecretBytes, label: String) -> SecretBytes {
        expandWithLabel(secret: secret, label: label, context: [], length: hashLength)
    }

    /// DeriveTreeSecret(Secret, Label, Generation, Length): the generation is the context, as a uint32.
    public func deriveTreeSecret(secret: SecretBytes, label: String, generation: UInt32, length: Int) -> SecretBytes {
        var context = TLSWriter()
        context.writeUInt32(generation)
        return expandWithLabel(secret: secret, label: label, context: context.bytes, length: length)
    }

    /// RefHash(label, value) = Hash(RefHashInput{ opaque label<V>; opaque value<V>; }); the label is used
    /// as given (it already carries "MLS 1.0 ").
    public func refHash(label: String, value: [UInt8]) -> [UInt8] {
        var input = TLSWriter()
        input.writeOpaque(Array(label.utf8))
        input.writeOpaque(value)
        return hash(input.bytes)
    }

    /// KeyPackageRef of an encoded KeyPackage (RFC 9420 §5.2).
    public func makeKeyPackageRef(_ encodedKeyPackage: [UInt8]) -> [UInt8] {
        refHash(label: "MLS 1.0 KeyPackage Reference", value: encodedKeyPackage)
    }

    /// ProposalRef of an encoded AuthenticatedContent carrying a proposal.
    public func makeProposalRef(_ encodedAuthenticatedContent: [UInt8]) -> [UInt8] {
        refHash(label: "MLS 1.0 Proposal Reference", value: encodedAuthenticatedContent)
    }

    // MARK: Signatures

    /// SignContent = struct { opaque label<V> = "MLS 1.0 " + Label; opaque content<V>; }.
    private static func signContent(label: String, content: [UInt8]) -> [UInt8] {
        var w = TLSWriter()
        w.writeOpaque(labelPrefix + Array(label.utf8))
        w.writeOpaque(content)
        return w.bytes
    }

    public func signWithLabel(_ key: SignaturePrivateKey, label: String, content: [UInt8]) -> [UInt8] {
        key.keyPair.sign(Self.signContent(label: label, content: content))
    }

    /// False for a malformed key or signature as well as for a wrong one.
    public func verifyWithLabel(publicKey: [UInt8], label: String, content: [UInt8], signature: [UInt8]) -> Bool {
        guard let key = try? Ed25519.PublicKey(publicKey) else { return false }
        return key.isValidSignature(signature, for: Self.signContent(label: label, content: content))
    }

    // MARK: HPKE

    private var hpkeSuite: HPKE.Ciphersuite {
        HPKE.Ciphersuite(kem: .Curve25519_HKDF_SHA256, kdf: .HKDF_SHA256, aead: id == 1 ? .AES_GCM_128 : .chaChaPoly)
    }

    /// EncryptContext = struct { opaque label<V> = "MLS 1.0 " + Label; opaque context<V>; }, the HPKE info.
    private static func encryptContext(label: String, context: [UInt8]) -> [UInt8] {
        var w = TLSWriter()
        w.writeOpaque(labelPrefix + Array(label.utf8))
        w.writeOpaque(context)
        return w.bytes
    }

    /// EncryptWithLabel: SealBase(pk, EncryptContext, "", plaintext).
    public func encryptWithLabel(publicKey: [UInt8], label: String, context: [UInt8], plaintext: [UInt8]) throws(MLSError) -> HPKECiphertext {
        let recipient: Curve25519.KeyAgreement.PublicKey
        do { recipient = try .init(rawRepresentation: publicKey) } catch { throw .invalidKey }
        do {
            var sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: hpkeSuite,
                                         info: Data(Self.encryptContext(label: label, context: context)))
            let ciphertext = try sender.seal(plaintext, authenticating: Data())
            return HPKECiphertext(kemOutput: Array(sender.encapsulatedKey), ciphertext: Array(ciphertext))
        } catch {
            throw .invalidKey
        }
    }

    /// DecryptWithLabel: OpenBase(kem_output, sk, EncryptContext, "", ciphertext).
    public func decryptWithLabel(privateKey: SecretBytes, label: String, context: [UInt8],
                                 kemOutput: [UInt8], ciphertext: [UInt8]) throws(MLSError) -> [UInt8] {
        guard privateKey.count == hpkePrivateKeyLength, kemOutput.count == hpkePublicKeyLength else { throw .invalidKey }
        let key: Curve25519.KeyAgreement.PrivateKey
        do { key = try privateKey.withUnsafeBytes { try .init(rawRepresentation: $0) } } catch { throw .invalidKey }
        do {
            var recipient = try HPKE.Recipient(privateKey: key, ciphersuite: hpkeSuite,
                                               info: Data(Self.encryptContext(label: label, context: context)),
                                               encapsulatedKey: Data(kemOutput))
            return Array(try recipient.open(ciphertext, authenticating: Data()))
        } catch {
            throw .decryptionFailed
        }
    }

    public func decryptWithLabel(privateKey: SecretBytes, label: String, context: [UInt8], _ sealed: HPKECiphertext) throws(MLSError) -> [UInt8] {
        try decryptWithLabel(privateKey: privateKey, label: label, context: context, kemOutput: sealed.kemOutput, ciphertext: sealed.ciphertext)
    }

    /// The init secret of an external commit (RFC 9420 §8.3), sender side: an HPKE base-mode context to the
    /// group's `external_pub`, exported under "MLS 1.0 external init secret". Returns the KEM output for the
    /// ExternalInit proposal.
    public func externalInit(publicKey: [UInt8]) throws(MLSError) -> (kemOutput: [UInt8], initSecret: SecretBytes) {
        do {
            let recipient = try Curve25519.KeyAgreement.PublicKey(rawRepresentation: publicKey)
            let sender = try HPKE.Sender(recipientKey: recipient, ciphersuite: hpkeSuite, info: Data())
            let secret = try sender.exportSecret(context: Array("MLS 1.0 external init secret".utf8), outputByteCount: hashLength)
            return (Array(sender.encapsulatedKey), secret.withUnsafeBytes { SecretBytes($0) })
        } catch {
            throw .invalidKey
        }
    }

    /// The same, group side: from the ExternalInit's KEM output and the external private key.
    public func externalInitSecret(kemOutput: [UInt8], privateKey: SecretBytes) throws(MLSError) -> SecretBytes {
        guard kemOutput.count == hpkePublicKeyLength else { throw .invalidKey }
        do {
            let key = try privateKey.withUnsafeBytes { try Curve25519.KeyAgreement.PrivateKey(rawRepresentation: $0) }
            let recipient = try HPKE.Recipient(privateKey: key, ciphersuite: hpkeSuite, info: Data(), encapsulatedKey: Data(kemOutput))
            let secret = try recipient.exportSecret(context: Array("MLS 1.0 external init secret".utf8), outputByteCount: hashLength)
            return secret.withUnsafeBytes { SecretBytes($0) }
        } catch {
            throw .invalidKey
        }
    }

    /// DeriveKeyPair of DHKEM(X25519, HKDF-SHA256) (RFC 9180 §7.1.3): sk = LabeledExpand(LabeledExtract("",
    /// "dkp_prk", ikm), "sk", "", 32), with suite_id "KEM" ‖ 0x0020. swift-crypto does not expose it.
    public func deriveKeyPair(ikm: SecretBytes) -> HPKEKeyPair {
        let suiteID: [UInt8] = Array("KEM".utf8) + [0x00, 0x20]
        let hpkeV1 = Array("HPKE-v1".utf8)
        let labeledIKM = SecretBytes(count: hpkeV1.count + suiteID.count + 7 + ikm.count) { out in
            var prefix = hpkeV1 + suiteID + Array("dkp_prk".utf8)
            prefix.withUnsafeBytes { p in out.copyMemory(from: p) }
            ikm.withUnsafeBytes { i in
                UnsafeMutableRawBufferPointer(rebasing: out[prefix.count...]).copyMemory(from: i)
            }
            wipe(&prefix)
        }
        let prk = HKDFSHA256.extract(salt: [UInt8](), inputKeyMaterial: labeledIKM)
        let info: [UInt8] = [0x00, 0x20] + hpkeV1 + suiteID + Array("sk".utf8)
        let privateKey = HKDFSHA256.expand(pseudoRandomKey: prk, info: info, length: 32)
        return HPKEKeyPair(privateKey: privateKey)
    }

    // MARK: AEAD

    public func seal(key: SecretBytes, nonce: [UInt8], aad: [UInt8], plaintext: [UInt8]) throws(MLSError) -> [UInt8] {
        guard key.count == aeadKeyLength, nonce.count == aeadNonceLength else { throw .invalidKey }
        if id == 3 {
            do { return try ChaCha20Poly1305IETF.seal(plaintext, associatedData: aad, nonce: nonce, key: key) } catch { throw .invalidKey }
        }
        do {
            let box = try key.withUnsafeBytes { k in
                try AES.GCM.seal(plaintext, using: SymmetricKey(data: k), nonce: AES.GCM.Nonce(data: nonce), authenticating: aad)
            }
            return Array(box.ciphertext) + Array(box.tag)
        } catch {
            throw .invalidKey
        }
    }

    public func open(key: SecretBytes, nonce: [UInt8], aad: [UInt8], ciphertext: [UInt8]) throws(MLSError) -> [UInt8] {
        guard key.count == aeadKeyLength, nonce.count == aeadNonceLength else { throw .invalidKey }
        guard ciphertext.count >= aeadTagLength else { throw .decryptionFailed }
        if id == 3 {
            do { return try ChaCha20Poly1305IETF.open(ciphertext, associatedData: aad, nonce: nonce, key: key) } catch { throw .decryptionFailed }
        }
        do {
            let split = ciphertext.count - aeadTagLength
            let box = try AES.GCM.SealedBox(nonce: AES.GCM.Nonce(data: nonce), ciphertext: ciphertext[..<split], tag: ciphertext[split...])
            return try key.withUnsafeBytes { k in Array(try AES.GCM.open(box, using: SymmetricKey(data: k), authenticating: aad)) }
        } catch {
            throw .decryptionFailed
        }
    }

    static let labelPrefix: [UInt8] = Array("MLS 1.0 ".utf8)
}

extension CipherSuite: TLSCodable {
    public func encode(to writer: inout TLSWriter) { writer.writeUInt16(id) }
    public init(from reader: inout TLSReader) throws(MLSError) { try self.init(id: reader.readUInt16()) }
}

/// An Ed25519 signing key: the 32-byte RFC 8032 seed, as MLS test vectors and key packages carry it.
public struct SignaturePrivateKey: Sendable {
    let keyPair: Ed25519.KeyPair

    public init(seed: SecretBytes) throws(MLSError) {
        do { keyPair = try Ed25519.KeyPair(seed: seed) } catch { throw .invalidKey }
    }

    public init(random: any RandomSource = SystemRandom()) { keyPair = Ed25519.KeyPair(random: random) }

    public var seed: SecretBytes { keyPair.seed }
    public var publicKey: [UInt8] { keyPair.publicKey.bytes }
}

/// An HPKE (X25519) key pair: a private scalar and its public key.
public struct HPKEKeyPair: Sendable {
    public let privateKey: SecretBytes
    public let publicKey: [UInt8]

    /// Rebuilds the pair from its private key (one base-point multiplication).
    public init(privateKey: SecretBytes) {
        self.privateKey = privateKey
        publicKey = (try? X25519.KeyPair(privateKey: privateKey).publicKey.bytes) ?? []
    }

    public init(privateKey: SecretBytes, publicKey: [UInt8]) {
        self.privateKey = privateKey
        self.publicKey = publicKey
    }
}

/// struct { opaque kem_output<V>; opaque ciphertext<V>; } HPKECiphertext (RFC 9420 §5.1.3).
public struct HPKECiphertext: TLSCodable, Hashable, Sendable {
    public var kemOutput: [UInt8]
    public var ciphertext: [UInt8]

    public init(kemOutput: [UInt8], ciphertext: [UInt8]) {
        self.kemOutput = kemOutput
        self.ciphertext = ciphertext
    }

    public func encode(to writer: inout TLSWriter) {
        writer.writeOpaque(kemOutput)
        writer.writeOpaque(ciphertext)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        kemOutput = try reader.readOpaque()
        ciphertext = try reader.readOpaque()
    }
}
