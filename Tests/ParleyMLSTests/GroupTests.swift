import ParleyCrypto
@testable import ParleyMLS
import Testing

/// A client with a KeyPackage and the private keys behind it.
struct TestClient {
    let suite: CipherSuite
    let signatureKey = SignaturePrivateKey()
    let initKeys: HPKEKeyPair
    let encryptionKeys: HPKEKeyPair
    let keyPackage: KeyPackage

    init(suite: CipherSuite, name: String, capabilities: Capabilities? = nil) throws {
        self.suite = suite
        initKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        encryptionKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        var leaf = LeafNode(encryptionKey: encryptionKeys.publicKey, signatureKey: signatureKey.publicKey,
                            credential: .basic(identity: Array(name.utf8)), capabilities: capabilities ?? Capabilities(cipherSuites: [suite.id]),
                            source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)), extensions: [])
        try leaf.sign(suite: suite, key: signatureKey, context: nil)
        var keyPackage = KeyPackage(cipherSuite: suite.id, initKey: initKeys.publicKey, leafNode: leaf, extensions: [])
        keyPackage.sign(suite: suite, key: signatureKey)
        self.keyPackage = keyPackage
    }

    func create(groupID: [UInt8] = Array("group".utf8)) throws -> Group {
        try Group.create(suite: suite, groupID: groupID, leaf: keyPackage.leafNode, encryptionPrivateKey: encryptionKeys.privateKey,
                         signatureKey: signatureKey)
    }

    func join(_ welcome: Welcome) throws -> Group {
        try Group.join(welcome: welcome, keyPackage: keyPackage, initPrivateKey: initKeys.privateKey,
                       encryptionPrivateKey: encryptionKeys.privateKey, signatureKey: signatureKey)
    }
}

@Suite struct GroupTests {
    static func sameEpoch(_ groups: [Group]) -> Bool {
        let first = groups[0]
        return groups.allSatisfy {
            $0.epoch == first.epoch && $0.epochAuthenticator.constantTimeEquals(first.epochAuthenticator) && $0.context == first.context
        }
    }

    @Test(arguments: CipherSuite.supported) func lifecycle(suite: CipherSuite) throws {
        let alice = try TestClient(suite: suite, name: "alice"), bob = try TestClient(suite: suite, name: "bob")
        let carol = try TestClient(suite: suite, name: "carol"), dave = try TestClient(suite: suite, name: "dave")
        var a = try alice.create()

        // Add Bob and Carol in one commit; both join from the Welcome.
        let add = try a.commit(adding: [bob.keyPackage, carol.keyPackage])
        var b = try bob.join(try #require(add.welcome))
        var c = try carol.join(try #require(add.welcome))
        #expect(Self.sameEpoch([a, b, c]))
        #expect(a.tree.occupiedLeaves == [0, 1, 2])

        // Application messages, out of order across senders.
        let m1 = try a.encrypt(Array("hello".utf8), padding: 10)
        let m2 = try b.encrypt(Array("hi".utf8))
        #expect(try c.process(m2) == .application(data: Array("hi".utf8), sender: 1))
        #expect(try c.process(m1) == .application(data: Array("hello".utf8), sender: 0))
        #expect(try b.process(m1) == .application(data: Array("hello".utf8), sender: 0))

        // Bob updates himself (empty commit with a path), as a PrivateMessage.
        let update = try b.commit(wireFormat: .privateMessage)
        #expect(try a.process(update.message) == .commit(epoch: 2))
        #expect(try c.process(update.message) == .commit(epoch: 2))
        #expect(Self.sameEpoch([a, b, c]))

        // Carol adds Dave without a path; then Alice removes Carol.
        let addDave = try c.commit(adding: [dave.keyPackage], updatePath: false)
        _ = try a.process(addDave.message)
        _ = try b.process(addDave.message)
        var d = try dave.join(try #require(addDave.welcome))
        #expect(Self.sameEpoch([a, b, c, d]))

        let remove = try a.commit(removing: [2])
        #expect(try c.process(remove.message) == .removed)
        #expect(!c.isActive)
        _ = try b.process(remove.message)
        _ = try d.process(remove.message)
        #expect(Self.sameEpoch([a, b, d]))
        #expect(b.tree.occupiedLeaves == [0, 1, 3])

        // The removed member can no longer read the group.
        let m3 = try d.encrypt(Array("after".utf8))
        #expect(try b.process(m3) == .application(data: Array("after".utf8), sender: 3))
        #expect(throws: MLSError.self) { try c.process(m3) }
        #expect(a.export(label: "parley test", context: [1], length: 32).constantTimeEquals(d.export(label: "parley test", context: [1], length: 32)))
    }
}

extension GroupTests {
    /// Dave joins from Alice's GroupInfo with an external commit; Alice and Bob process it and all three
    /// share the new epoch; later Dave rejoins (resync) replacing his own leaf.
    @Test(arguments: CipherSuite.supported) func externalCommit(suite: CipherSuite) throws {
        let alice = try TestClient(suite: suite, name: "alice"), bob = try TestClient(suite: suite, name: "bob")
        let dave = try TestClient(suite: suite, name: "dave")
        var a = try alice.create()
        let add = try a.commit(adding: [bob.keyPackage])
        var b = try bob.join(try #require(add.welcome))

        // A GroupInfo with two ratchet_tree extensions is refused, as a Welcome's is (RFC 9420 §13.4: extensions are unique).
        var doubled = add.groupInfo
        doubled.extensions += doubled.extensions.filter { $0.extensionType == ExtensionType.ratchetTree }
        #expect(throws: MLSError.protocolViolation("two ratchet_tree extensions")) {
            try Group.joinByExternalCommit(groupInfo: doubled, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey)
        }

        let joined = try Group.joinByExternalCommit(groupInfo: add.groupInfo, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey)
        var d = joined.group
        #expect(try a.process(joined.message) == .commit(epoch: 2))
        #expect(try b.process(joined.message) == .commit(epoch: 2))
        #expect(Self.sameEpoch([a, b, d]))
        #expect(d.myLeaf == 2)

        let hello = try d.encrypt(Array("joined".utf8))
        #expect(try a.process(hello) == .application(data: Array("joined".utf8), sender: 2))

        // An external commit whose confirmation tag is flipped is refused, state unchanged.
        var bob2 = b
        let again = try bob2.commit()
        _ = try a.process(again.message)
        _ = try d.process(again.message)
        let rejoin = try Group.joinByExternalCommit(groupInfo: again.groupInfo, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey,
                                                    removing: 2)
        guard case .publicMessage(var tampered) = rejoin.message.body else { throw MLSError.invalidValue("test") }
        tampered.auth.confirmationTag![0] ^= 1
        let before = a.serialized().unprotectedBytes
        #expect(throws: MLSError.protocolViolation("the commit's confirmation tag does not verify")) {
            try a.process(MLSMessage(body: .publicMessage(tampered)))
        }
        #expect(a.serialized().unprotectedBytes == before)
        #expect(try a.process(rejoin.message) == .commit(epoch: 4))
        #expect(try bob2.process(rejoin.message) == .commit(epoch: 4))
        #expect(Self.sameEpoch([a, bob2, rejoin.group]))
        #expect(rejoin.group.tree.occupiedLeaves == [0, 1, 2])
        #expect(try d.process(rejoin.message) == .removed)
    }
}

extension GroupTests {
    /// Proposals sent on their own and committed by reference by another member: Bob's Update (his new key
    /// kept until the commit) and Carol's Add of Dave; Alice commits both.
    @Test(arguments: CipherSuite.supported) func proposalsByReference(suite: CipherSuite) throws {
        let alice = try TestClient(suite: suite, name: "alice"), bob = try TestClient(suite: suite, name: "bob")
        let carol = try TestClient(suite: suite, name: "carol"), dave = try TestClient(suite: suite, name: "dave")
        var a = try alice.create()
        let add = try a.commit(adding: [bob.keyPackage, carol.keyPackage])
        var b = try bob.join(try #require(add.welcome)), c = try carol.join(try #require(add.welcome))

        let update = try b.proposeUpdate()
        let addDave = try c.propose(.add(dave.keyPackage))
        for message in [update, addDave] {
            _ = try a.process(message)
        }
        _ = try b.process(addDave)
        _ = try c.process(update)
        // The pending update survives serialisation.
        b = try Group(serialized: b.serialized())

        let commit = try a.commit()
        guard case .publicMessage(let pub) = commit.message.body, case .commit(let sent) = pub.content.body else { throw MLSError.invalidValue("test") }
        #expect(sent.proposals.count == 2 && sent.proposals.allSatisfy { if case .reference = $0 { true } else { false } })
        #expect(try b.process(commit.message) == .commit(epoch: 2))
        #expect(try c.process(commit.message) == .commit(epoch: 2))
        let d = try dave.join(try #require(commit.welcome))
        #expect(Self.sameEpoch([a, b, c, d]))
        #expect(b.tree.leaf(1)?.encryptionKey != bob.encryptionKeys.publicKey)

        // Bob, with his updated key, still reads the group after another commit with a path.
        let next = try c.commit()
        _ = try a.process(next.message)
        #expect(try b.process(next.message) == .commit(epoch: 3))
        #expect(Self.sameEpoch([a, b, c]))
    }
}

extension GroupTests {
    /// RFC 9420 §11.2: a ReInit closes the group; its members start the new one (another suite here), whose
    /// Welcome carries the old group's resumption PSK.
    @Test func reInitMovesTheGroupToANewSuite() throws {
        let old = CipherSuite.x25519AES128GCM, new = CipherSuite.x25519ChaCha20Poly1305
        let alice = try TestClient(suite: old, name: "alice"), bob = try TestClient(suite: old, name: "bob")
        var a = try alice.create(groupID: Array("old".utf8))
        var b = try bob.join(try #require(try a.commit(adding: [bob.keyPackage]).welcome))

        let reInit = Proposal.ReInit(groupID: Array("new".utf8), version: 1, cipherSuite: new.id, extensions: [])
        _ = try b.process(try a.propose(.reInit(reInit)))
        let commit = try a.commit(updatePath: false)
        #expect(try b.process(commit.message) == .commit(epoch: 2))
        #expect(a.reInit == reInit && b.reInit == reInit)
        #expect(throws: MLSError.protocolViolation("the group was reinitialised")) { try a.encrypt([1]) }
        #expect(throws: MLSError.protocolViolation("the group was reinitialised")) { try b.process(commit.message) }
        let restored = try Group(serialized: b.serialized())
        #expect(restored.reInit == reInit)

        // The new group, in the ReInit's suite and id, tied to the old one by its reinit resumption PSK.
        let alice2 = try TestClient(suite: new, name: "alice"), bob2 = try TestClient(suite: new, name: "bob")
        let (a2, founding) = try Group.reinitialise(a, leaf: alice2.keyPackage.leafNode, encryptionPrivateKey: alice2.encryptionKeys.privateKey,
                                                    signatureKey: alice2.signatureKey, adding: [bob2.keyPackage])
        let welcome = try #require(founding.welcome)
        #expect(throws: MLSError.protocolViolation("the Welcome needs a PSK this client does not have")) { try bob2.join(welcome) }
        let b2 = try Group.join(welcome: welcome, keyPackage: bob2.keyPackage, initPrivateKey: bob2.initKeys.privateKey,
                                encryptionPrivateKey: bob2.encryptionKeys.privateKey, signatureKey: bob2.signatureKey, resuming: b)
        #expect(Self.sameEpoch([a2, b2]))
        #expect(a2.context.groupID == reInit.groupID && a2.epoch == 1)
        #expect(b2.suite == new)
    }
}

extension GroupTests {
    /// §12.1.8.1: a proposal from a sender listed in `external_senders` (a server, say) is verified with its
    /// key and can be committed by reference; one signed by an unlisted key, or naming a missing index, is not.
    @Test func externalSendersMayPropose() throws {
        let suite = CipherSuite.x25519ChaCha20Poly1305
        let server = SignaturePrivateKey()
        var senders = TLSWriter()
        senders.writeVector([ExternalSender(signatureKey: server.publicKey, credential: .basic(identity: Array("server".utf8)))])
        let alice = try TestClient(suite: suite, name: "alice"), bob = try TestClient(suite: suite, name: "bob")
        var a = try Group.create(suite: suite, groupID: Array("g".utf8), leaf: alice.keyPackage.leafNode,
                                 encryptionPrivateKey: alice.encryptionKeys.privateKey, signatureKey: alice.signatureKey,
                                 extensions: [MLSExtension(type: ExtensionType.externalSenders, data: senders.bytes)])
        var b = try bob.join(try #require(try a.commit(adding: [bob.keyPackage]).welcome))

        func proposal(from key: SignaturePrivateKey, index: UInt32) throws -> MLSMessage {
            let content = FramedContent(groupID: a.context.groupID, epoch: a.epoch, sender: .external(senderIndex: index),
                                        body: .proposal(.remove(leafIndex: 1)))
            let signed = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: suite, key: key, context: nil)
            return MLSMessage(body: .publicMessage(try PublicMessage(protecting: signed, suite: suite, membershipKey: nil, context: nil)))
        }
        #expect(throws: MLSError.invalidSignature) { try a.process(try proposal(from: SignaturePrivateKey(), index: 0)) }
        #expect(throws: MLSError.protocolViolation("unknown external sender")) { try a.process(try proposal(from: server, index: 1)) }
        let remove = try proposal(from: server, index: 0)
        #expect(try a.process(remove) == .proposal(.remove(leafIndex: 1), sender: .external(senderIndex: 0)))
        _ = try b.process(remove)
        let commit = try a.commit()
        #expect(try b.process(commit.message) == .removed)
        #expect(a.tree.occupiedLeaves == [0])
    }
}
