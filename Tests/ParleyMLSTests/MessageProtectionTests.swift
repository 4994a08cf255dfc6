import ParleyCrypto
@testable import ParleyMLS
import Testing

/// message-protection.json (RFC 9420 §6): PublicMessage and PrivateMessage of a proposal, a commit and an
/// application message from leaf 1 of a two-member group; both verifying theirs and protecting ours.
@Suite struct MessageProtectionTests {
    struct Setup {
        let suite: CipherSuite
        let context: GroupContext
        let signingKey: SignaturePrivateKey
        let signaturePublicKey: [UInt8]
        let membershipKey: SecretBytes
        let senderDataSecret: SecretBytes
        let encryptionSecret: SecretBytes
        var secretTree: SecretTree { SecretTree(suite: suite, encryptionSecret: encryptionSecret, leafCount: 2) }

        init(suite: CipherSuite, _ v: [String: Any]) throws {
            self.suite = suite
            context = GroupContext(cipherSuite: suite.id, groupID: try v.hex("group_id"), epoch: UInt64(try v.int("epoch")),
                                   treeHash: try v.hex("tree_hash"), confirmedTranscriptHash: try v.hex("confirmed_transcript_hash"))
            signingKey = try SignaturePrivateKey(seed: try v.secret("signature_priv"))
            signaturePublicKey = try v.hex("signature_pub")
            membershipKey = try v.secret("membership_key")
            senderDataSecret = try v.secret("sender_data_secret")
            encryptionSecret = try v.secret("encryption_secret")
        }
    }

    static func body(_ name: String, _ v: [String: Any]) throws -> ContentBody {
        switch name {
        case "proposal": .proposal(try Proposal(tlsEncoded: try v.hex("proposal")))
        case "commit": .commit(try Commit(tlsEncoded: try v.hex("commit")))
        default: .application(try v.hex("application"))
        }
    }

    @Test func vectors() throws {
        var checks = 0
        for (suite, v) in try MLSVectors.supportedCases("message-protection") {
            let setup = try Setup(suite: suite, v)
            for name in ["proposal", "commit", "application"] {
                let body = try Self.body(name, v)
                #expect(bodyBytes(body) == (try v.hex(name)), "\(name) re-encodes")

                if name != "application" {
                    // Theirs: membership tag, signature, content.
                    let message = try MLSMessage(tlsEncoded: try v.hex("\(name)_pub"))
                    #expect(message.tlsEncoded == (try v.hex("\(name)_pub")))
                    guard case .publicMessage(let pub) = message.body else { Issue.record("\(name)_pub"); continue }
                    let content = try pub.unprotect(suite: suite, membershipKey: setup.membershipKey, context: setup.context)
                    #expect(content.verifySignature(suite: suite, publicKey: setup.signaturePublicKey, context: setup.context))
                    #expect(content.content.body == body)
                    #expect(content.content.sender == .member(leafIndex: 1))

                    // Ours.
                    let mine = try protectPublic(setup, body: body, confirmationTag: content.auth.confirmationTag)
                    let reread = try PublicMessage(tlsEncoded: mine.tlsEncoded)
                    let opened = try reread.unprotect(suite: suite, membershipKey: setup.membershipKey, context: setup.context)
                    #expect(opened.verifySignature(suite: suite, publicKey: setup.signaturePublicKey, context: setup.context))
                    #expect(opened.content.body == body)
                    checks += 2
                }

                // Theirs, encrypted.
                let message = try MLSMessage(tlsEncoded: try v.hex("\(name)_priv"))
                #expect(message.tlsEncoded == (try v.hex("\(name)_priv")))
                guard case .privateMessage(let priv) = message.body else { Issue.record("\(name)_priv"); continue }
                var tree = setup.secretTree
                let content = try priv.unprotect(suite: suite, secretTree: &tree, senderDataSecret: setup.senderDataSecret)
                #expect(content.verifySignature(suite: suite, publicKey: setup.signaturePublicKey, context: setup.context))
                #expect(content.content.body == body)
                #expect(content.content.sender == .member(leafIndex: 1))

                // Ours, encrypted with padding, opened by a fresh receiver.
                var senderTree = setup.secretTree
                let authenticated = signed(setup, body: body, wireFormat: .privateMessage,
                                           confirmationTag: name == "commit" ? content.auth.confirmationTag : nil)
                let mine = try PrivateMessage.protect(authenticated, suite: suite, secretTree: &senderTree,
                                                      senderDataSecret: setup.senderDataSecret, padding: 17)
                var receiverTree = setup.secretTree
                let opened = try PrivateMessage(tlsEncoded: mine.tlsEncoded)
                    .unprotect(suite: suite, secretTree: &receiverTree, senderDataSecret: setup.senderDataSecret)
                #expect(opened == authenticated)
                #expect(opened.verifySignature(suite: suite, publicKey: setup.signaturePublicKey, context: setup.context))
                checks += 2
            }
        }
        print("message-protection.json: \(checks) protect/unprotect checks passed")
    }

    func bodyBytes(_ body: ContentBody) -> [UInt8] {
        switch body {
        case .application(let data): data
        case .proposal(let p): p.tlsEncoded
        case .commit(let c): c.tlsEncoded
        }
    }

    func signed(_ setup: Setup, body: ContentBody, wireFormat: WireFormat, confirmationTag: [UInt8]?) -> AuthenticatedContent {
        let content = FramedContent(groupID: setup.context.groupID, epoch: setup.context.epoch, sender: .member(leafIndex: 1), body: body)
        var authenticated = AuthenticatedContent.sign(wireFormat: wireFormat, content: content, suite: setup.suite, key: setup.signingKey, context: setup.context)
        authenticated.auth.confirmationTag = confirmationTag
        return authenticated
    }

    func protectPublic(_ setup: Setup, body: ContentBody, confirmationTag: [UInt8]?) throws -> PublicMessage {
        try PublicMessage(protecting: signed(setup, body: body, wireFormat: .publicMessage, confirmationTag: confirmationTag),
                          suite: setup.suite, membershipKey: setup.membershipKey, context: setup.context)
    }

    // MARK: Negative tests: each flips one thing in a valid message.

    static func firstSetup() throws -> (Setup, [String: Any]) {
        let (suite, v) = try #require(try MLSVectors.supportedCases("message-protection").first)
        return (try Setup(suite: suite, v), v)
    }

    @Test func membershipTagIsChecked() throws {
        let (setup, v) = try Self.firstSetup()
        let bytes = try v.hex("proposal_pub")
        // The tag is the last 32 bytes: flip one bit of it.
        var flipped = bytes
        flipped[flipped.count - 1] ^= 1
        guard case .publicMessage(let pub) = try MLSMessage(tlsEncoded: flipped).body else { throw VectorError.malformed("pub") }
        #expect(throws: MLSError.protocolViolation("membership tag does not verify")) {
            try pub.unprotect(suite: setup.suite, membershipKey: setup.membershipKey, context: setup.context)
        }
        // The same message under another epoch's context.
        guard case .publicMessage(let original) = try MLSMessage(tlsEncoded: bytes).body else { throw VectorError.malformed("pub") }
        var otherContext = setup.context
        otherContext.epoch += 1
        #expect(throws: MLSError.protocolViolation("membership tag does not verify")) {
            try original.unprotect(suite: setup.suite, membershipKey: setup.membershipKey, context: otherContext)
        }
    }

    @Test func signatureIsChecked() throws {
        let (setup, v) = try Self.firstSetup()
        guard case .publicMessage(let pub) = try MLSMessage(tlsEncoded: try v.hex("commit_pub")).body else { throw VectorError.malformed("pub") }
        let content = try pub.unprotect(suite: setup.suite, membershipKey: setup.membershipKey, context: setup.context)
        var badSignature = content
        badSignature.auth.signature[0] ^= 1
        #expect(!badSignature.verifySignature(suite: setup.suite, publicKey: setup.signaturePublicKey, context: setup.context))
        var otherData = content
        otherData.content.authenticatedData = [1]
        #expect(!otherData.verifySignature(suite: setup.suite, publicKey: setup.signaturePublicKey, context: setup.context))
        var noTag = content
        noTag.auth.confirmationTag = nil
        #expect(!noTag.verifySignature(suite: setup.suite, publicKey: setup.signaturePublicKey, context: setup.context))
        #expect(!content.verifySignature(suite: setup.suite, publicKey: setup.signaturePublicKey, context: nil))
    }

    @Test func privateMessagesRefuseTamperingReplayAndBadPadding() throws {
        let (setup, v) = try Self.firstSetup()
        guard case .privateMessage(let priv) = try MLSMessage(tlsEncoded: try v.hex("application_priv")).body else { throw VectorError.malformed("priv") }

        for mutate in [{ (m: inout PrivateMessage) in m.ciphertext[0] ^= 1 },
                       { (m: inout PrivateMessage) in m.encryptedSenderData[0] ^= 1 },
                       { (m: inout PrivateMessage) in m.authenticatedData.append(0) },
                       { (m: inout PrivateMessage) in m.epoch += 1 },
                       { (m: inout PrivateMessage) in m.contentType = .proposal }] {
            var tampered = priv
            mutate(&tampered)
            var tree = setup.secretTree
            #expect(throws: MLSError.decryptionFailed) {
                try tampered.unprotect(suite: setup.suite, secretTree: &tree, senderDataSecret: setup.senderDataSecret)
            }
        }

        // A replay: the generation's key is deleted after first use.
        var tree = setup.secretTree
        _ = try priv.unprotect(suite: setup.suite, secretTree: &tree, senderDataSecret: setup.senderDataSecret)
        #expect(throws: MLSError.generationUnavailable(0)) {
            try priv.unprotect(suite: setup.suite, secretTree: &tree, senderDataSecret: setup.senderDataSecret)
        }
    }

    /// Padding must be zero bytes (§6.3.1): a message built with a non-zero byte in its padding is refused.
    @Test func nonZeroPaddingIsRefused() throws {
        let (setup, _) = try Self.firstSetup()
        let authenticated = signed(setup, body: .application([1, 2, 3]), wireFormat: .privateMessage, confirmationTag: nil)
        var plaintext = TLSWriter()
        authenticated.content.body.encode(to: &plaintext)
        authenticated.auth.encode(to: &plaintext)
        plaintext.writeBytes([0, 0, 1, 0])
        var senderTree = setup.secretTree
        let key = try senderTree.nextKey(leaf: 1, kind: .application)
        let groupID = setup.context.groupID, epoch = setup.context.epoch
        let ciphertext = try setup.suite.seal(key: key.key, nonce: key.nonce,
                                              aad: PrivateMessage.contentAAD(groupID: groupID, epoch: epoch, type: .application, authenticatedData: []),
                                              plaintext: plaintext.bytes)
        let senderKeys = SenderDataKeys.derive(suite: setup.suite, senderDataSecret: setup.senderDataSecret, ciphertext: ciphertext)
        let senderData = try setup.suite.seal(key: senderKeys.key, nonce: senderKeys.nonce,
                                              aad: PrivateMessage.senderDataAAD(groupID: groupID, epoch: epoch, type: .application),
                                              plaintext: [0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0])
        let message = PrivateMessage(groupID: groupID, epoch: epoch, contentType: .application, authenticatedData: [],
                                     encryptedSenderData: senderData, ciphertext: ciphertext)
        var tree = setup.secretTree
        #expect(throws: MLSError.protocolViolation("padding is not all zero")) {
            try message.unprotect(suite: setup.suite, secretTree: &tree, senderDataSecret: setup.senderDataSecret)
        }
    }
}
