import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import Testing

/// The client's side of the MLS delivery service (PROTOCOL.md §17): `RelayClient`'s group calls against a
/// relay process on loopback, and the in-process twin the engine tests use, asked the same questions.
@Suite("Relay client: group endpoints")
struct GroupRelayClientTests {
    @Test("over HTTP: KeyPackages uploaded, counted and claimed; a group created; the losing commit gets the current epoch; sends need the epoch's secret; mailbox v2 fetch and ack")
    func overHTTP() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let bob = try await TestDevice.create("bob", on: relay, in: directory)
            try await exercise(alice.engine.relay, alice: alice, bob: bob)
        }
    }

    @Test("in process: the twin of the relay answers the group calls as the relay process does")
    func inProcess() async throws {
        let network = InProcessNetwork()
        let relay = try network.addRelay("127.0.0.1:7401")
        let directory = try TemporaryDirectory("group-client")
        let alice = try await ClientDevice.create("alice", on: relay, relayName: relay.name, in: directory)
        let bob = try await ClientDevice.create("bob", on: relay, relayName: relay.name, in: directory)
        try await exercise(relay, alice: alice, bob: bob)
        #expect(relay.tap.count("commit") == 3)
    }

    private func exercise(_ transport: any RelayTransport, alice: ClientDevice, bob: ClientDevice) async throws {
        let aliceToken = try await alice.token(), bobToken = try await bob.token()
        let bobAddress = await bob.address.description

        // KeyPackages: upload, count (low under 10), one claimed per device, then the last-resort one.
        try await transport.uploadKeyPackages(KeyPackageUpload(keyPackages: [Base64Bytes([1]), Base64Bytes([2])], lastResort: Base64Bytes([9])),
                                              token: bobToken)
        #expect(try await transport.keyPackageCount(token: bobToken) == KeyPackageCount(keyPackages: 2, lastResort: true, low: true))
        var claimed: [[UInt8]] = []
        for _ in 0..<3 { claimed += try await transport.claimKeyPackages(of: bobAddress).keyPackages.map(\.keyPackage.bytes) }
        #expect(claimed == [[1], [2], [9]])
        #expect(try await transport.keyPackageCount(token: bobToken).keyPackages == 0)

        // A group at epoch 0, registered with the verifier of epoch 0's secret.
        let groupId = SystemRandom().bytes(32), hexId = Hex.encode(groupId)
        let secrets = (0..<4).map { _ in SystemRandom().bytes(32) }
        func verifier(_ epoch: UInt64) -> Base64Bytes {
            Base64Bytes(RelayAPI.groupSendVerifier(groupId: groupId, epoch: epoch, secret: secrets[Int(epoch)]))
        }
        let created = try await transport.createGroup(GroupCreation(groupId: hexId, verifier: verifier(0)), token: aliceToken)
        #expect(created == GroupEpoch(groupId: hexId, epoch: 0))
        do {
            _ = try await transport.createGroup(GroupCreation(groupId: hexId, verifier: verifier(0)), token: aliceToken)
            Issue.record("a taken group id was accepted")
        } catch { #expect(error.isPermanentRefusal) }

        let toBob = [GroupRecipient(address: bobAddress, deviceId: 1)]
        // One commit per epoch: the second for epoch 0 loses and hears the epoch the group is at.
        try await transport.commit(GroupSend(epoch: 0, message: Base64Bytes([0xC0]), recipients: toBob, nextVerifier: verifier(1)),
                                   toGroup: hexId, secret: secrets[0])
        do {
            try await transport.commit(GroupSend(epoch: 0, message: Base64Bytes([0xC1]), recipients: toBob, nextVerifier: verifier(1)),
                                       toGroup: hexId, secret: secrets[0])
            Issue.record("a second commit for epoch 0 was accepted")
        } catch {
            #expect(error == .epochConflict(current: 1))
        }
        // A send authorised by a past epoch's secret, or by no valid one, is refused; the current one passes.
        do {
            try await transport.send(GroupSend(epoch: 1, message: Base64Bytes([0xAA]), recipients: toBob), toGroup: hexId, secret: secrets[0])
            Issue.record("epoch 0's secret opened epoch 1")
        } catch { #expect(error.relayStatus == 401, "\(error)") }
        try await transport.send(GroupSend(epoch: 1, message: Base64Bytes([0xA1]), recipients: toBob), toGroup: hexId, secret: secrets[1])
        try await transport.commit(GroupSend(epoch: 1, message: Base64Bytes([0xC2]), recipients: toBob, nextVerifier: verifier(2)),
                                   toGroup: hexId, secret: secrets[1])

        // Bob's mailbox, version 2: the commit, the message and the next commit in order; a version-1
        // fetch leaves them out.
        #expect(try await transport.fetch(limit: 10, token: bobToken).messages.isEmpty)
        let page = try await transport.fetchWithGroups(limit: 2, after: nil, token: bobToken)
        #expect(page.messages.map { $0.group?.kind } == ["commit", "message"])
        #expect(page.messages.map { $0.group?.message.bytes } == [[0xC0], [0xA1]])
        #expect(page.messages.map { $0.group?.epoch } == [0, 1])
        #expect(page.more)
        #expect(page.keyPackagesLow)
        let next = try await transport.acknowledgeWithGroups(page.messages.map(\.id), fetch: 10, after: page.messages.last?.id, token: bobToken)
        #expect(next.messages.map { $0.group?.message.bytes } == [[0xC2]])
        #expect(next.messages.allSatisfy { $0.group?.groupId == hexId && $0.envelope == nil })
        let empty = try await transport.acknowledgeWithGroups(next.messages.map(\.id), fetch: 10, after: nil, token: bobToken)
        #expect(empty.messages.isEmpty && !empty.more)
    }
}

extension ClientError {
    /// The HTTP status of a relay's refusal, if this is one.
    var relayStatus: Int? {
        if case .relay(let status, _, _) = self { return status }
        return nil
    }
}
