import ParleyCrypto

/// Session start, PROTOCOL.md §4 (Signal's PQXDH with X25519, SHA-256 and ML-KEM-1024).
public enum PQXDH {
    public struct Initiation: Sendable {
        public let sharedKey: SecretBytes
        public let associatedData: [UInt8]
        public let header: PreKeyHeader
    }

    public struct Response: Sendable {
        public let sharedKey: SecretBytes
        public let associatedData: [UInt8]
        /// Bob's signed prekey pair: his first ratchet key (§5.2).
        public let signedPreKey: X25519.KeyPair
    }

    /// Alice's side. Refuses a bundle whose prekey signatures do not verify.
    public static func initiate(identity: DeviceIdentity, bundle: PreKeyBundle,
                                random: any RandomSource = SystemRandom()) throws(ProtocolError) -> Initiation {
        try bundle.verifySignatures()
        let ephemeral = X25519.KeyPair(random: random)
        let remoteAgreementKey = try ProtocolError.wrap { () throws(CryptoError) in try bundle.identityKey.toX25519() }
        let (ciphertext, kemSecret) = try ProtocolError.wrap { () throws(CryptoError) in try bundle.pqPreKey.encapsulate() }
        var pairs: [(SecretBytes, X25519.PublicKey)] = [
            (identity.agreementKey.privateKey, bundle.signedPreKey),
            (ephemeral.privateKey, remoteAgreementKey),
            (ephemeral.privateKey, bundle.signedPreKey),
        ]
        if let opk = bundle.oneTimePreKey { pairs.append((ephemeral.privateKey, opk)) }
        let sk = try deriveSharedKey(pairs, kemSecret: kemSecret)
        let header = PreKeyHeader(identityKey: identity.publicKey, ephemeralKey: ephemeral.publicKey,
                                  signedPreKeyId: bundle.signedPreKeyId, oneTimePreKeyId: bundle.oneTimePreKeyId,
                                  pqPreKeyId: bundle.pqPreKeyId, pqKind: bundle.pqKind, kemCiphertext: ciphertext)
        return Initiation(sharedKey: sk, associatedData: associatedData(initiator: identity.publicKey, responder: bundle.identityKey),
                          header: header)
    }

    /// Bob's side, from the keys named in Alice's PreKeyMessage.
    public static func respond(identity: DeviceIdentity, preKeys: LocalPreKeys,
                               header: PreKeyHeader) throws(ProtocolError) -> Response {
        let keys = try preKeys.keys(for: header)
        let remoteAgreementKey = try ProtocolError.wrap { () throws(CryptoError) in try header.identityKey.toX25519() }
        let kemSecret = try ProtocolError.wrap { () throws(CryptoError) in try keys.pq.decapsulate(header.kemCiphertext) }
        var pairs: [(SecretBytes, X25519.PublicKey)] = [
            (keys.spk.privateKey, remoteAgreementKey),
            (identity.agreementKey.privateKey, header.ephemeralKey),
            (keys.spk.privateKey, header.ephemeralKey),
        ]
        if let opk = keys.opk { pairs.append((opk.privateKey, header.ephemeralKey)) }
        let sk = try deriveSharedKey(pairs, kemSecret: kemSecret)
        return Response(sharedKey: sk, associatedData: associatedData(initiator: header.identityKey, responder: identity.publicKey),
                        signedPreKey: keys.spk)
    }

    /// AD = Encode(IK_A) ‖ Encode(IK_B).
    public static func associatedData(initiator: Ed25519.PublicKey, responder: Ed25519.PublicKey) -> [UInt8] {
        KeyEncoding.encode(initiator) + KeyEncoding.encode(responder)
    }

    /// SK = HKDF(0x00^32, 0xFF^32 ‖ DH1 ‖ DH2 ‖ DH3 [‖ DH4] ‖ SS, INFO_PQXDH, 32). The input key material
    /// is assembled in one wiped buffer.
    static func deriveSharedKey(_ pairs: [(SecretBytes, X25519.PublicKey)], kemSecret: SecretBytes) throws(ProtocolError) -> SecretBytes {
        var failure: CryptoError?
        let ikm = SecretBytes(count: 32 + 32 * pairs.count + kemSecret.count) { out in
            out.initializeMemory(as: UInt8.self, repeating: 0xFF)
            for (i, (privateKey, publicKey)) in pairs.enumerated() {
                let slot = UnsafeMutableRawBufferPointer(rebasing: out[(32 + 32 * i)..<(64 + 32 * i)])
                do throws(CryptoError) { try X25519.sharedSecret(privateKey: privateKey, publicKey: publicKey, into: slot) } catch { failure = error }
            }
            kemSecret.withUnsafeBytes { ss in
                UnsafeMutableRawBufferPointer(rebasing: out[(32 + 32 * pairs.count)...]).copyMemory(from: ss)
            }
        }
        if let failure { throw .crypto(failure) }
        return HKDFSHA256.deriveKey(inputKeyMaterial: ikm, salt: [UInt8](repeating: 0, count: 32),
                                    info: ProtocolConstants.infoPQXDH, length: 32)
    }
}
