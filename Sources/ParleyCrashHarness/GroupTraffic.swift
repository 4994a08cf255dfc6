import Foundation
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyStore

/// Group receive in the crash harness: Alice and Bob share an MLS group (both stores hold its state, as
/// GroupRecords), and a part of the stream is group mail: Alice's texts to the group and, now and then,
/// a commit of hers (a new path: Bob's state moves to the next epoch). Bob's device treats an entry as the
/// engine does (PROTOCOL.md §17.6): the new state is saved with the text it decrypted in one transaction,
/// and the entry acknowledged only after. An entry that comes again after a crash (saved, not yet
/// acknowledged) is a replay: of an epoch the state has left, or a key already used.
enum GroupTraffic {
    static let suite = CipherSuite.x25519ChaCha20Poly1305
    static let alice = DeviceAddress(address: Layout.aliceAddress, deviceId: 1)
    static let bob = DeviceAddress(address: Layout.bobAddress, deviceId: 1)

    /// Which sequence numbers are group entries, and which of those commits: one in four, every third
    /// of them a commit (so Bob crosses an epoch every twelve entries).
    static func isGroupEntry(_ seq: Int) -> Bool { seq % 4 == 0 }
    static func isCommit(_ seq: Int) -> Bool { seq % 12 == 0 }
    /// The manifest's message-id column for a commit (it files no message).
    static let commitMark = "commit"

    // MARK: Set-up

    /// Alice creates the group and adds Bob with a KeyPackage of his; both states are saved.
    static func create(alice: (account: LocalAccount, store: EncryptedStore), bob: (account: LocalAccount, store: EncryptedStore)) throws {
        let now = SystemWallClock().nowMilliseconds() / 1000
        func leaf(_ account: LocalAccount, encryptionKey: [UInt8]) throws -> (LeafNode, SignaturePrivateKey) {
            let signer = try SignaturePrivateKey(seed: account.device.keyPair.seed)
            var leaf = LeafNode(encryptionKey: encryptionKey, signatureKey: signer.publicKey,
                                credential: .basic(identity: Array("\(account.address)#\(account.device.deviceId)".utf8)),
                                capabilities: Capabilities(cipherSuites: [suite.id]),
                                source: .keyPackage(Lifetime(notBefore: now - 3600, notAfter: now + 86_400)), extensions: [])
            try leaf.sign(suite: suite, key: signer, context: nil)
            return (leaf, signer)
        }
        let aliceKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let (aliceLeaf, aliceSigner) = try leaf(alice.account, encryptionKey: aliceKeys.publicKey)
        var group = try Group.create(suite: suite, groupID: GroupId.random().bytes, leaf: aliceLeaf, encryptionPrivateKey: aliceKeys.privateKey,
                                     signatureKey: aliceSigner)

        let bobInit = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let bobKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let (bobLeaf, bobSigner) = try leaf(bob.account, encryptionKey: bobKeys.publicKey)
        var package = KeyPackage(cipherSuite: suite.id, initKey: bobInit.publicKey, leafNode: bobLeaf, extensions: [])
        package.sign(suite: suite, key: bobSigner)
        guard let welcome = try group.commit(adding: [package]).welcome else { throw HarnessError("adding Bob made no Welcome") }
        let joined = try Group.join(welcome: welcome, keyPackage: package, initPrivateKey: bobInit.privateKey,
                                    encryptionPrivateKey: bobKeys.privateKey, signatureKey: bobSigner)
        let id = try GroupId(group.context.groupID)
        try alice.store.saveGroup(record(group, id))
        try bob.store.saveGroup(record(joined, id))
    }

    static func record(_ group: Group, _ id: GroupId) -> GroupRecord {
        GroupRecord(id: id, name: "crash", members: [alice, bob], epoch: group.epoch, active: group.isActive,
                    state: group.serialized().unprotectedBytes, infoKey: nil)
    }

    static func load(_ store: EncryptedStore) throws -> (GroupRecord, Group) {
        guard let record = try store.groups().first else { throw HarnessError("the store holds no group") }
        return (record, try Group(serialized: SecretBytes(record.state)))
    }

    // MARK: Alice

    /// Alice's group entry `seq`: a commit, or `text` encrypted to the group; her state is saved before the
    /// entry leaves, as the engine does.
    static func send(_ seq: Int, messageId: [UInt8], text: String, from store: EncryptedStore) throws -> [UInt8] {
        let (record, group) = try load(store)
        var next = group
        let content = Content(messageId: messageId, sentAt: SystemWallClock().nowMilliseconds(), conversation: .group(record.id), body: .text(text))
        let message = isCommit(seq) ? try next.commit(wireFormat: .privateMessage).message : try next.encrypt(content.encoded, padding: 32)
        try store.saveGroup(Self.record(next, record.id))
        return message.tlsEncoded
    }

    // MARK: Bob

    enum Outcome { case committed, replay }

    /// Bob's receive of one group entry: the state and the message it decrypted in one transaction.
    static func receive(_ bytes: [UInt8], into store: EncryptedStore) throws -> Outcome {
        let message = try MLSMessage(tlsEncoded: bytes)
        let (record, group) = try load(store)
        let epoch: UInt64
        switch message.body {
        case .publicMessage(let m): epoch = m.content.epoch
        case .privateMessage(let m): epoch = m.epoch
        default: throw HarnessError("a group entry that is not a group message")
        }
        // Entries are taken in order: one of an epoch the state has left was applied before a crash.
        if epoch < group.epoch { return .replay }
        var next = group
        let processed: Group.Processed
        do { processed = try next.process(message) } catch MLSError.generationUnavailable { return .replay }
        switch processed {
        case .application(let data, _):
            let content = try Content(decoding: data)
            guard case .text(let text) = content.body else { throw HarnessError("a group message that is not a text") }
            let filed = MessageRecord(conversation: .group(record.id), direction: .incoming, sender: alice, clientMessageId: content.messageId,
                                      sentAt: content.sentAt, receivedAt: SystemWallClock().nowMilliseconds(), text: text, state: .received)
            try store.saveGroup(Self.record(next, record.id), filing: [filed])
        case .commit:
            try store.saveGroup(Self.record(next, record.id))
        case .proposal, .removed:
            throw HarnessError("unexpected group entry: \(processed)")
        }
        return .committed
    }

    /// Bob's group conversation (message ids in hex, texts) and his group epoch, for the driver's account.
    static func snapshot(_ store: EncryptedStore) throws -> (messages: [(id: String, text: String)], epoch: UInt64) {
        let (record, _) = try load(store)
        return (try store.messages(in: .group(record.id), limit: Int.max).map { (hex($0.clientMessageId), $0.text) }, record.epoch)
    }
}
