import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import Testing

/// The relay as MLS delivery service over HTTP (PROTOCOL.md §17), on a relay process on loopback: the
/// KeyPackage directory, one commit per epoch, group sends authorised by the epoch's secret and no token.
@Suite("End to end: the relay as group delivery service")
struct GroupDeliveryTests {
    let groupId = SystemRandom().bytes(32)
    var groupPath: String { "/v1/groups/" + Hex.encode(groupId) }

    private func secretHeader(_ secret: [UInt8]) -> [(String, String)] {
        [(RelayAPI.groupSecretHeader, Data(secret).base64EncodedString())]
    }

    private func recipients(_ devices: [RawDevice]) -> [GroupRecipient] {
        devices.map { GroupRecipient(address: $0.address, deviceId: 1) }
    }

    private func mailbox(_ device: RawDevice, _ raw: RawHTTP) async throws -> [MailboxEntry] {
        let reply = try await raw.request(.GET, "/v1/mailbox?version=2", token: device.token)
        #expect(reply.status == 200, "\(reply.text)")
        let page = try reply.decode(FetchResponseV2.self)
        #expect(page.version == 2)
        return page.messages
    }

    @Test("KeyPackages: a device uploads them, anyone claims one per device of an account, once each, then the last-resort one")
    func keyPackageDirectory() async throws {
        try await withRelay { relay, _ in
            let raw = RawHTTP(relay)
            let alice = try await RawDevice.register("alice", on: relay)
            let upload = KeyPackageUpload(keyPackages: [Base64Bytes([1, 1]), Base64Bytes([2, 2])], lastResort: Base64Bytes([9, 9]))
            #expect(try await raw.request(.PUT, "/v1/key-packages", json: upload).status == 401, "a device token is needed")
            #expect(try await raw.request(.PUT, "/v1/key-packages", json: upload, token: alice.token).status == 204)
            let tooBig = KeyPackageUpload(keyPackages: [Base64Bytes([UInt8](repeating: 1, count: 16 * 1024 + 1))], lastResort: nil)
            #expect(try await raw.request(.PUT, "/v1/key-packages", json: tooBig, token: alice.token).status == 413)
            let count = try await raw.request(.GET, "/v1/key-packages/count", token: alice.token).decode(KeyPackageCount.self)
            #expect(count == KeyPackageCount(keyPackages: 2, lastResort: true, low: true))

            let claimPath = "/v1/key-packages/\(alice.address)/claim"
            var claimed: [ClaimedKeyPackage] = []
            for _ in 0..<4 {
                let reply = try await raw.request(.POST, claimPath)
                #expect(reply.status == 200, "\(reply.text)")
                claimed += try reply.decode(KeyPackageClaim.self).keyPackages
            }
            #expect(claimed == [ClaimedKeyPackage(deviceId: 1, keyPackage: Base64Bytes([1, 1]), lastResort: false),
                                ClaimedKeyPackage(deviceId: 1, keyPackage: Base64Bytes([2, 2]), lastResort: false),
                                ClaimedKeyPackage(deviceId: 1, keyPackage: Base64Bytes([9, 9]), lastResort: true),
                                ClaimedKeyPackage(deviceId: 1, keyPackage: Base64Bytes([9, 9]), lastResort: true)])
            #expect(try await raw.request(.POST, "/v1/key-packages/nobody@\(relay.name)/claim").status == 404)
        }
    }

    @Test("a claim that leaves a device under the low mark wakes it, and its version-2 page says keyPackagesLow")
    func lowStockWakesTheOwner() async throws {
        try await withRelay { relay, _ in
            let raw = RawHTTP(relay)
            let alice = try await RawDevice.register("alice", on: relay)
            let upload = KeyPackageUpload(keyPackages: (0..<10).map { Base64Bytes([UInt8($0)]) }, lastResort: nil)
            #expect(try await raw.request(.PUT, "/v1/key-packages", json: upload, token: alice.token).status == 204)
            let full = try await raw.request(.GET, "/v1/mailbox?version=2", token: alice.token).decode(FetchResponseV2.self)
            #expect(!full.keyPackagesLow, "10 is the low mark")

            let (push, outcome) = try RawPush.open(token: alice.token, relay: relay)
            defer { push.close() }
            #expect(outcome == .upgraded)
            _ = try? push.receive(timeoutSeconds: 2)   // the wake-up every new connection gets
            #expect(try await raw.request(.POST, "/v1/key-packages/\(alice.address)/claim").status == 200)
            #expect(try push.readSome(timeoutSeconds: 10).contains("wake"), "9 left: the owner is woken")
            let low = try await raw.request(.GET, "/v1/mailbox?version=2", token: alice.token).decode(FetchResponseV2.self)
            #expect(low.keyPackagesLow)
        }
    }

    @Test("a group send needs the epoch's secret and no token; one commit per epoch, the loser hears 409 with the epoch; members fetch both in order")
    func epochsAndSends() async throws {
        try await withRelay { relay, _ in
            let raw = RawHTTP(relay)
            let alice = try await RawDevice.register("alice", on: relay)
            let bob = try await RawDevice.register("bob", on: relay)
            let members = recipients([alice, bob])
            let secret0 = SystemRandom().bytes(32), secret1 = SystemRandom().bytes(32)
            let creation = GroupCreation(groupId: Hex.encode(groupId),
                                         verifier: Base64Bytes(RelayAPI.groupSendVerifier(groupId: groupId, epoch: 0, secret: secret0)))
            #expect(try await raw.request(.POST, "/v1/groups", json: creation).status == 401, "creating a group takes a device token")
            let created = try await raw.request(.POST, "/v1/groups", json: creation, token: alice.token)
            #expect(created.status == 201)
            #expect(try created.decode(GroupEpoch.self) == GroupEpoch(groupId: Hex.encode(groupId), epoch: 0))
            #expect(try await raw.request(.POST, "/v1/groups", json: creation, token: bob.token).status == 409, "the id is taken")

            let hello = GroupSend(epoch: 0, message: Base64Bytes([0x48, 0x49]), recipients: members)
            #expect(try await raw.request(.POST, groupPath + "/messages", json: hello).status == 401, "no secret")
            #expect(try await raw.request(.POST, groupPath + "/messages", json: hello, headers: secretHeader(secret1)).status == 401, "another secret")
            #expect(try await raw.request(.POST, groupPath + "/messages", json: hello, headers: secretHeader(secret0)).status == 204)

            // Two members commit at once: exactly one commit is taken.
            let next = Base64Bytes(RelayAPI.groupSendVerifier(groupId: groupId, epoch: 1, secret: secret1))
            let commitA = GroupSend(epoch: 0, message: Base64Bytes([0xC1]), recipients: members, nextVerifier: next)
            let commitB = GroupSend(epoch: 0, message: Base64Bytes([0xC2]), recipients: members, nextVerifier: next)
            async let a = raw.request(.POST, groupPath + "/commits", json: commitA, headers: secretHeader(secret0))
            async let b = raw.request(.POST, groupPath + "/commits", json: commitB, headers: secretHeader(secret0))
            let replies = try await [a, b]
            #expect(replies.map(\.status).sorted() == [204, 409])
            let loser = try #require(replies.first { $0.status == 409 })
            #expect(try loser.decode(EpochConflict.self) == EpochConflict(error: "epoch_conflict", message: "the group is at epoch 1", epoch: 1))

            #expect(try await raw.request(.POST, groupPath + "/messages", json: hello, headers: secretHeader(secret0)).status == 409,
                    "a send for a past epoch")
            let later = GroupSend(epoch: 1, message: Base64Bytes([0x4C]), recipients: members)
            #expect(try await raw.request(.POST, groupPath + "/messages", json: later, headers: secretHeader(secret0)).status == 401,
                    "the past epoch's secret does not open the new one")
            #expect(try await raw.request(.POST, groupPath + "/messages", json: later, headers: secretHeader(secret1)).status == 204)

            for member in [alice, bob] {
                let entries = try await mailbox(member, raw)
                #expect(entries.map { $0.group?.kind } == ["message", "commit", "message"])
                #expect(entries.map { $0.group?.epoch } == [0, 0, 1])
                #expect(entries.allSatisfy { $0.envelope == nil && $0.group?.groupId == Hex.encode(groupId) })
                #expect(try await raw.mailbox(token: member.token).isEmpty, "version 1 leaves group messages out")
            }
            // Acknowledged with the next page in the answer (version 2).
            let ids = try await mailbox(bob, raw).map(\.id)
            let ack = try await raw.request(.POST, "/v1/mailbox/ack?fetch=10&version=2", json: AckRequest(ids: ids), token: bob.token)
            #expect(ack.status == 200)
            #expect(try ack.decode(FetchResponseV2.self).messages.isEmpty)
            #expect(try await mailbox(alice, raw).count == 3, "Alice's entries stay until she acknowledges them")
        }
    }

    @Test("bad group input is refused with a 4xx and stores nothing")
    func badInput() async throws {
        try await withRelay { relay, _ in
            let raw = RawHTTP(relay)
            let alice = try await RawDevice.register("alice", on: relay)
            let secret = SystemRandom().bytes(32)
            let creation = GroupCreation(groupId: Hex.encode(groupId),
                                         verifier: Base64Bytes(RelayAPI.groupSendVerifier(groupId: groupId, epoch: 0, secret: secret)))
            #expect(try await raw.request(.POST, "/v1/groups", json: creation, token: alice.token).status == 201)
            let upper = GroupCreation(groupId: Hex.encode(groupId).uppercased(), verifier: creation.verifier)
            #expect(try await raw.request(.POST, "/v1/groups", json: upper, token: alice.token).status == 400)
            let shortVerifier = GroupCreation(groupId: Hex.encode(SystemRandom().bytes(32)), verifier: Base64Bytes([1]))
            #expect(try await raw.request(.POST, "/v1/groups", json: shortVerifier, token: alice.token).status == 400)

            func send(_ body: GroupSend, path: String? = nil, kind: String = "messages") async throws -> Int {
                try await raw.request(.POST, (path ?? groupPath) + "/" + kind, json: body, headers: secretHeader(secret)).status
            }
            let message = Base64Bytes([1])
            #expect(try await send(GroupSend(epoch: 0, message: message, recipients: [GroupRecipient(address: alice.address, deviceId: 2)])) == 404)
            #expect(try await send(GroupSend(epoch: 0, message: message, recipients: [GroupRecipient(address: "x@elsewhere.test", deviceId: 1)])) == 404)
            #expect(try await send(GroupSend(epoch: 0, message: message, recipients: recipients([alice, alice]))) == 400)
            #expect(try await send(GroupSend(epoch: 0, message: message, recipients: [])) == 400)
            #expect(try await send(GroupSend(epoch: 0, message: Base64Bytes([]), recipients: recipients([alice]))) == 400)
            #expect(try await send(GroupSend(epoch: 0, message: message, recipients: recipients([alice])), kind: "commits") == 400, "no next verifier")
            #expect(try await send(GroupSend(epoch: 0, message: message, recipients: recipients([alice])), path: "/v1/groups/zz") == 400)
            #expect(try await send(GroupSend(epoch: 0, message: message, recipients: recipients([alice])),
                                   path: "/v1/groups/" + Hex.encode(SystemRandom().bytes(32))) == 404)
            #expect(try await raw.request(.GET, "/v1/mailbox?version=3", token: alice.token).status == 400)
            #expect(try await mailbox(alice, raw).isEmpty, "nothing refused was stored")
        }
    }
}
