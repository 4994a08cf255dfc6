import Foundation
@testable import ParleyClient
import ParleyCrypto
@testable import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// Groups under stress on a parley-relay process on loopback (PROTOCOL.md §17.6, §17.9): racing commits,
/// a member offline for many epochs, forged commits, a member whose state is lost, a request to leave that
/// a commit overtook. Three accounts, Bob with two devices.
@Suite("End to end: groups recover")
struct GroupRecoveryEndToEndTests {
    typealias World = GroupWorld

    static func world(on relay: RelayProcess, in directory: TemporaryDirectory) async throws -> World {
        try await GroupWorld.make(on: relay, in: directory)
    }

    /// A group of all four devices, every one of them at its epoch.
    static func group(_ w: World) async throws -> GroupId {
        let id = try await w.alice.engine.createGroup(name: "g", members: [await w.bob.address, await w.carol.address]).id
        for device in w.all { try await device.engine.receivePending() }
        return id
    }

    static func texts(_ device: TestDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state != .failed && $0.direction != .system }.map(\.text)
    }

    static func failures(_ device: TestDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.state == .failed }.map(\.text)
    }

    /// The notices of this device's own trouble with the group (not those of joins, leaves and renames).
    static func notices(_ device: TestDevice, _ id: GroupId) throws -> [String] {
        try device.store.messages(in: .group(id), limit: 1000).filter { $0.direction == .system && $0.text.contains("could not follow") }.map(\.text)
    }

    static func state(_ device: TestDevice, _ id: GroupId) throws -> Group {
        try Group(serialized: SecretBytes(try #require(try device.store.group(id)).state))
    }

    /// Every device at one epoch with one epoch authenticator, and no group message it could not read.
    static func agree(_ w: World, _ id: GroupId) throws {
        let groups = try w.all.map { try state($0, id) }
        #expect(Set(groups.map(\.epoch)).count == 1, "epochs \(groups.map(\.epoch))")
        #expect(Set(groups.map(\.epochAuthenticator.unprotectedBytes)).count == 1)
        for device in w.all { #expect(try failures(device, id).isEmpty) }
    }

    @Test("two members commit at the same moment, 100 times: one epoch, one epoch authenticator, nothing undecryptable")
    func racingCommits() async throws {
        try await withRelay { relay, directory in
            let w = try await Self.world(on: relay, in: directory)
            let id = try await Self.group(w)
            let start = try Self.state(w.alice, id).epoch
            for round in 0..<100 {
                async let a: GroupRecord = w.alice.engine.updateOwnLeaf(in: id)
                async let c: GroupRecord = w.carol.engine.updateOwnLeaf(in: id)
                _ = try await (a, c)
                // A message in the epoch the race left, from the winner or the loser in turn.
                _ = try await (round.isMultiple(of: 2) ? w.alice : w.carol).engine.send(text: "r\(round)", toGroup: id)
            }
            for device in w.all { try await device.engine.receivePending() }
            try Self.agree(w, id)
            #expect(try Self.state(w.alice, id).epoch == start + 200, "every commit of both members went in, one per epoch")
            for device in [w.bob, w.bob2] { #expect(try Self.texts(device, id) == (0..<100).map { "r\($0)" }) }
        }
    }

    @Test("a member offline for 50 epochs catches up in order from its mailbox")
    func offlineFor50Epochs() async throws {
        try await withRelay { relay, directory in
            let w = try await Self.world(on: relay, in: directory)
            let id = try await Self.group(w)
            for n in 0..<50 {
                _ = try await w.alice.engine.updateOwnLeaf(in: id)
                _ = try await w.alice.engine.send(text: "m\(n)", toGroup: id)
            }
            for device in w.all { try await device.engine.receivePending() }
            #expect(try Self.texts(w.bob2, id) == (0..<50).map { "m\($0)" })
            try Self.agree(w, id)
        }
    }

    @Test("forged commits (bad signature as a PublicMessage and as a PrivateMessage, wrong membership tag, an outsider's external commit, a removed member's) and a commit the relay did not order are refused; the state does not change")
    func forgedCommitsChangeNothing() async throws {
        try await withRelay { relay, directory in
            let w = try await Self.world(on: relay, in: directory)
            let dave = try await TestDevice.create("dave", on: relay, in: directory)
            let bobAddress = await w.bob.address
            let id = try await Self.group(w)
            // Bob keeps his state from before his removal.
            let bobBefore = try Self.state(w.bob, id)
            _ = try await w.alice.engine.removeMembers([bobAddress], from: id)
            try await w.carol.engine.receivePending()
            let alice = try Self.state(w.alice, id)
            let before = try #require(try w.carol.store.group(id))
            #expect(before.epoch == alice.epoch)

            // A genuine commit of this epoch (never sent), to forge from.
            var scratch = alice
            let genuine = try scratch.commit()
            guard case .publicMessage(let real) = genuine.message.body else { Issue.record("a commit is a PublicMessage"); return }
            // Signed by a key that is not Alice's leaf's, with a valid membership tag (made by an insider).
            let mallory = try SignaturePrivateKey(seed: SecretBytes.random(count: 32))
            var resigned = AuthenticatedContent.sign(wireFormat: .publicMessage, content: real.content, suite: alice.suite, key: mallory,
                                                     context: alice.context)
            resigned.auth.confirmationTag = real.auth.confirmationTag
            let badSignature = MLSMessage(body: .publicMessage(try PublicMessage(protecting: resigned, suite: alice.suite,
                                                                                 membershipKey: alice.secrets.membershipKey, context: alice.context)))
            var badTag = real
            badTag.membershipTag = badTag.membershipTag.map { tag in [tag[0] ^ 1] + tag.dropFirst() }
            // The same as a PrivateMessage (as members send commits), encrypted under Alice's handshake key by
            // an insider who holds the epoch's secret tree, signed by a key that is not Alice's.
            var privateForgery = AuthenticatedContent.sign(wireFormat: .privateMessage, content: real.content, suite: alice.suite, key: mallory,
                                                           context: alice.context)
            privateForgery.auth.confirmationTag = real.auth.confirmationTag
            var insiderTree = alice.secretTree
            let badPrivateSignature = MLSMessage(body: .privateMessage(try PrivateMessage.protect(privateForgery, suite: alice.suite,
                                                                                                  secretTree: &insiderTree,
                                                                                                  senderDataSecret: alice.secrets.senderDataSecret)))
            // An outsider who got a GroupInfo joins by external commit without rejoining a leaf of its own.
            let daveLeaf = try await dave.engine.newKeyPackage(lastResort: false).package.leafNode
            let outsider = try Group.joinByExternalCommit(groupInfo: try alice.currentGroupInfo(), leaf: daveLeaf,
                                                          signatureKey: try await dave.engine.groupSignatureKey).message
            // Bob, removed, commits from the state he kept.
            var removed = bobBefore
            let fromRemoved = try removed.commit().message

            // Each delivered as the relay would a commit it ordered: the first under Alice's secret (an
            // insider), the next under the secret the forger chose for the epoch its forgery started.
            let client = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            let carolDevice = [GroupRecipient(address: await w.carol.address.description, deviceId: 1)]
            var relayEpoch = alice.epoch, secret = Engine.sendSecret(alice)
            for forged in [badSignature, MLSMessage(body: .publicMessage(badTag)), badPrivateSignature, outsider, fromRemoved] {
                let next = [UInt8](SecretBytes.random(count: 32).unprotectedBytes)
                try await client.commit(GroupSend(epoch: relayEpoch, message: Base64Bytes(forged.tlsEncoded), recipients: carolDevice,
                                                  nextVerifier: Base64Bytes(RelayAPI.groupSendVerifier(groupId: id.bytes, epoch: relayEpoch + 1, secret: next))),
                                        toGroup: id.hex, secret: secret)
                (relayEpoch, secret) = (relayEpoch + 1, next)
            }
            // And Alice's genuine commit slipped in as a plain message.
            try await client.send(GroupSend(epoch: relayEpoch, message: Base64Bytes(genuine.message.tlsEncoded), recipients: carolDevice),
                                  toGroup: id.hex, secret: secret)
            try await w.carol.engine.receivePending()

            #expect(try w.carol.store.group(id) == before, "the state bytes, epoch, members and name are as they were")
            let failures = try Self.failures(w.carol, id)
            #expect(failures.count == 6, "each refusal is said in the conversation: \(failures)")
            #expect(failures.contains { $0.contains("signature") } && failures.contains { $0.contains("membership tag") }
                    && failures.contains { $0.contains("external commit") } && failures.contains { $0.contains("did not order") })
            #expect(try Self.notices(w.carol, id).isEmpty, "a forgery is no reason to rejoin")

            // Bob, removed, is no rejoiner: the relay gives him no GroupInfo and takes no external commit of his.
            let bobToken = try await w.bob.token()
            await #expect(throws: ClientError.self) { try await client.groupInfo(of: id.hex, token: bobToken) }
            let bobRejoin = GroupSend(epoch: relayEpoch, message: Base64Bytes(fromRemoved.tlsEncoded), recipients: carolDevice,
                                      nextVerifier: Base64Bytes([UInt8](repeating: 1, count: 32)), groupInfo: Base64Bytes([1]), rejoiners: [])
            await #expect(throws: ClientError.relay(status: 403, code: "forbidden", message: "this device may not rejoin the group at epoch \(relayEpoch)")) {
                try await client.externalCommit(bobRejoin, toGroup: id.hex, token: bobToken)
            }
        }
    }

    @Test("a member whose state is corrupted says so, rejoins by external commit, and reads the next message")
    func corruptedStateRejoins() async throws {
        try await withRelay { relay, directory in
            let w = try await Self.world(on: relay, in: directory)
            let id = try await Self.group(w)
            var record = try #require(try w.bob2.store.group(id))
            record.state = [UInt8](repeating: 0xEE, count: record.state.count)
            try w.bob2.store.saveGroup(record)

            _ = try await w.alice.engine.send(text: "while broken", toGroup: id)
            try await w.bob2.engine.receivePending()
            #expect(try Self.failures(w.bob2, id).count == 1, "the message it could not read is said")
            #expect(try Self.notices(w.bob2, id).contains { $0.contains("rejoined") })
            for device in [w.alice, w.bob, w.carol] { try await device.engine.receivePending() }
            _ = try await w.alice.engine.send(text: "after the rejoin", toGroup: id)
            try await w.bob2.engine.receivePending()
            #expect(try Self.texts(w.bob2, id) == ["after the rejoin"])
            _ = try await w.bob2.engine.send(text: "back", toGroup: id)
            for device in w.all { try await device.engine.receivePending() }
            #expect(try Self.texts(w.bob2, id) == ["after the rejoin", "back"])
            #expect(try Self.texts(w.alice, id) == ["while broken", "after the rejoin", "back"])
            let groups = try w.all.map { try Self.state($0, id) }
            #expect(Set(groups.map(\.epoch)).count == 1 && Set(groups.map(\.epochAuthenticator.unprotectedBytes)).count == 1)
            #expect(groups[0].tree.occupiedLeaves.count == 4, "the old leaf went, the new one came")
            for device in [w.alice, w.bob, w.carol] { #expect(try Self.failures(device, id).isEmpty) }
        }
    }

    @Test("a member whose private keys no longer match its tree (the state does not open) rejoins; the group goes on")
    func lostKeysRejoin() async throws {
        try await unprocessableCommitRejoins { broken in
            broken.privateKeys = TreePrivateKeys(leafIndex: broken.myLeaf, leafPrivateKey: SecretBytes.random(count: 32))
        }
    }

    @Test("a member that cannot apply a genuine commit (the state opens, its init secret is wrong) rejoins; the group goes on")
    func wrongInitSecretRejoins() async throws {
        try await unprocessableCommitRejoins { broken in
            var stored = broken.secrets.stored
            stored[10] = SecretBytes.random(count: 32)   // the init secret: the next epoch's keys come out wrong
            broken.secrets = try EpochSecrets(suite: broken.suite, stored: stored)
        }
    }

    @Test("a member stuck at a commit that removed a device asks other members for the new GroupInfo key over 1:1 and rejoins; the removed device is not answered")
    func stuckAtARemovalRejoins() async throws {
        try await withRelay { relay, directory in
            let w = try await Self.world(on: relay, in: directory)
            let id = try await Self.group(w)
            var broken = try Self.state(w.bob2, id)
            var stored = broken.secrets.stored
            stored[10] = SecretBytes.random(count: 32)   // the init secret: the next epoch's keys come out wrong
            broken.secrets = try EpochSecrets(suite: broken.suite, stored: stored)
            var record = try #require(try w.bob2.store.group(id))
            record.state = broken.serialized().unprotectedBytes
            try w.bob2.store.saveGroup(record)
            let keyBefore = try #require(record.infoKey)

            // Alice removes Carol: the GroupInfo key changes, and Bob's laptop cannot apply the commit.
            _ = try await w.alice.engine.removeMembers([await w.carol.address], from: id)
            try await w.carol.engine.receivePending()
            #expect(try #require(try w.carol.store.group(id)).active == false)
            try await w.bob2.engine.receivePending()
            let stuckNotices = try Self.notices(w.bob2, id)
            #expect(stuckNotices.contains { $0.contains("asked other members for the group's current key") }, "\(stuckNotices)")
            #expect(try #require(try w.bob2.store.group(id)).infoKey?.epoch == keyBefore.epoch, "no key taken yet")

            // The removed device asks too: nobody answers it (it has no leaf in any member's tree). Its mailbox
            // first holds Bob's laptop's request, which it does not answer either (it is no member any more).
            try await w.carol.engine.receivePending()
            let carol = await w.carol.deviceAddress
            #expect(await w.carol.engine.requestGroupKey(id, members: [await w.alice.deviceAddress]))
            try await w.alice.engine.receivePending()     // answers Bob's laptop, not Carol
            let carolToken = try await w.carol.engine.sessionToken()
            let carolMail = try await w.carol.engine.relay.fetchWithGroups(limit: 100, after: nil, token: carolToken).messages
            #expect(carolMail.isEmpty, "\(carol) was sent \(carolMail.count) messages")
            try await w.bob.engine.receivePending()       // follows the group: the answer changes nothing for it

            try await w.bob2.engine.receivePending()
            let notices = try Self.notices(w.bob2, id)
            #expect(notices.contains { $0.contains("rejoined") }, "\(notices)")
            for device in [w.alice, w.bob] { try await device.engine.receivePending() }
            _ = try await w.alice.engine.send(text: "after the removal", toGroup: id)
            for device in [w.alice, w.bob, w.bob2] { try await device.engine.receivePending() }
            #expect(try Self.texts(w.bob2, id) == ["after the removal"])
            let groups = try [w.alice, w.bob, w.bob2].map { try Self.state($0, id) }
            #expect(Set(groups.map(\.epoch)).count == 1 && Set(groups.map(\.epochAuthenticator.unprotectedBytes)).count == 1)
            #expect(groups[0].tree.occupiedLeaves.count == 3, "Alice, Bob's two devices")
            let keys = try [w.alice, w.bob, w.bob2].map { try #require(try $0.store.group(id)?.infoKey) }
            #expect(keys.allSatisfy { $0 == keys[0] } && keys[0].epoch > keyBefore.epoch, "every device holds the new key")
            #expect(try Self.notices(w.bob, id).isEmpty, "Bob's phone, which followed the group, did not rejoin")
        }
    }

    /// Bob's laptop's state broken by `breaking`, then Carol commits and sends.
    func unprocessableCommitRejoins(_ breaking: (inout Group) throws -> Void) async throws {
        try await withRelay { relay, directory in
            let w = try await Self.world(on: relay, in: directory)
            let id = try await Self.group(w)
            var broken = try Self.state(w.bob2, id)
            try breaking(&broken)
            var record = try #require(try w.bob2.store.group(id))
            record.state = broken.serialized().unprotectedBytes
            try w.bob2.store.saveGroup(record)

            _ = try await w.carol.engine.updateOwnLeaf(in: id)
            try await w.bob2.engine.receivePending()
            #expect(try Self.notices(w.bob2, id).contains { $0.contains("rejoined") })
            for device in w.all { try await device.engine.receivePending() }
            _ = try await w.carol.engine.send(text: "still here?", toGroup: id)
            for device in w.all { try await device.engine.receivePending() }
            #expect(try Self.texts(w.bob2, id) == ["still here?"])
            let groups = try w.all.map { try Self.state($0, id) }
            #expect(Set(groups.map(\.epoch)).count == 1 && Set(groups.map(\.epochAuthenticator.unprotectedBytes)).count == 1)
        }
    }

    @Test("a request to leave that another member's commit overtook is made again in the new epoch, and carried out")
    func lostLeaveIsProposedAgain() async throws {
        try await withRelay { relay, directory in
            let w = try await Self.world(on: relay, in: directory)
            let carolAddress = await w.carol.address
            let id = try await Self.group(w)
            // Carol asks to leave; Bob commits before he has read her request: it is lost with the epoch.
            try await w.carol.engine.leaveGroup(id)
            _ = try await w.bob.engine.updateOwnLeaf(in: id)
            try await w.carol.engine.receivePending()   // Bob's commit, without her removal: she asks again
            try await w.alice.engine.receivePending()
            let after = try await w.alice.engine.updateOwnLeaf(in: id)
            #expect(!after.members.contains { $0.address == carolAddress.description }, "Alice's commit carried out the second request")
            try await w.carol.engine.receivePending()
            #expect(try Self.state(w.carol, id).isActive == false, "Carol's state knows she is out")
            for device in [w.alice, w.bob, w.bob2] { try await device.engine.receivePending() }
            let groups = try [w.alice, w.bob, w.bob2].map { try Self.state($0, id) }
            #expect(Set(groups.map(\.epochAuthenticator.unprotectedBytes)).count == 1)
            for device in w.all { #expect(try Self.failures(device, id).isEmpty) }
        }
    }
}
