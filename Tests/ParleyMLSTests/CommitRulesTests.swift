import ParleyCrypto
@testable import ParleyMLS
import Testing

/// The MUSTs of RFC 9420 §12.2 (proposal list validation), §12.3 (applying proposals), §12.4 (commits,
/// Welcome, external commits) and §13 (extensibility), each with the test that refuses a message breaking it.
/// Every refusal is checked for its error and for a state left byte for byte as it was
/// (`GroupNegativeTests.expectRefused`). N = GroupNegativeTests, R = CommitRulesTests (this file),
/// G = GroupTests, K = TreeKEMTests, L = LeafNodeValidationTests, V = TreeValidationTests, W = WelcomeTests,
/// M = MessageProtectionTests, P = PassiveClientTests (IETF vectors).
///
/// | § | MUST | test |
/// | --- | --- | --- |
/// | 12.1 | a proposal's signature and epoch are verified before it is cached | N.framingIsChecked (signature); R.aProposalOfAnotherEpochIsRefused |
/// | 12.1.1 / 10.1 | an Add's KeyPackage is valid (version, suite, signatures, init key ≠ leaf key, lifetime, unique extensions) | N.proposalListRulesAreChecked, N.keyPackageLifetimeIsChecked, R.anAddMustBeANewValidClient |
/// | 12.1.2 / 7.3 | an Update's leaf is valid: source `update`, signed for this group and leaf, a new encryption key | L.theSourceMustFitTheUse, L.theSignatureMustVerifyForThisGroupAndPosition, R.anUpdateLeafMustBeValid |
/// | 12.1.3 | a Remove names a non-blank leaf | N.proposalListRulesAreChecked |
/// | 12.1.4 | a PSK nonce is `KDF.Nh` long; reinit / branch PSKs only in a new group's first commit | R.pskProposalsAreChecked |
/// | 12.1.5 | a ReInit's version is not below the group's | R.aReInitMayNotGoBackAVersion |
/// | 12.1.6 | an ExternalInit only in an external commit | N.proposalListRulesAreChecked |
/// | 12.1.7 | a GroupContextExtensions' required capabilities are supported by every member that stays (added ones included, removed ones not) | N.capabilitiesAreChecked, R.groupContextExtensionsAreCheckedAgainstTheMembersThatStay |
/// | 12.1.8 | an external sender is listed in `external_senders`; it may send only add, remove, psk, reinit, gce; a new member only its own Add | G.externalSendersMayPropose, R.senderTypesAreChecked |
/// | 12.2 | no Update from the committer | N.proposalListRulesAreChecked |
/// | 12.2 | no Remove of the committer | R.aCommitMayNotRemoveItsCommitter |
/// | 12.2 | at most one Update or Remove per leaf | N.proposalListRulesAreChecked (two Removes), R.oneLeafIsUpdatedOrRemovedOnce (Update + Remove, two Updates) |
/// | 12.2 | no two Adds of one client; no Add of a client in the group (its signature key) unless the list removes it | N.proposalListRulesAreChecked, R.anAddMustBeANewValidClient |
/// | 12.2 | no two PSK proposals with one PreSharedKeyID | N.proposalListRulesAreChecked |
/// | 12.2 | at most one GroupContextExtensions | N.proposalListRulesAreChecked |
/// | 12.2 | a ReInit alone | N.proposalListRulesAreChecked |
/// | 12.2 / 13.2 | no proposal type some member does not support (the codec carries types 1–7 only) | R.aProposalTypeNobodySupportsDoesNotDecode |
/// | 12.2 / 7.3 | the tree after the commit is valid: every new leaf per §7.3 | N.addedLeafMayNotReuseAMembersKey, N.capabilitiesAreChecked, L.*, K.aReusedKeyIsRefused |
/// | 12.2 ext. | exactly one ExternalInit | R.externalCommitsAreChecked |
/// | 12.2 ext. | at most one Remove, of the joiner's own old leaf (same credential, new encryption key) | R.externalCommitsAreChecked |
/// | 12.2 ext. | nothing but ExternalInit, Remove, PSK | R.externalCommitsAreChecked |
/// | 12.3 | GroupContextExtensions first: the new extensions judge the other proposals | R.groupContextExtensionsAreCheckedAgainstTheMembersThatStay |
/// | 12.3 | Updates, Removes, Adds in list order, PSKs in order, ExternalInit's init secret | P.welcome, P.handlingCommit, P.random (IETF vectors: the epoch authenticators agree), G.externalCommit |
/// | 12.4 | the path is present when the list is empty or holds update, remove, external_init or gce (sender and receiver) | N.pathsAreChecked (empty list), R.pathRequiredProposalsNeedAPath |
/// | 12.4.1 | Welcome `psks` in the order of the PSK proposals; the Welcome covers every new member | G.lifecycle, G.reInitMovesTheGroupToANewSuite |
/// | 12.4.1 | after a ReInit the committer founds the new group; its Welcome carries the reinit PSK | G.reInitMovesTheGroupToANewSuite, R.aResumedGroupsWelcomeMustCarryTheReInitPSK |
/// | 12.4.2 | the epoch is the current one | N.framingIsChecked |
/// | 12.4.2 | membership tag / PrivateMessage decryption | N.framingIsChecked, M.* |
/// | 12.4.2 | the signature verifies | N.framingIsChecked |
/// | 12.4.2 | every PSK is available | R.pskProposalsAreChecked |
/// | 12.4.2 | the path leaf: §7.3, source `commit`, a new encryption key, no path key already in the tree | K.aBadLeafSignatureIsRefused, K.aReusedKeyIsRefused, R.theCredentialCallbackIsAskedForEveryNewLeaf |
/// | 12.4.2 | path secrets decrypt under the provisional GroupContext and derive the sent keys | N.pathsAreChecked, K.anotherGroupContextIsRefused, K.aPathSecretThatDoesNotDeriveThePathKeysIsRefused |
/// | 12.4.2 | the confirmation tag verifies | N.framingIsChecked, G.externalCommit |
/// | 12.4.2 | after a ReInit nothing more is sent or processed in the group | G.reInitMovesTheGroupToANewSuite, R.aResumedGroupsWelcomeMustCarryTheReInitPSK |
/// | 12.4.3 | GroupInfo's unknown extensions are ignored | R.welcomesAreChecked |
/// | 12.4.3 | the GroupInfo signature verifies with the `signer` leaf's key (blank signer refused) | W.wrongKeysAndTamperingAreRefused, R.welcomesAreChecked |
/// | 12.4.3 | `group_id` unique among the client's groups | the application's (the engine keeps the list of groups; the library holds one) |
/// | 12.4.3.1 | a `secrets` entry for one of this client's KeyPackages, in its suite | W.wrongKeysAndTamperingAreRefused, R.welcomesAreChecked |
/// | 12.4.3.1 | every PSK present; at most one reinit / branch PSK | G.reInitMovesTheGroupToANewSuite, R.aResumedGroupsWelcomeMustCarryTheReInitPSK |
/// | 12.4.3.1 | the GroupInfo's suite is the KeyPackage's | R.welcomesAreChecked |
/// | 12.4.3.1 | the tree: tree hash, parent hashes, every leaf per §7.3 (incl. required capabilities, credential types both ways), unmerged leaves, unique keys | V.*, R.welcomesAreChecked |
/// | 12.4.3.1 | the tree holds the KeyPackage's leaf | R.welcomesAreChecked |
/// | 12.4.3.1 | private keys from the path secret match the tree | TreeCostTests.aNewMemberDerivesItsPathKeysFromTheWelcomePathSecret, K.aPathSecretThatDoesNotDeriveThePathKeysIsRefused |
/// | 12.4.3.1 | the confirmation tag verifies | R.welcomesAreChecked |
/// | 12.4.3.1 | a reinit / branch PSK: epoch 1; reinit: the GroupContext matches the ReInit of the resumed group | R.aResumedGroupsWelcomeMustCarryTheReInitPSK |
/// | 12.4.3.2 | an external commit has a path, no references, is signed by the path's leaf key, sender `new_member_commit`, uses the external init secret | R.externalCommitsAreChecked, G.externalCommit |
/// | 13.4 | a KeyPackage's unknown capabilities and extensions are ignored | R.anAddMustBeANewValidClient |
/// | 13.4 | no list of extensions holds one type twice (KeyPackage, leaf, GroupContext, GroupInfo) | R.anAddMustBeANewValidClient, R.groupContextExtensionsAreCheckedAgainstTheMembersThatStay, R.welcomesAreChecked, G.externalCommit |
/// | 13.4 | an added leaf lists every GroupContext extension | N.capabilitiesAreChecked, R.groupContextExtensionsAreCheckedAgainstTheMembersThatStay |
/// | 13.4 | a joiner supports every GroupContext extension (Welcome and external commit) | R.welcomesAreChecked, R.externalCommitsAreChecked |
/// | 13.3 | credential types in use are supported by every member | L.credentialTypesMustBeSupportedBothWays, R.welcomesAreChecked |
/// | 5.3.1 | credentials validated by the application: every new leaf (Add, Update, path, external joiner, a joined tree) and `external_senders` | N.credentialsAreCheckedThroughTheCallback, R.theCredentialCallbackIsAskedForEveryNewLeaf, R.externalSendersCredentialsAreChecked |
/// | 13.5 | GREASE | not sent by this library; received GREASE values are unknown values, ignored where §13.4 says so (R.anAddMustBeANewValidClient, R.welcomesAreChecked) |
///
/// Where the RFC only says SHOULD: a member's own `commit()` includes every pending proposal, so two
/// Updates of one leaf make it fail rather than pick one.
@Suite struct CommitRulesTests {
    struct Trio {
        var a: Group
        var b: Group
        var c: Group
        let alice: TestClient
        let bob: TestClient
        let carol: TestClient
        /// The GroupInfo of the trio's epoch (1).
        let groupInfo: GroupInfo
        var suite: CipherSuite { a.suite }
    }

    /// Alice (leaf 0), Bob (1) and Carol (2) in epoch 1.
    static func trio(alice aliceCapabilities: Capabilities? = nil, bob bobCapabilities: Capabilities? = nil,
                     carol carolCapabilities: Capabilities? = nil) throws -> Trio {
        let suite = CipherSuite.x25519ChaCha20Poly1305
        let alice = try TestClient(suite: suite, name: "alice", capabilities: aliceCapabilities)
        let bob = try TestClient(suite: suite, name: "bob", capabilities: bobCapabilities)
        let carol = try TestClient(suite: suite, name: "carol", capabilities: carolCapabilities)
        var a = try alice.create()
        let add = try a.commit(adding: [bob.keyPackage, carol.keyPackage])
        let welcome = try #require(add.welcome)
        return Trio(a: a, b: try bob.join(welcome), c: try carol.join(welcome), alice: alice, bob: bob, carol: carol, groupInfo: add.groupInfo)
    }

    /// A commit by the member `group` is (signed with `key`), membership-tagged for its epoch, so that only
    /// the rule under test is broken; the confirmation tag is a placeholder unless given.
    static func commit(_ proposals: [ProposalOrRef], path: UpdatePath?, by group: Group, key: SignaturePrivateKey,
                       confirmationTag: [UInt8]? = nil) throws -> MLSMessage {
        let context = group.context
        let content = FramedContent(groupID: context.groupID, epoch: context.epoch, sender: .member(leafIndex: group.myLeaf),
                                    body: .commit(Commit(proposals: proposals, path: path)))
        var authenticated = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: group.suite, key: key, context: context)
        authenticated.auth.confirmationTag = confirmationTag ?? [UInt8](repeating: 0, count: group.suite.hashLength)
        return MLSMessage(body: .publicMessage(try PublicMessage(protecting: authenticated, suite: group.suite,
                                                                 membershipKey: group.secrets.membershipKey, context: context)))
    }

    /// Alice's commit with `proposals` (and `path`).
    static func byAlice(_ t: Trio, _ proposals: [ProposalOrRef], path: UpdatePath? = nil) throws -> MLSMessage {
        try commit(proposals, path: path, by: t.a, key: t.alice.signatureKey)
    }

    /// The UpdatePath of an empty commit by Alice in this epoch: well-formed, so a path is never what fails.
    static func alicesPath(_ t: Trio) throws -> UpdatePath {
        var a = t.a
        guard case .publicMessage(let pub) = try a.commit().message.body, case .commit(let commit) = pub.content.body,
              let path = commit.path else { throw MLSError.invalidValue("test") }
        return path
    }

    static func commitBody(_ message: MLSMessage) throws -> (PublicMessage, Commit) {
        guard case .publicMessage(let pub) = message.body, case .commit(let commit) = pub.content.body else { throw MLSError.invalidValue("test") }
        return (pub, commit)
    }

    /// A signed KeyPackage for `signatureKey`, with fresh init and encryption keys.
    static func keyPackage(suite: CipherSuite, name: String, signatureKey: SignaturePrivateKey, capabilities: Capabilities? = nil,
                           extensions: [MLSExtension] = [], leafExtensions: [MLSExtension] = []) throws -> KeyPackage {
        let initKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let encryptionKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        var leaf = LeafNode(encryptionKey: encryptionKeys.publicKey, signatureKey: signatureKey.publicKey,
                            credential: .basic(identity: Array(name.utf8)), capabilities: capabilities ?? Capabilities(cipherSuites: [suite.id]),
                            source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)), extensions: leafExtensions)
        try leaf.sign(suite: suite, key: signatureKey, context: nil)
        var keyPackage = KeyPackage(cipherSuite: suite.id, initKey: initKeys.publicKey, leafNode: leaf, extensions: extensions)
        keyPackage.sign(suite: suite, key: signatureKey)
        return keyPackage
    }

    static func refuse(_ group: inout Group, _ message: MLSMessage, _ expected: MLSError, sourceLocation: SourceLocation = #_sourceLocation) {
        GroupNegativeTests.expectRefused(&group, message, expected, sourceLocation: sourceLocation)
    }

    // MARK: §12.1, §12.2: the proposal list

    @Test func aProposalOfAnotherEpochIsRefused() throws {
        var t = try Self.trio()
        var a = t.a
        guard case .publicMessage(var pub) = try a.propose(.remove(leafIndex: 2)).body else { throw MLSError.invalidValue("test") }
        pub.content.epoch += 1
        Self.refuse(&t.b, MLSMessage(body: .publicMessage(pub)), .protocolViolation("message for another epoch"))
    }

    @Test func aCommitMayNotRemoveItsCommitter() throws {
        var t = try Self.trio()
        let path = try Self.alicesPath(t)
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.remove(leafIndex: 0))], path: path),
                    .protocolViolation("a Remove of the committer"))
        #expect(throws: MLSError.protocolViolation("a Remove of the committer")) { try t.a.commit(removing: [0]) }
    }

    @Test func oneLeafIsUpdatedOrRemovedOnce() throws {
        var t = try Self.trio()
        let path = try Self.alicesPath(t)
        let update = try t.b.proposeUpdate()
        _ = try t.a.process(update)
        _ = try t.c.process(update)
        let updateRef = try #require(t.c.pendingProposals.first).reference
        Self.refuse(&t.c, try Self.byAlice(t, [.reference(updateRef), .proposal(.remove(leafIndex: 1))], path: path),
                    .protocolViolation("two Updates or Removes for one leaf"))

        let second = try t.b.proposeUpdate()
        _ = try t.a.process(second)
        _ = try t.c.process(second)
        let both = t.c.pendingProposals.map { ProposalOrRef.reference($0.reference) }
        #expect(both.count == 2)
        Self.refuse(&t.c, try Self.byAlice(t, both, path: path), .protocolViolation("two Updates or Removes for one leaf"))
        #expect(throws: MLSError.protocolViolation("two Updates or Removes for one leaf")) { try t.a.commit() }
    }

    @Test func anUpdateLeafMustBeValid() throws {
        var t = try Self.trio()
        let path = try Self.alicesPath(t)
        var a = t.a
        // Bob's Update whose leaf keeps his current encryption key, correctly signed and tagged.
        var leaf = try #require(t.b.tree.leaf(1))
        leaf.source = .update
        try leaf.sign(suite: t.suite, key: t.bob.signatureKey, context: LeafNodeSignatureContext(groupID: t.b.context.groupID, leafIndex: 1))
        let content = FramedContent(groupID: t.b.context.groupID, epoch: t.b.epoch, sender: .member(leafIndex: 1), body: .proposal(.update(leaf)))
        let signed = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: t.suite, key: t.bob.signatureKey, context: t.b.context)
        let proposal = MLSMessage(body: .publicMessage(try PublicMessage(protecting: signed, suite: t.suite,
                                                                         membershipKey: t.b.secrets.membershipKey, context: t.b.context)))
        _ = try a.process(proposal)
        _ = try t.c.process(proposal)
        let ref = try #require(t.c.pendingProposals.first).reference
        Self.refuse(&t.c, try Self.byAlice(t, [.reference(ref)], path: path), .protocolViolation(TreeViolation.unchangedUpdateKey))
        #expect(throws: MLSError.protocolViolation(TreeViolation.unchangedUpdateKey)) { try a.commit() }
    }

    @Test func anAddMustBeANewValidClient() throws {
        var t = try Self.trio()
        // Carol's own KeyPackage, and a fresh one with her signature key: the same client.
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.add(t.carol.keyPackage))]), .protocolViolation(TreeViolation.duplicateSignatureKey))
        let carolAgain = try Self.keyPackage(suite: t.suite, name: "carol", signatureKey: t.carol.signatureKey)
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.add(carolAgain))]), .protocolViolation(TreeViolation.duplicateSignatureKey))

        // A KeyPackage whose init key is its leaf's encryption key.
        let dave = SignaturePrivateKey()
        var sameKeys = try Self.keyPackage(suite: t.suite, name: "dave", signatureKey: dave)
        sameKeys.initKey = sameKeys.leafNode.encryptionKey
        sameKeys.sign(suite: t.suite, key: dave)
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.add(sameKeys))]), .protocolViolation("a KeyPackage's init key is its leaf's key"))

        // Two extensions of one type, in the KeyPackage or in its leaf.
        let twice = [MLSExtension(type: 0xff01, data: [1]), MLSExtension(type: 0xff01, data: [2])]
        let listed = Capabilities(cipherSuites: [t.suite.id], extensions: [0xff01])
        let kpTwice = try Self.keyPackage(suite: t.suite, name: "dave", signatureKey: dave, capabilities: listed, extensions: twice)
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.add(kpTwice))]), .protocolViolation(TreeViolation.repeatedExtension))
        let leafTwice = try Self.keyPackage(suite: t.suite, name: "dave", signatureKey: dave, capabilities: listed, leafExtensions: twice)
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.add(leafTwice))]), .protocolViolation(TreeViolation.repeatedExtension))

        // Unknown (GREASE) values in the capabilities and an unknown KeyPackage extension are ignored.
        let grease = Capabilities(cipherSuites: [t.suite.id, 0x0a0a], extensions: [0x1a1a], proposals: [0x2a2a], credentials: [1, 0x3a3a])
        let greasy = try Self.keyPackage(suite: t.suite, name: "dave", signatureKey: dave, capabilities: grease,
                                         extensions: [MLSExtension(type: 0x4a4a, data: [9, 9])])
        var a = t.a
        let add = try a.commit(adding: [greasy])
        #expect(try t.b.process(add.message) == .commit(epoch: 2))

        // Re-added by the commit that removes her old leaf: valid (§12.2, "unless there is a Remove"), one epoch.
        var u = try Self.trio()
        let carolNew = try Self.keyPackage(suite: u.suite, name: "carol", signatureKey: u.carol.signatureKey)
        let readd = try u.a.commit(adding: [carolNew], removing: [2])
        #expect(try u.b.process(readd.message) == .commit(epoch: 2))
        #expect(u.b.tree.leaf(2) == carolNew.leafNode && u.b.epochAuthenticator.constantTimeEquals(u.a.epochAuthenticator))
    }

    @Test func pskProposalsAreChecked() throws {
        var t = try Self.trio()
        let nonce = [UInt8](repeating: 7, count: t.suite.hashLength)
        for usage in [PreSharedKeyID.ResumptionUsage.reinit, .branch] {
            let id = PreSharedKeyID(kind: .resumption(usage: usage, groupID: Array("elsewhere".utf8), epoch: 1), nonce: nonce)
            t.b.importedResumptionPSKs[id.kind] = SecretBytes.random(count: 32)
            Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.preSharedKey(id))]),
                        .protocolViolation("a reinit or branch PSK outside a new group's first commit"))
            var a = t.a
            a.importedResumptionPSKs[id.kind] = SecretBytes.random(count: 32)
            #expect(throws: MLSError.protocolViolation("a reinit or branch PSK outside a new group's first commit")) {
                try a.commit(preSharedKeys: [id])
            }
        }
        let shortNonce = PreSharedKeyID(kind: .external(pskID: [1]), nonce: [1, 2, 3])
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.preSharedKey(shortNonce))]), .protocolViolation("a PSK nonce of the wrong length"))
        let unknownExternal = PreSharedKeyID(kind: .external(pskID: [1]), nonce: nonce)
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.preSharedKey(unknownExternal))]), .protocolViolation("unknown external PSK"))
        let unknownEpoch = PreSharedKeyID(kind: .resumption(usage: .application, groupID: t.a.context.groupID, epoch: 99), nonce: nonce)
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.preSharedKey(unknownEpoch))]), .protocolViolation("unknown resumption PSK"))

        // An application resumption PSK of an earlier epoch of this group is available to both.
        let earlier = PreSharedKeyID(kind: .resumption(usage: .application, groupID: t.a.context.groupID, epoch: 1), nonce: nonce)
        let commit = try t.a.commit(preSharedKeys: [earlier], updatePath: false)
        #expect(try t.b.process(commit.message) == .commit(epoch: 2))
        #expect(t.b.epochAuthenticator.constantTimeEquals(t.a.epochAuthenticator))
    }

    @Test func aReInitMayNotGoBackAVersion() throws {
        var t = try Self.trio()
        let older = Proposal.ReInit(groupID: Array("next".utf8), version: 0, cipherSuite: t.suite.id, extensions: [])
        Self.refuse(&t.b, try Self.byAlice(t, [.proposal(.reInit(older))]), .protocolViolation("a ReInit to an older protocol version"))
        #expect(throws: MLSError.protocolViolation("a ReInit to an older protocol version")) {
            _ = try t.a.propose(.reInit(older))
            _ = try t.a.commit()
        }
    }

    @Test func groupContextExtensionsAreCheckedAgainstTheMembersThatStay() throws {
        // Alice and Carol support extension 0xff00, Bob does not.
        let suite = CipherSuite.x25519ChaCha20Poly1305
        let withExtension = Capabilities(cipherSuites: [suite.id], extensions: [0xff00])
        var t = try Self.trio(alice: withExtension, carol: withExtension)
        let custom = MLSExtension(type: 0xff00, data: [1])
        let path = try Self.alicesPath(t)

        // §12.3: the new extensions judge the Adds of the same commit.
        let required = MLSExtension(type: ExtensionType.requiredCapabilities, data: RequiredCapabilities(extensionTypes: [0xff00]).tlsEncoded)
        let dave = try TestClient(suite: suite, name: "dave")
        Self.refuse(&t.c, try Self.byAlice(t, [.proposal(.groupContextExtensions([required])), .proposal(.add(dave.keyPackage))], path: path),
                    .protocolViolation("a new leaf does not support the group's capabilities"))
        Self.refuse(&t.c, try Self.byAlice(t, [.proposal(.groupContextExtensions([custom]))], path: path),
                    .protocolViolation("a member does not support the new group extensions"))
        let twice = [MLSExtension(type: ExtensionType.applicationID, data: [1]), MLSExtension(type: ExtensionType.applicationID, data: [2])]
        Self.refuse(&t.c, try Self.byAlice(t, [.proposal(.groupContextExtensions(twice))], path: path),
                    .protocolViolation(TreeViolation.repeatedExtension))

        // Bob, who lacks it, is removed by the same commit: the list is valid, and Carol follows it.
        _ = try t.c.process(try t.a.propose(.groupContextExtensions([custom])))
        let commit = try t.a.commit(removing: [1])
        #expect(try t.c.process(commit.message) == .commit(epoch: 2))
        #expect(t.c.context.extensions == [custom])
        #expect(t.c.epochAuthenticator.constantTimeEquals(t.a.epochAuthenticator))
    }

    @Test func aProposalTypeNobodySupportsDoesNotDecode() throws {
        var bytes = Commit(proposals: [.proposal(.remove(leafIndex: 1))], path: nil).tlsEncoded
        // proposals<V> length, ProposalOrRef type 1 (by value), proposal_type u16, removed u32, path absent.
        #expect(Array(bytes.prefix(4)) == [7, 1, 0, 3])
        bytes[2] = 0x0a
        bytes[3] = 0x0a
        #expect(throws: MLSError.invalidValue("proposal type")) { try Commit(tlsEncoded: bytes) }
    }

    @Test func senderTypesAreChecked() throws {
        var t = try Self.trio()
        var a = t.a
        let commit = try a.commit()
        let (pub, body) = try Self.commitBody(commit.message)
        // A member's commit re-sent as a new member's proposal sender.
        let content = FramedContent(groupID: pub.content.groupID, epoch: pub.content.epoch, sender: .newMemberProposal, body: .commit(body))
        let signed = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: t.suite, key: t.alice.signatureKey, context: t.b.context)
        let message = MLSMessage(body: .publicMessage(try PublicMessage(protecting: signed, suite: t.suite, membershipKey: nil, context: t.b.context)))
        Self.refuse(&t.b, message, .protocolViolation("a new member may only propose its own Add"))

        // §12.1.8: a listed external sender may send add, remove, psk, reinit and gce only.
        let suite = t.suite
        let server = SignaturePrivateKey()
        var senders = TLSWriter()
        senders.writeVector([ExternalSender(signatureKey: server.publicKey, credential: .basic(identity: Array("server".utf8)))])
        var s = try Group.create(suite: suite, groupID: Array("served".utf8), leaf: t.alice.keyPackage.leafNode,
                                 encryptionPrivateKey: t.alice.encryptionKeys.privateKey, signatureKey: t.alice.signatureKey,
                                 extensions: [MLSExtension(type: ExtensionType.externalSenders, data: senders.bytes)])
        func fromServer(_ proposal: Proposal) throws -> MLSMessage {
            let content = FramedContent(groupID: s.context.groupID, epoch: s.epoch, sender: .external(senderIndex: 0), body: .proposal(proposal))
            let signed = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: suite, key: server, context: nil)
            return MLSMessage(body: .publicMessage(try PublicMessage(protecting: signed, suite: suite, membershipKey: nil, context: nil)))
        }
        var leaf = try #require(s.tree.leaf(0))
        leaf.source = .update
        for proposal in [Proposal.update(leaf), .externalInit(kemOutput: [UInt8](repeating: 1, count: 32))] {
            Self.refuse(&s, try fromServer(proposal), .protocolViolation("proposal type not allowed from this sender"))
        }
        #expect(try s.process(try fromServer(.remove(leafIndex: 0))) == .proposal(.remove(leafIndex: 0), sender: .external(senderIndex: 0)))
    }

    // MARK: §12.4: paths

    @Test func pathRequiredProposalsNeedAPath() throws {
        var t = try Self.trio()
        for proposals: [ProposalOrRef] in [[.proposal(.remove(leafIndex: 2))], [.proposal(.groupContextExtensions([]))], []] {
            Self.refuse(&t.b, try Self.byAlice(t, proposals), .protocolViolation("this commit needs a path"))
        }
        let update = try t.c.proposeUpdate()
        _ = try t.a.process(update)
        _ = try t.b.process(update)
        let ref = try #require(t.b.pendingProposals.first).reference
        Self.refuse(&t.b, try Self.byAlice(t, [.reference(ref)]), .protocolViolation("this commit needs a path"))

        // The sender adds a path where one is required, even when asked for none.
        var u = try Self.trio()
        let removal = try u.a.commit(removing: [2], updatePath: false)
        #expect(try Self.commitBody(removal.message).1.path != nil)
        #expect(try u.b.process(removal.message) == .commit(epoch: 2))
    }

    // MARK: §12.2, §12.4.3.2: external commits

    @Test func externalCommitsAreChecked() throws {
        var t = try Self.trio()
        let dave = try TestClient(suite: t.suite, name: "dave"), erin = try TestClient(suite: t.suite, name: "erin")
        let join = try Group.joinByExternalCommit(groupInfo: t.groupInfo, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey)
        let (pub, real) = try Self.commitBody(join.message)
        let context = t.b.context
        func external(key: SignaturePrivateKey? = nil, _ change: (inout Commit) -> Void) throws -> MLSMessage {
            var commit = real
            change(&commit)
            let content = FramedContent(groupID: context.groupID, epoch: context.epoch, sender: .newMemberCommit, body: .commit(commit))
            var signed = AuthenticatedContent.sign(wireFormat: .publicMessage, content: content, suite: t.suite, key: key ?? dave.signatureKey, context: context)
            signed.auth.confirmationTag = pub.auth.confirmationTag
            return MLSMessage(body: .publicMessage(try PublicMessage(protecting: signed, suite: t.suite, membershipKey: nil, context: context)))
        }
        let cases: [((inout Commit) -> Void, MLSError)] = [
            ({ $0.proposals = [] }, .protocolViolation("an external commit needs exactly one ExternalInit")),
            ({ let both = $0.proposals; $0.proposals = both + both }, .protocolViolation("an external commit needs exactly one ExternalInit")),
            ({ $0.proposals.append(.proposal(.add(erin.keyPackage))) }, .protocolViolation("an external commit with a proposal it may not carry")),
            ({ $0.proposals.append(.proposal(.groupContextExtensions([]))) }, .protocolViolation("an external commit with a proposal it may not carry")),
            ({ $0.proposals.append(.reference([UInt8](repeating: 1, count: 32))) }, .protocolViolation("an external commit refers to a proposal")),
            ({ $0.proposals += [.proposal(.remove(leafIndex: 1)), .proposal(.remove(leafIndex: 2))] },
             .protocolViolation("an external commit removes more than one leaf")),
            ({ $0.proposals.append(.proposal(.remove(leafIndex: 1))) }, .protocolViolation("an external commit removes a leaf that is not the joiner's own")),
            ({ $0.path = nil }, .protocolViolation("an external commit needs a path")),
        ]
        for (change, expected) in cases {
            Self.refuse(&t.b, try external(change), expected)
        }
        Self.refuse(&t.b, try external(key: erin.signatureKey) { _ in }, .invalidSignature)

        // The joiner refuses a group whose GroupContext extension it does not support.
        var unsupported = t.groupInfo
        unsupported.groupContext.extensions = [MLSExtension(type: 0xff00, data: [])]
        #expect(throws: MLSError.protocolViolation("this client does not support the group's extensions")) {
            try Group.joinByExternalCommit(groupInfo: unsupported, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey)
        }
        #expect(try t.b.process(join.message) == .commit(epoch: 2))
    }

    // MARK: Item 2 of #21: the credential callback for every new leaf

    static func refusing(_ name: String) -> CredentialValidator {
        { credential, _ in credential != .basic(identity: Array(name.utf8)) }
    }

    @Test func theCredentialCallbackIsAskedForEveryNewLeaf() throws {
        // An Update proposal's new leaf.
        var t = try Self.trio()
        let update = try t.b.proposeUpdate()
        _ = try t.a.process(update)
        _ = try t.c.process(update)
        t.c.credentialValidator = Self.refusing("bob")
        let withUpdate = try t.a.commit()
        Self.refuse(&t.c, withUpdate.message, .credentialRejected)

        // The committer's new leaf in its UpdatePath.
        var u = try Self.trio()
        u.b.credentialValidator = Self.refusing("alice")
        let pathCommit = try u.a.commit().message
        Self.refuse(&u.b, pathCommit, .credentialRejected)

        // An external commit's joiner; and, on the joiner's side, the leaves of the tree it joins.
        var v = try Self.trio()
        let dave = try TestClient(suite: v.suite, name: "dave")
        let join = try Group.joinByExternalCommit(groupInfo: v.groupInfo, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey)
        v.b.credentialValidator = Self.refusing("dave")
        Self.refuse(&v.b, join.message, .credentialRejected)
        #expect(throws: MLSError.credentialRejected) {
            try Group.joinByExternalCommit(groupInfo: v.groupInfo, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey,
                                           credentialValidator: Self.refusing("carol"))
        }
        // With the callback accepting them, all of these go through.
        v.b.credentialValidator = CredentialValidation.anyBasicCredential
        #expect(try v.b.process(join.message) == .commit(epoch: 2))

        // A forged "resync": Mallory's leaf names Bob's credential, with her own signature key, and removes
        // Bob's leaf. A callback that binds Bob's credential to his key (as Parley's device list does) refuses
        // it, and Bob, whom it would remove and who cannot decrypt its path, refuses it too instead of
        // leaving the group.
        var w = try Self.trio()
        let bobKey = w.bob.signatureKey.publicKey
        let binding: CredentialValidator = { credential, key in credential != .basic(identity: Array("bob".utf8)) || key == bobKey }
        w.a.credentialValidator = binding
        w.b.credentialValidator = binding
        let mallory = SignaturePrivateKey()
        var impostor = try #require(w.b.tree.leaf(1))
        impostor.signatureKey = mallory.publicKey
        let resync = try Group.joinByExternalCommit(groupInfo: w.groupInfo, leaf: impostor, signatureKey: mallory, removing: 1)
        Self.refuse(&w.a, resync.message, .credentialRejected)
        Self.refuse(&w.b, resync.message, .credentialRejected)
        #expect(w.b.isActive)
    }

    /// §5.3.1: the credentials of `external_senders` are validated when a GroupContextExtensions proposal
    /// names them and when a joiner's GroupContext holds them.
    @Test func externalSendersCredentialsAreChecked() throws {
        var t = try Self.trio()
        var senders = TLSWriter()
        senders.writeVector([ExternalSender(signatureKey: SignaturePrivateKey().publicKey, credential: .basic(identity: Array("server".utf8)))])
        let listing = MLSExtension(type: ExtensionType.externalSenders, data: senders.bytes)
        _ = try t.b.process(try t.a.propose(.groupContextExtensions([listing])))
        let commit = try t.a.commit()
        t.b.credentialValidator = Self.refusing("server")
        Self.refuse(&t.b, commit.message, .credentialRejected)
        t.b.credentialValidator = CredentialValidation.anyBasicCredential
        #expect(try t.b.process(commit.message) == .commit(epoch: 2))

        let dave = try TestClient(suite: t.suite, name: "dave")
        let add = try t.a.commit(adding: [dave.keyPackage])
        let welcome = try #require(add.welcome)
        #expect(throws: MLSError.credentialRejected) {
            try Group.join(welcome: welcome, keyPackage: dave.keyPackage, initPrivateKey: dave.initKeys.privateKey,
                           encryptionPrivateKey: dave.encryptionKeys.privateKey, credentialValidator: Self.refusing("server"))
        }
        #expect(throws: MLSError.credentialRejected) {
            try Group.joinByExternalCommit(groupInfo: add.groupInfo, leaf: dave.keyPackage.leafNode, signatureKey: dave.signatureKey,
                                           credentialValidator: Self.refusing("server"))
        }
        #expect(try dave.join(welcome).context.extensions == [listing])
    }

    // MARK: §12.4.3.1, §13.4: Welcome

    /// A Welcome to `keyPackage` of the GroupInfo `info` after `change`, made as a committer makes one (a
    /// fresh joiner secret, the tree hash and confirmation tag recomputed unless `keepTag`, signed with
    /// `signer`), so that the change is the only thing wrong with it.
    static func welcome(_ info: GroupInfo, to keyPackage: KeyPackage, signer: SignaturePrivateKey, keepTag: Bool = false,
                        psks: [(id: PreSharedKeyID, secret: SecretBytes)] = [],
                        _ change: (inout GroupInfo, inout RatchetTree) throws -> Void = { _, _ in }) throws -> Welcome {
        let suite = try CipherSuite(id: info.groupContext.cipherSuite)
        var info = info
        let treeData = try #require(info.extensions.first { $0.extensionType == ExtensionType.ratchetTree }).data
        var tree = try RatchetTree(suite: suite, encoded: treeData)
        try change(&info, &tree)
        info.groupContext.treeHash = tree.treeHash()
        info.extensions = info.extensions.map { $0.extensionType == ExtensionType.ratchetTree ? MLSExtension(type: ExtensionType.ratchetTree, data: tree.encoded) : $0 }
        let joiner = SecretBytes.random(count: suite.hashLength)
        let pskSecret = PSKSecret.derive(suite: suite, psks: psks)
        if !keepTag {
            let secrets = EpochSecrets(suite: suite, joinerSecret: joiner, pskSecret: pskSecret, groupContext: info.groupContext.tlsEncoded)
            info.confirmationTag = secrets.confirmationTag(confirmedTranscriptHash: info.groupContext.confirmedTranscriptHash)
        }
        info.sign(suite: suite, key: signer)
        return try Welcome.seal(suite: suite, groupInfo: info,
                                welcomeSecret: EpochSecrets.welcomeSecret(suite: suite, joinerSecret: joiner, pskSecret: pskSecret),
                                recipients: [(keyPackage, GroupSecrets(joinerSecret: joiner, pathSecret: nil, psks: psks.map(\.id)))])
    }

    @Test func welcomesAreChecked() throws {
        let suite = CipherSuite.x25519ChaCha20Poly1305
        // Bob lists extension 0xff00 and credential type basic only; Alice lists neither 0xff00 nor x509.
        let alice = try TestClient(suite: suite, name: "alice")
        let bob = try TestClient(suite: suite, name: "bob", capabilities: Capabilities(cipherSuites: [suite.id], extensions: [0xff00]))
        var a = try alice.create()
        let info = try a.commit(adding: [bob.keyPackage], updatePath: false).groupInfo
        func join(_ welcome: Welcome, as client: TestClient? = nil) throws -> Group {
            let client = client ?? bob
            return try Group.join(welcome: welcome, keyPackage: client.keyPackage, initPrivateKey: client.initKeys.privateKey,
                                  encryptionPrivateKey: client.encryptionKeys.privateKey, signatureKey: client.signatureKey)
        }
        let key = alice.signatureKey

        // As made, and with unknown (GREASE) GroupInfo extensions, which a joiner ignores: accepted.
        #expect(try join(try Self.welcome(info, to: bob.keyPackage, signer: key)).epoch == 1)
        let greased = try Self.welcome(info, to: bob.keyPackage, signer: key) { info, _ in
            info.extensions.append(MLSExtension(type: 0x5a5a, data: [1, 2, 3]))
        }
        #expect(try join(greased).epoch == 1)

        let cases: [(String, Welcome, MLSError)] = [
            ("confirmation tag", try Self.welcome(info, to: bob.keyPackage, signer: key, keepTag: true) { info, _ in info.confirmationTag[0] ^= 1 },
             .protocolViolation("the GroupInfo's confirmation tag does not verify")),
            ("signer's key", try Self.welcome(info, to: bob.keyPackage, signer: SignaturePrivateKey()), .invalidSignature),
            ("blank signer", try Self.welcome(info, to: bob.keyPackage, signer: key) { info, _ in info.signer = 5 }, .invalidSignature),
            ("unsupported context extension", try Self.welcome(info, to: bob.keyPackage, signer: key) { info, _ in
                info.groupContext.extensions = [MLSExtension(type: 0xff01, data: [])]
            }, .protocolViolation("this client does not support the group's extensions")),
            ("two external_pub", try Self.welcome(info, to: bob.keyPackage, signer: key) { info, _ in
                info.extensions += info.extensions.filter { $0.extensionType == ExtensionType.externalPub }
            }, .protocolViolation(TreeViolation.repeatedExtension)),
            ("two application_id", try Self.welcome(info, to: bob.keyPackage, signer: key) { info, _ in
                info.groupContext.extensions = [MLSExtension(type: ExtensionType.applicationID, data: [1]),
                                                MLSExtension(type: ExtensionType.applicationID, data: [2])]
            }, .protocolViolation(TreeViolation.repeatedExtension)),
            // Bob supports the requirement; Alice's leaf in the tree does not.
            ("a member lacks a required capability", try Self.welcome(info, to: bob.keyPackage, signer: key) { info, _ in
                info.groupContext.extensions = [MLSExtension(type: ExtensionType.requiredCapabilities,
                                                             data: RequiredCapabilities(extensionTypes: [0xff00]).tlsEncoded)]
            }, .protocolViolation(TreeViolation.requiredCapabilities)),
            // Alice's leaf is an X.509 one that Bob's capabilities do not list.
            ("a credential type a member does not support", try Self.welcome(info, to: bob.keyPackage, signer: key) { _, tree in
                var leaf = try #require(tree.leaf(0))
                leaf.credential = .x509(certificates: [[1, 2, 3]])
                leaf.capabilities.credentials = [Credential.basicType, 2]
                try leaf.sign(suite: suite, key: key, context: nil)
                tree.setNode(0, .leaf(leaf))
            }, .protocolViolation(TreeViolation.credentialTypeSupport)),
        ]
        for (what, welcome, expected) in cases {
            #expect(throws: expected, "\(what)") { try join(welcome) }
        }

        // Sealed to a KeyPackage whose leaf is not in the tree; a Welcome of another suite than the KeyPackage.
        let stranger = try TestClient(suite: suite, name: "bob")
        #expect(throws: MLSError.protocolViolation("the tree does not hold this KeyPackage's leaf")) {
            try join(try Self.welcome(info, to: stranger.keyPackage, signer: key), as: stranger)
        }
        var otherSuite = try Self.welcome(info, to: bob.keyPackage, signer: key)
        otherSuite.cipherSuite = CipherSuite.x25519AES128GCM.id
        #expect(throws: MLSError.protocolViolation("Welcome for another cipher suite")) { try join(otherSuite) }
    }

    // MARK: Item 3 of #21: ReInit's resumption PSK at join (§§8.4, 11.2, 12.4.3.1)

    @Test func aResumedGroupsWelcomeMustCarryTheReInitPSK() throws {
        let suite = CipherSuite.x25519ChaCha20Poly1305
        let alice = try TestClient(suite: suite, name: "alice"), bob = try TestClient(suite: suite, name: "bob")
        var a = try alice.create(groupID: Array("old".utf8))
        var b = try bob.join(try #require(try a.commit(adding: [bob.keyPackage]).welcome))
        let reInit = Proposal.ReInit(groupID: Array("new".utf8), version: mls10, cipherSuite: suite.id, extensions: [])
        _ = try b.process(try a.propose(.reInit(reInit)))
        #expect(try b.process(try a.commit(updatePath: false).message) == .commit(epoch: 2))
        // The closed group sends nothing more.
        #expect(throws: MLSError.protocolViolation("the group was reinitialised")) { try a.commit() }
        #expect(throws: MLSError.protocolViolation("the group was reinitialised")) { try a.propose(.remove(leafIndex: 1)) }
        #expect(throws: MLSError.protocolViolation("the group was reinitialised")) { try b.proposeUpdate() }

        let alice2 = try TestClient(suite: suite, name: "alice"), bob2 = try TestClient(suite: suite, name: "bob")
        func joinResuming(_ welcome: Welcome, _ old: Group? = nil) throws -> Group {
            try Group.join(welcome: welcome, keyPackage: bob2.keyPackage, initPrivateKey: bob2.initKeys.privateKey,
                           encryptionPrivateKey: bob2.encryptionKeys.privateKey, signatureKey: bob2.signatureKey, resuming: old ?? b)
        }
        /// The first commit of a new group `groupID` adding Bob, with reinit PSKs naming the old group's `epochs`.
        func founded(groupID: [UInt8]? = nil, extensions: [MLSExtension] = [], epochs: [UInt64] = [2],
                     secret: SecretBytes? = nil) throws -> Welcome {
            var g = try Group.create(suite: suite, groupID: groupID ?? reInit.groupID, leaf: alice2.keyPackage.leafNode,
                                     encryptionPrivateKey: alice2.encryptionKeys.privateKey, signatureKey: alice2.signatureKey, extensions: extensions)
            let ids = epochs.map { PreSharedKeyID(kind: .resumption(usage: .reinit, groupID: Array("old".utf8), epoch: $0),
                                                  nonce: SecretBytes.random(count: suite.hashLength).unprotectedBytes) }
            for id in ids {
                guard case .resumption(_, _, let epoch) = id.kind else { continue }
                if let secret {
                    g.importedResumptionPSKs[id.kind] = secret
                } else {
                    g.importedResumptionPSKs[id.kind] = try #require(a.resumptionPSK(epoch: epoch))
                }
            }
            return try #require(try g.commit(adding: [bob2.keyPackage], preSharedKeys: ids).welcome)
        }

        // Accepted: the group the ReInit names, with the old group's reinit PSK of epoch 2.
        let (a2, founding) = try Group.reinitialise(a, leaf: alice2.keyPackage.leafNode, encryptionPrivateKey: alice2.encryptionKeys.privateKey,
                                                    signatureKey: alice2.signatureKey, adding: [bob2.keyPackage])
        let b2 = try joinResuming(try #require(founding.welcome))
        #expect(b2.epochAuthenticator.constantTimeEquals(a2.epochAuthenticator) && b2.epoch == 1)
        #expect(try joinResuming(try founded()).epoch == 1)

        // Refused: no reinit PSK; one of another epoch of the old group; the right one with another secret;
        // two of them; a new group that is not the ReInit's; a Welcome past epoch 1; resuming an open group.
        var plain = try alice2.create(groupID: reInit.groupID)
        let noPSK = try #require(try plain.commit(adding: [bob2.keyPackage]).welcome)
        #expect(throws: MLSError.protocolViolation("the Welcome does not carry the resumed group's reinit PSK")) { try joinResuming(noPSK) }
        #expect(throws: MLSError.protocolViolation("the Welcome does not carry the resumed group's reinit PSK")) {
            try joinResuming(try founded(epochs: [1]))
        }
        #expect(throws: MLSError.decryptionFailed) { try joinResuming(try founded(secret: SecretBytes.random(count: 32))) }
        #expect(throws: MLSError.protocolViolation("a Welcome with more than one reinit or branch PSK")) { try joinResuming(try founded(epochs: [2, 2])) }
        #expect(throws: MLSError.protocolViolation("the new group does not match the ReInit")) {
            try joinResuming(try founded(groupID: Array("elsewhere".utf8)))
        }
        #expect(throws: MLSError.protocolViolation("the new group does not match the ReInit")) {
            try joinResuming(try founded(extensions: [MLSExtension(type: ExtensionType.applicationID, data: [1])]))
        }
        let link = PreSharedKeyID(kind: .resumption(usage: .reinit, groupID: Array("old".utf8), epoch: 2),
                                  nonce: [UInt8](repeating: 3, count: suite.hashLength))
        let late = try Self.welcome(founding.groupInfo, to: bob2.keyPackage, signer: alice2.signatureKey,
                                    psks: [(link, try #require(a.resumptionPSK(epoch: 2)))]) { info, _ in info.groupContext.epoch = 2 }
        #expect(throws: MLSError.protocolViolation("a resumed or branched group's Welcome is not for its epoch 1")) { try joinResuming(late) }
        #expect(throws: MLSError.protocolViolation("the group to resume was not reinitialised")) { try joinResuming(try founded(), a2) }
    }
}
