import ParleyCrypto
@testable import ParleyMLS
import Testing

/// RFC 9420 §§12.2–12.4 and §13: messages that are valid but for one flipped, dropped or reordered part are
/// refused with the right error, and the receiver's state stays byte for byte what it was.
@Suite struct GroupNegativeTests {
    struct World {
        var alice: Group
        var bob: Group
        let aliceClient: TestClient
        let suite: CipherSuite
    }

    /// Alice, Bob and Carol in epoch 1.
    static func world(_ suite: CipherSuite = .x25519ChaCha20Poly1305) throws -> World {
        let alice = try TestClient(suite: suite, name: "alice")
        var a = try alice.create()
        let bob = try TestClient(suite: suite, name: "bob"), carol = try TestClient(suite: suite, name: "carol")
        let add = try a.commit(adding: [bob.keyPackage, carol.keyPackage])
        return World(alice: a, bob: try bob.join(try #require(add.welcome)), aliceClient: alice, suite: suite)
    }

    /// Processing `message` must throw `expected` (or any MLSError when nil) and leave `group` unchanged.
    static func expectRefused(_ group: inout Group, _ message: MLSMessage, _ expected: MLSError?,
                              sourceLocation: SourceLocation = #_sourceLocation) {
        let before = group.serialized().unprotectedBytes
        do {
            let result = try group.process(message)
            Issue.record("accepted: \(result)", sourceLocation: sourceLocation)
        } catch {
            if let expected { #expect(error == expected, sourceLocation: sourceLocation) }
        }
        let unchanged = group.serialized().unprotectedBytes == before
        #expect(unchanged, "state changed", sourceLocation: sourceLocation)
    }

    /// A commit from Alice with arbitrary content, correctly signed and membership-tagged for the current
    /// epoch, so that only the protocol rule under test is broken.
    static func forged(_ w: World, _ commit: Commit, confirmationTag: [UInt8]? = nil, epoch: UInt64? = nil) throws -> MLSMessage {
        var context = w.alice.context
        if let epoch { context.epoch = epoch }
        let content = FramedContent(groupID: context.groupID, epoch: context.epoch, sender: .member(leafIndex: 0), body: .commit(commit))
        var authenticated = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: w.suite,
                                                      key: w.aliceClient.signatureKey, context: context)
        authenticated.auth.confirmationTag = confirmationTag ?? [UInt8](repeating: 0, count: 32)
        return MLSMessage(body: .publicMessage(try PublicMessage(protecting: authenticated, suite: w.suite,
                                                                 membershipKey: w.alice.secrets.membershipKey, context: context)))
    }

    /// Re-signs and re-tags a real commit after `change`, keeping its confirmation tag.
    static func altered(_ w: World, _ message: MLSMessage, _ change: (inout Commit) -> Void) throws -> MLSMessage {
        guard case .publicMessage(let pub) = message.body, case .commit(var commit) = pub.content.body else { throw MLSError.invalidValue("test") }
        change(&commit)
        return try forged(w, commit, confirmationTag: pub.auth.confirmationTag)
    }

    @Test func stateSurvivesSerialisationAndKeepsWorking() throws {
        var w = try Self.world()
        let bytes = w.bob.serialized()
        var restored = try Group(serialized: bytes)
        #expect(restored.serialized().unprotectedBytes == bytes.unprotectedBytes)
        let commit = try w.alice.commit()
        let message = try w.alice.encrypt(Array("after restore".utf8))
        #expect(try restored.process(commit.message) == .commit(epoch: 2))
        #expect(try restored.process(message) == .application(data: Array("after restore".utf8), sender: 0))
        #expect(restored.epochAuthenticator.constantTimeEquals(w.alice.epochAuthenticator))

        var future = bytes.unprotectedBytes
        future[0] = Group.stateFormatVersion + 1
        #expect(throws: MLSError.invalidValue("group state format version")) { try Group(serialized: SecretBytes(future)) }
        for cut in stride(from: 0, to: future.count, by: 97) {
            #expect(throws: MLSError.self) { try Group(serialized: SecretBytes(Array(bytes.unprotectedBytes[..<cut]))) }
        }
    }

    @Test func framingIsChecked() throws {
        var w = try Self.world()
        let valid = try w.alice.commit().message
        guard case .publicMessage(let pub) = valid.body else { throw MLSError.invalidValue("test") }

        var badTag = pub
        badTag.membershipTag![0] ^= 1
        Self.expectRefused(&w.bob, MLSMessage(body: .publicMessage(badTag)), .protocolViolation("membership tag does not verify"))

        var otherGroup = pub
        otherGroup.content.groupID.append(1)
        Self.expectRefused(&w.bob, MLSMessage(body: .publicMessage(otherGroup)), .protocolViolation("message for another group"))

        var otherEpoch = pub
        otherEpoch.content.epoch += 1
        Self.expectRefused(&w.bob, MLSMessage(body: .publicMessage(otherEpoch)), .protocolViolation("message for another epoch"))

        // A flipped signature under a valid membership tag.
        var badSignature = AuthenticatedContent(wireFormat: .publicMessage, content: pub.content, auth: pub.auth)
        badSignature.auth.signature[5] ^= 1
        let retagged = try PublicMessage(protecting: badSignature, suite: w.suite, membershipKey: w.bob.secrets.membershipKey, context: w.bob.context)
        Self.expectRefused(&w.bob, MLSMessage(body: .publicMessage(retagged)), .invalidSignature)

        // A wrong confirmation tag (it is covered by the membership tag, not by the signature).
        var badConfirmation = AuthenticatedContent(wireFormat: .publicMessage, content: pub.content, auth: pub.auth)
        badConfirmation.auth.confirmationTag![0] ^= 1
        let retagged2 = try PublicMessage(protecting: badConfirmation, suite: w.suite, membershipKey: w.bob.secrets.membershipKey, context: w.bob.context)
        Self.expectRefused(&w.bob, MLSMessage(body: .publicMessage(retagged2)), .protocolViolation("the commit's confirmation tag does not verify"))

        // The valid commit still goes through, and cannot be replayed.
        #expect(try w.bob.process(valid) == .commit(epoch: 2))
        Self.expectRefused(&w.bob, valid, .protocolViolation("message for another epoch"))
    }

    @Test func pathsAreChecked() throws {
        var w = try Self.world()
        var alice = w.alice
        let valid = try alice.commit().message   // a path to Bob and Carol

        let flippedSecret = try Self.altered(w, valid) { $0.path!.nodes[0].encryptedPathSecret[0].ciphertext[0] ^= 1 }
        Self.expectRefused(&w.bob, flippedSecret, .decryptionFailed)

        let otherKey = try Self.altered(w, valid) { $0.path!.nodes[0].encryptionKey[3] ^= 1 }
        Self.expectRefused(&w.bob, otherKey, nil)

        let droppedNode = try Self.altered(w, valid) { $0.path!.nodes.removeLast() }
        Self.expectRefused(&w.bob, droppedNode, .protocolViolation("the update path does not match the sender's filtered direct path"))

        // Bob's and Carol's path secrets swapped between the two path nodes.
        let reorderedCiphertexts = try Self.altered(w, valid) { commit in
            let first = commit.path!.nodes[0].encryptedPathSecret
            commit.path!.nodes[0].encryptedPathSecret = commit.path!.nodes[1].encryptedPathSecret
            commit.path!.nodes[1].encryptedPathSecret = first
        }
        Self.expectRefused(&w.bob, reorderedCiphertexts, .decryptionFailed)

        let noPath = try Self.altered(w, valid) { $0.path = nil }
        Self.expectRefused(&w.bob, noPath, .protocolViolation("this commit needs a path"))
    }

    @Test func proposalListRulesAreChecked() throws {
        var w = try Self.world()
        let path = try { () throws -> UpdatePath in
            var alice = w.alice
            guard case .publicMessage(let pub) = try alice.commit().message.body, case .commit(let c) = pub.content.body else { throw MLSError.invalidValue("test") }
            return c.path!
        }()
        let dave = try TestClient(suite: w.suite, name: "dave")
        var badKeyPackage = dave.keyPackage
        badKeyPackage.signature[0] ^= 1
        var otherSuite = dave.keyPackage
        otherSuite.cipherSuite = 1
        let psk = PreSharedKeyID(kind: .external(pskID: [1]), nonce: [UInt8](repeating: 0, count: 32))

        let cases: [([ProposalOrRef], MLSError)] = [
            ([.proposal(.remove(leafIndex: 7))], .protocolViolation("a Remove of a blank leaf")),
            ([.proposal(.remove(leafIndex: 1)), .proposal(.remove(leafIndex: 1))], .protocolViolation("two Updates or Removes for one leaf")),
            ([.reference([UInt8](repeating: 9, count: 32))], .protocolViolation("commit refers to an unknown proposal")),
            ([.proposal(.externalInit(kemOutput: [UInt8](repeating: 1, count: 32)))], .protocolViolation("an ExternalInit in a member's commit")),
            ([.proposal(.add(badKeyPackage))], .invalidSignature),
            ([.proposal(.add(otherSuite))], .protocolViolation("a KeyPackage for another version or suite")),
            ([.proposal(.add(dave.keyPackage)), .proposal(.add(dave.keyPackage))], .protocolViolation("an Add for a signature key already in the group")),
            ([.proposal(.preSharedKey(psk)), .proposal(.preSharedKey(psk))], .protocolViolation("the same PSK twice")),
            ([.proposal(.groupContextExtensions([])), .proposal(.groupContextExtensions([]))], .protocolViolation("two GroupContextExtensions proposals")),
            ([.proposal(.reInit(.init(groupID: [1], version: 1, cipherSuite: 3, extensions: []))), .proposal(.remove(leafIndex: 1))],
             .protocolViolation("a ReInit with other proposals")),
        ]
        for (proposals, expected) in cases {
            Self.expectRefused(&w.bob, try Self.forged(w, Commit(proposals: proposals, path: path)), expected)
        }
        // An Update from the committer itself.
        Self.expectRefused(&w.bob, try Self.forged(w, Commit(proposals: [.proposal(.update(path.leafNode))], path: path)),
                           .protocolViolation("an Update from the committer or a non-member"))
    }

    @Test func applicationMessagesAreCheckedAndOpenOnce() throws {
        var w = try Self.world()
        let message = try w.alice.encrypt(Array("once".utf8))
        guard case .privateMessage(let priv) = message.body else { throw MLSError.invalidValue("test") }
        var flipped = priv
        flipped.ciphertext[flipped.ciphertext.count / 2] ^= 1
        Self.expectRefused(&w.bob, MLSMessage(body: .privateMessage(flipped)), .decryptionFailed)
        var otherData = priv
        otherData.authenticatedData = [1]
        Self.expectRefused(&w.bob, MLSMessage(body: .privateMessage(otherData)), .decryptionFailed)
        #expect(try w.bob.process(message) == .application(data: Array("once".utf8), sender: 0))
        Self.expectRefused(&w.bob, message, .generationUnavailable(0))

        // Application data is never accepted in the clear.
        let content = FramedContent(groupID: w.alice.context.groupID, epoch: w.alice.epoch, sender: .member(leafIndex: 0), body: .application([1]))
        let signed = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: w.suite, key: w.aliceClient.signatureKey,
                                               context: w.alice.context)
        let clear = try PublicMessage(protecting: signed, suite: w.suite, membershipKey: w.alice.secrets.membershipKey, context: w.alice.context)
        Self.expectRefused(&w.bob, MLSMessage(body: .publicMessage(clear)), .protocolViolation("application data in a PublicMessage"))
    }

    /// The application's credential check is asked for every new leaf: an Add it refuses is refused, and a
    /// Welcome into a tree holding such a leaf is not joined.
    @Test func credentialsAreCheckedThroughTheCallback() throws {
        var w = try Self.world()
        let refuseMallory: CredentialValidator = { credential, _ in credential != .basic(identity: Array("mallory".utf8)) }
        w.bob.credentialValidator = refuseMallory
        let mallory = try TestClient(suite: w.suite, name: "mallory"), erin = try TestClient(suite: w.suite, name: "erin")
        var alice = w.alice
        let add = try alice.commit(adding: [mallory.keyPackage, erin.keyPackage])
        Self.expectRefused(&w.bob, add.message, .credentialRejected)
        #expect(throws: MLSError.credentialRejected) {
            try Group.join(welcome: add.welcome!, keyPackage: erin.keyPackage, initPrivateKey: erin.initKeys.privateKey,
                           encryptionPrivateKey: erin.encryptionKeys.privateKey, credentialValidator: refuseMallory)
        }
        _ = try Group.join(welcome: add.welcome!, keyPackage: erin.keyPackage, initPrivateKey: erin.initKeys.privateKey,
                           encryptionPrivateKey: erin.encryptionKeys.privateKey)
    }

    /// §§7.2, 11.1, 12.1: a new leaf must list the group's suite and every required capability, and a
    /// GroupContextExtensions proposal must be supported by every member.
    @Test func capabilitiesAreChecked() throws {
        var w = try Self.world()
        let path = try { () throws -> UpdatePath in
            var alice = w.alice
            guard case .publicMessage(let pub) = try alice.commit().message.body, case .commit(let c) = pub.content.body else { throw MLSError.invalidValue("test") }
            return c.path!
        }()
        let otherSuite = try TestClient(suite: w.suite, name: "dave", capabilities: Capabilities(cipherSuites: [1]))
        Self.expectRefused(&w.bob, try Self.forged(w, Commit(proposals: [.proposal(.add(otherSuite.keyPackage))], path: path)),
                           .protocolViolation("a new leaf does not support the group's capabilities"))

        // Required: proposal type 0x0a0a, which nobody lists.
        let required = MLSExtension(type: ExtensionType.requiredCapabilities,
                                    data: RequiredCapabilities(proposalTypes: [0x0a0a]).tlsEncoded)
        Self.expectRefused(&w.bob, try Self.forged(w, Commit(proposals: [.proposal(.groupContextExtensions([required]))], path: path)),
                           .protocolViolation("a member does not support the new group extensions"))

        // Required credential type basic, which everyone lists: accepted as far as the rule goes (the
        // forged commit then fails later, on its path, which was made for another group context).
        let basicOnly = MLSExtension(type: ExtensionType.requiredCapabilities, data: RequiredCapabilities(credentialTypes: [1]).tlsEncoded)
        var bob = w.bob
        do {
            _ = try bob.process(try Self.forged(w, Commit(proposals: [.proposal(.groupContextExtensions([basicOnly]))], path: path)))
            Issue.record("a forged commit was accepted")
        } catch let error as MLSError {
            #expect(error != .protocolViolation("a member does not support the new group extensions"))
        }
    }

    /// §10.1: an Add's KeyPackage must be within its lifetime by the receiver's clock.
    @Test func keyPackageLifetimeIsChecked() throws {
        var w = try Self.world()
        var alice = w.alice
        let dave = try TestClient(suite: w.suite, name: "dave")   // lifetime 0 … 2^64-1
        let add = try alice.commit(adding: [dave.keyPackage])
        let lifetime = Lifetime(notBefore: 0, notAfter: .max)
        #expect(lifetime.contains(1_800_000_000))
        w.bob.clock = { 0 }
        _ = try { var b = w.bob; return try b.process(add.message) }()
        // The same KeyPackage, re-signed with a lifetime that ended at 1,000 s.
        let expired = try TestClient(suite: w.suite, name: "erin")
        var leaf = expired.keyPackage.leafNode
        leaf.source = .keyPackage(Lifetime(notBefore: 0, notAfter: 1_000))
        try leaf.sign(suite: w.suite, key: expired.signatureKey, context: nil)
        var keyPackage = expired.keyPackage
        keyPackage.leafNode = leaf
        keyPackage.sign(suite: w.suite, key: expired.signatureKey)
        w.bob.clock = { 2_000 }
        var alice2 = w.alice
        alice2.clock = nil
        let late = try alice2.commit(adding: [keyPackage])
        Self.expectRefused(&w.bob, late.message, .protocolViolation("a KeyPackage outside its lifetime"))
        w.bob.clock = { 500 }
        #expect(try w.bob.process(late.message) == .commit(epoch: 2))
    }

    /// §7.3 through the tree's leaf validation: an Add whose leaf reuses a member's encryption key is refused.
    @Test func addedLeafMayNotReuseAMembersKey() throws {
        var w = try Self.world()
        let dave = try TestClient(suite: w.suite, name: "dave")
        var leaf = dave.keyPackage.leafNode
        leaf.encryptionKey = try #require(w.bob.tree.leaf(1)).encryptionKey
        try leaf.sign(suite: w.suite, key: dave.signatureKey, context: nil)
        var keyPackage = dave.keyPackage
        keyPackage.leafNode = leaf
        keyPackage.sign(suite: w.suite, key: dave.signatureKey)
        let path = try { () throws -> UpdatePath in
            var alice = w.alice
            guard case .publicMessage(let pub) = try alice.commit().message.body, case .commit(let c) = pub.content.body else { throw MLSError.invalidValue("test") }
            return c.path!
        }()
        Self.expectRefused(&w.bob, try Self.forged(w, Commit(proposals: [.proposal(.add(keyPackage))], path: path)),
                           .protocolViolation(TreeViolation.duplicateEncryptionKey))
    }
}
