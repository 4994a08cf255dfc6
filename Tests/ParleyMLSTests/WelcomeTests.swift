import ParleyCrypto
@testable import ParleyMLS
import Testing

/// welcome.json (RFC 9420 §12.4.3): a new member opens its GroupSecrets and the GroupInfo, checks the
/// GroupInfo's signature and its confirmation tag.
@Suite struct WelcomeTests {
    struct Joined {
        let groupInfo: GroupInfo
        let secrets: EpochSecrets
    }

    static func join(suite: CipherSuite, welcomeBytes: [UInt8], keyPackageBytes: [UInt8], initPrivateKey: SecretBytes,
                     signerPublicKey: [UInt8]) throws -> Joined {
        guard case .welcome(let welcome) = try MLSMessage(tlsEncoded: welcomeBytes).body else { throw MLSError.invalidValue("not a Welcome") }
        guard case .keyPackage(let keyPackage) = try MLSMessage(tlsEncoded: keyPackageBytes).body else { throw MLSError.invalidValue("not a KeyPackage") }
        let groupSecrets = try welcome.openGroupSecrets(suite: suite, keyPackageReference: keyPackage.reference(suite: suite),
                                                        initPrivateKey: initPrivateKey)
        let welcomeSecret = EpochSecrets.welcomeSecret(suite: suite, joinerSecret: groupSecrets.joinerSecret, pskSecret: nil)
        let groupInfo = try welcome.openGroupInfo(suite: suite, welcomeSecret: welcomeSecret)
        guard groupInfo.verifySignature(suite: suite, publicKey: signerPublicKey) else { throw MLSError.invalidSignature }
        let secrets = EpochSecrets(suite: suite, joinerSecret: groupSecrets.joinerSecret, pskSecret: nil,
                                   groupContext: groupInfo.groupContext.tlsEncoded)
        guard constantTimeEquals(secrets.confirmationTag(confirmedTranscriptHash: groupInfo.groupContext.confirmedTranscriptHash),
                                 groupInfo.confirmationTag) else { throw MLSError.protocolViolation("confirmation tag") }
        return Joined(groupInfo: groupInfo, secrets: secrets)
    }

    @Test func vectors() throws {
        var passed = 0
        for (suite, v) in try MLSVectors.supportedCases("welcome") {
            let joined = try Self.join(suite: suite, welcomeBytes: try v.hex("welcome"), keyPackageBytes: try v.hex("key_package"),
                                       initPrivateKey: try v.secret("init_priv"), signerPublicKey: try v.hex("signer_pub"))
            #expect(joined.groupInfo.groupContext.cipherSuite == suite.id)
            passed += 1
        }
        print("welcome.json: \(passed) vectors passed")
    }

    @Test func wrongKeysAndTamperingAreRefused() throws {
        let (suite, v) = try #require(try MLSVectors.supportedCases("welcome").first)
        let welcome = try v.hex("welcome"), keyPackage = try v.hex("key_package"), initKey = try v.secret("init_priv")
        let signer = try v.hex("signer_pub")
        var otherSigner = signer
        otherSigner[0] ^= 1
        #expect(throws: MLSError.invalidSignature) {
            try Self.join(suite: suite, welcomeBytes: welcome, keyPackageBytes: keyPackage, initPrivateKey: initKey, signerPublicKey: otherSigner)
        }
        var wrongInit = initKey.unprotectedBytes
        wrongInit[1] ^= 1  // not byte 0: X25519 clamps its low bits away
        #expect(throws: MLSError.decryptionFailed) {
            try Self.join(suite: suite, welcomeBytes: welcome, keyPackageBytes: keyPackage, initPrivateKey: SecretBytes(wrongInit), signerPublicKey: signer)
        }
        // The last byte is inside encrypted_group_info (its AEAD tag).
        var tampered = welcome
        tampered[tampered.count - 1] ^= 1
        #expect(throws: MLSError.decryptionFailed) {
            try Self.join(suite: suite, welcomeBytes: tampered, keyPackageBytes: keyPackage, initPrivateKey: initKey, signerPublicKey: signer)
        }
    }

    /// Our own Welcome, for a KeyPackage we make, opens with the same code.
    @Test(arguments: CipherSuite.supported) func sealedWelcomeOpens(suite: CipherSuite) throws {
        let signer = SignaturePrivateKey()
        let memberSigner = SignaturePrivateKey()
        let initKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        var leaf = LeafNode(encryptionKey: suite.deriveKeyPair(ikm: SecretBytes.random(count: 32)).publicKey, signatureKey: memberSigner.publicKey,
                            credential: .basic(identity: Array("bob".utf8)), capabilities: Capabilities(cipherSuites: [suite.id]),
                            source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)), extensions: [])
        try leaf.sign(suite: suite, key: memberSigner, context: nil)
        var keyPackage = KeyPackage(cipherSuite: suite.id, initKey: initKeys.publicKey, leafNode: leaf, extensions: [])
        keyPackage.sign(suite: suite, key: memberSigner)
        #expect(keyPackage.verifySignature(suite: suite))

        let joiner = SecretBytes.random(count: 32)
        let context = GroupContext(cipherSuite: suite.id, groupID: [1, 2, 3], epoch: 5, treeHash: [UInt8](repeating: 7, count: 32),
                                   confirmedTranscriptHash: [UInt8](repeating: 8, count: 32))
        let secrets = EpochSecrets(suite: suite, joinerSecret: joiner, pskSecret: nil, groupContext: context.tlsEncoded)
        var info = GroupInfo(groupContext: context, extensions: [], confirmationTag: secrets.confirmationTag(confirmedTranscriptHash: context.confirmedTranscriptHash),
                             signer: 0)
        info.sign(suite: suite, key: signer)
        let welcome = try Welcome.seal(suite: suite, groupInfo: info, welcomeSecret: secrets.welcomeSecret,
                                       recipients: [(keyPackage, GroupSecrets(joinerSecret: joiner, pathSecret: nil, psks: []))])
        let joined = try Self.join(suite: suite, welcomeBytes: MLSMessage(body: .welcome(welcome)).tlsEncoded,
                                   keyPackageBytes: MLSMessage(body: .keyPackage(keyPackage)).tlsEncoded,
                                   initPrivateKey: initKeys.privateKey, signerPublicKey: signer.publicKey)
        #expect(joined.groupInfo == info)
        #expect(joined.secrets.epochAuthenticator.constantTimeEquals(secrets.epochAuthenticator))
    }
}
