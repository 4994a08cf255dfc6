import Foundation
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import Testing

/// A commit carries the Welcome of the devices it adds (PROTOCOL.md §17.2), on a relay process with its
/// default limits: a Welcome holds the group's whole ratchet tree, over the 96 KiB envelope cap from some
/// 500 devices on, and is queued in the commit's transaction, so that no other commit comes between them.
@Suite("End to end: a commit's Welcome")
struct GroupWelcomeDeliveryTests {
    let suite = CipherSuite.x25519ChaCha20Poly1305

    /// An MLS client with one KeyPackage (its credential is not a Parley one: the relay never reads it).
    struct Client {
        let signatureKey = SignaturePrivateKey()
        let initKeys: HPKEKeyPair, encryptionKeys: HPKEKeyPair
        let keyPackage: KeyPackage

        init(_ suite: CipherSuite, _ index: Int) {
            initKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
            encryptionKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
            var leaf = LeafNode(encryptionKey: encryptionKeys.publicKey, signatureKey: signatureKey.publicKey,
                                credential: .basic(identity: Array("member-\(index)".utf8)), capabilities: Capabilities(cipherSuites: [suite.id]),
                                source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)), extensions: [])
            try! leaf.sign(suite: suite, key: signatureKey, context: nil)
            var package = KeyPackage(cipherSuite: suite.id, initKey: initKeys.publicKey, leafNode: leaf, extensions: [])
            package.sign(suite: suite, key: signatureKey)
            keyPackage = package
        }

        func join(_ welcome: Welcome) throws -> Group {
            try Group.join(welcome: welcome, keyPackage: keyPackage, initPrivateKey: initKeys.privateKey,
                           encryptionPrivateKey: encryptionKeys.privateKey, signatureKey: signatureKey)
        }
    }

    static func secret(_ group: Group) -> [UInt8] {
        group.export(label: RelayAPI.groupSendLabel, context: group.context.groupID, length: RelayAPI.groupSecretLength).unprotectedBytes
    }

    static func verifier(_ group: Group) -> Base64Bytes {
        Base64Bytes(RelayAPI.groupSendVerifier(groupId: group.context.groupID, epoch: group.epoch, secret: secret(group)))
    }

    static func header(_ group: Group) -> [(String, String)] {
        [(RelayAPI.groupSecretHeader, Data(secret(group)).base64EncodedString())]
    }

    @Test("a group of 600 leaves adds a device: its Welcome (over the old 96 KiB cap) rides the commit, reaches it, and it joins")
    func welcomeOverTheEnvelopeCap() async throws {
        try await withRelay { relay, _ in
            let raw = RawHTTP(relay)
            let creatorDevice = try await RawDevice.register("creator", on: relay)
            let newcomerDevice = try await RawDevice.register("newcomer", on: relay)
            let groupId = SystemRandom().bytes(RelayAPI.groupIdLength), path = "/v1/groups/" + Hex.encode(groupId)

            // The group in MLS: the creator and 599 others (not accounts here: the commit names no recipients).
            let creator = Client(suite, 0)
            var group = try Group.create(suite: suite, groupID: groupId, leaf: creator.keyPackage.leafNode,
                                         encryptionPrivateKey: creator.encryptionKeys.privateKey, signatureKey: creator.signatureKey)
            #expect(try await raw.request(.POST, "/v1/groups", json: GroupCreation(groupId: Hex.encode(groupId), verifier: Self.verifier(group)),
                                          token: creatorDevice.token).status == 201)
            var grown = group
            let populated = try grown.commit(adding: (1..<600).map { Client(suite, $0).keyPackage })
            let first = try await raw.request(.POST, path + "/commits", json: GroupSend(
                epoch: 0, message: Base64Bytes(populated.message.tlsEncoded), recipients: [], nextVerifier: Self.verifier(grown)),
                headers: Self.header(group))
            #expect(first.status == 204, "\(first.text)")
            group = grown

            // The newcomer's add: the Welcome carries the tree of 601 leaves.
            let newcomer = Client(suite, 600)
            var next = group
            let add = try next.commit(adding: [newcomer.keyPackage])
            let welcome = MLSMessage(body: .welcome(try #require(add.welcome))).tlsEncoded
            #expect(welcome.count > 96 * 1024, "the Welcome is \(welcome.count) bytes")
            let alone = try await raw.request(.POST, path + "/messages", json: GroupSend(
                epoch: 1, message: Base64Bytes(welcome), recipients: [GroupRecipient(address: newcomerDevice.address, deviceId: 1)]),
                headers: Self.header(group))
            #expect(alone.status == 413, "an application message keeps the envelope cap: \(alone.text)")
            let onMessages = try await raw.request(.POST, path + "/messages", json: GroupSend(
                epoch: 1, message: Base64Bytes([1]), recipients: [GroupRecipient(address: creatorDevice.address, deviceId: 1)],
                welcome: GroupWelcome(message: Base64Bytes([2]), recipients: [GroupRecipient(address: newcomerDevice.address, deviceId: 1)])),
                headers: Self.header(group))
            #expect(onMessages.status == 400, "only a commit carries a Welcome: \(onMessages.text)")

            let committed = try await raw.request(.POST, path + "/commits", json: GroupSend(
                epoch: 1, message: Base64Bytes(add.message.tlsEncoded), recipients: [GroupRecipient(address: creatorDevice.address, deviceId: 1)],
                nextVerifier: Self.verifier(next),
                welcome: GroupWelcome(message: Base64Bytes(welcome), recipients: [GroupRecipient(address: newcomerDevice.address, deviceId: 1)])),
                headers: Self.header(group))
            #expect(committed.status == 204, "\(committed.text)")

            let page = try await raw.request(.GET, "/v1/mailbox?version=2", token: newcomerDevice.token).decode(FetchResponseV2.self)
            let entries = page.messages.compactMap(\.group)
            #expect(entries.map(\.kind) == ["message"] && entries.map(\.epoch) == [2], "the Welcome alone, a message of the new epoch")
            guard let entry = entries.first, case .welcome(let received) = try MLSMessage(tlsEncoded: entry.message.bytes).body else {
                Issue.record("no Welcome in the newcomer's mailbox")
                return
            }
            let joined = try newcomer.join(received)
            #expect(joined.epochAuthenticator.unprotectedBytes == next.epochAuthenticator.unprotectedBytes)
            #expect(joined.tree.occupiedLeaves.count == 601)
            let creatorPage = try await raw.request(.GET, "/v1/mailbox?version=2", token: creatorDevice.token).decode(FetchResponseV2.self)
            #expect(creatorPage.messages.compactMap(\.group?.kind) == ["commit"], "the members get the commit, not the Welcome")
        }
    }

    @Test("a Welcome past --max-group-handshake-bytes is refused with 413 and the commit is not stored")
    func welcomeOverItsCap() async throws {
        try await withRelay(["--max-group-handshake-bytes", "4096"]) { relay, _ in
            let raw = RawHTTP(relay)
            let alice = try await RawDevice.register("alice", on: relay)
            let bob = try await RawDevice.register("bob", on: relay)
            let groupId = SystemRandom().bytes(RelayAPI.groupIdLength), path = "/v1/groups/" + Hex.encode(groupId)
            let secret = SystemRandom().bytes(RelayAPI.groupSecretLength)
            let verifier = Base64Bytes(RelayAPI.groupSendVerifier(groupId: groupId, epoch: 0, secret: secret))
            #expect(try await raw.request(.POST, "/v1/groups", json: GroupCreation(groupId: Hex.encode(groupId), verifier: verifier),
                                          token: alice.token).status == 201)
            let header = [(RelayAPI.groupSecretHeader, Data(secret).base64EncodedString())]
            func commit(welcomeBytes: Int) async throws -> Int {
                try await raw.request(.POST, path + "/commits", json: GroupSend(
                    epoch: 0, message: Base64Bytes([1]), recipients: [GroupRecipient(address: alice.address, deviceId: 1)], nextVerifier: verifier,
                    welcome: GroupWelcome(message: Base64Bytes([UInt8](repeating: 7, count: welcomeBytes)),
                                          recipients: [GroupRecipient(address: bob.address, deviceId: 1)])),
                    headers: header).status
            }
            #expect(try await commit(welcomeBytes: 4097) == 413)
            #expect(try await raw.request(.GET, "/v1/mailbox?version=2", token: alice.token).decode(FetchResponseV2.self).messages.isEmpty)
            #expect(try await commit(welcomeBytes: 4096) == 204, "the group was still at epoch 0")
            let page = try await raw.request(.GET, "/v1/mailbox?version=2", token: bob.token).decode(FetchResponseV2.self)
            #expect(page.messages.compactMap(\.group?.message.bytes.count) == [4096])
        }
    }
}
