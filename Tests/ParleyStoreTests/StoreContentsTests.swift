import Testing
import Foundation
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

@Suite struct StoreContentsTests {
    let directory = try! TemporaryDirectory("store")
    var path: String { directory.sub("parley.db") }
    let alice = makeAccount("alice@relay.test")
    let bob = makeAccount("bob@relay.test")

    @Test func localAccountAndPreKeysRoundTrip() throws {
        let keys = LocalPreKeys.generate(oneTime: 4)
        do {
            let store = try makeStore(path)
            #expect(try store.localAccount() == nil)
            #expect(try store.preKeys().serialized() == LocalPreKeys().serialized())
            try store.saveLocalAccount(alice, preKeys: keys)
        }
        let store = try openStore(path)
        let account = try #require(try store.localAccount())
        #expect(account.serialized() == alice.serialized())
        #expect(account.address == "alice@relay.test")
        #expect(account.certificate == alice.certificate)
        #expect(try store.preKeys().serialized() == keys.serialized())

        // Saving the account alone leaves the prekeys as they were.
        var updated = alice
        updated.deviceList = SignedDeviceList.sign(devices: alice.deviceList.devices, version: 2, accountKey: alice.accountKey)
        try store.saveLocalAccount(updated)
        #expect(try store.localAccount()?.deviceList.version == 2)
        #expect(try store.preKeys().serialized() == keys.serialized())
    }

    @Test func contactsKeepTrustAndDisplayName() throws {
        let carol = makeAccount("carol@relay.test")
        do {
            let store = try makeStore(path)
            try store.saveContact(Contact(address: "carol@relay.test", account: known(carol), trust: .changed, displayName: "Carol"))
            try store.saveContact(Contact(address: "bob@relay.test", account: KnownAccount(accountKey: bob.accountKey.publicKey)))
            var bobContact = try #require(try store.contact("bob@relay.test"))
            #expect(bobContact.trust == .unverified && bobContact.account.deviceList == nil)
            bobContact.trust = .verified
            bobContact.account = known(bob)
            bobContact.displayName = "Bobby 🐝"
            try store.saveContact(bobContact)
        }
        let store = try openStore(path)
        #expect(try store.contacts() == [
            Contact(address: "bob@relay.test", account: known(bob), trust: .verified, displayName: "Bobby 🐝"),
            Contact(address: "carol@relay.test", account: known(carol), trust: .changed, displayName: "Carol"),
        ])
        #expect(try store.account("carol@relay.test") == known(carol))
        #expect(try store.contact("dave@relay.test") == nil)
        #expect(try store.account("dave@relay.test") == nil)
    }

    @Test func sessionChangesRoundTrip() throws {
        let store = try makeStore(path)
        let bobKeys = LocalPreKeys.generate(oneTime: 1)
        let one = try ratchetSession(from: alice, to: bob, remoteKeys: bobKeys)
        let two = try ratchetSession(from: alice, to: bob, remoteKeys: bobKeys)
        let bob1 = DeviceAddress(address: "bob@relay.test", deviceId: 1), bob3 = DeviceAddress(address: "bob@relay.test", deviceId: 3)
        let carol1 = DeviceAddress(address: "carol@relay.test", deviceId: 1)

        var changes = SessionChanges()
        changes.sessions[bob1] = PeerDeviceSessions(active: one, inactive: [two])
        changes.sessions[bob3] = PeerDeviceSessions(active: two)
        changes.sessions[carol1] = PeerDeviceSessions(active: one)
        changes.accounts["bob@relay.test"] = known(bob)
        changes.preKeys = bobKeys
        try store.commit(changes)

        #expect(try store.sessions(for: bob1).serialized() == PeerDeviceSessions(active: one, inactive: [two]).serialized())
        #expect(try store.sessions(for: bob3).active?.serialized() == two.serialized())
        #expect(try store.sessions(for: DeviceAddress(address: "bob@relay.test", deviceId: 2)).isEmpty)
        #expect(try store.deviceIdsWithSessions(of: "bob@relay.test") == [1, 3])
        #expect(try store.deviceIdsWithSessions(of: "carol@relay.test") == [1])
        #expect(try store.deviceIdsWithSessions(of: "dave@relay.test") == [])
        #expect(try store.contact("bob@relay.test") == Contact(address: "bob@relay.test", account: known(bob)))
        #expect(try store.preKeys().serialized() == bobKeys.serialized())

        var removal = SessionChanges()
        removal.removedSessions = [bob1]
        try store.commit(removal)
        #expect(try store.deviceIdsWithSessions(of: "bob@relay.test") == [3])
        #expect(try store.sessions(for: bob1).isEmpty)
    }

    @Test func accountChangeKeepsTrustAndDisplayName() throws {
        let store = try makeStore(path)
        try store.saveContact(Contact(address: "bob@relay.test", account: KnownAccount(accountKey: bob.accountKey.publicKey),
                                      trust: .verified, displayName: "Bob"))
        var changes = SessionChanges()
        changes.accounts["bob@relay.test"] = known(bob)
        try store.commit(changes)
        #expect(try store.contact("bob@relay.test") == Contact(address: "bob@relay.test", account: known(bob), trust: .verified,
                                                                displayName: "Bob"))
    }

    @Test func inboxIsFiledAndOutboxDrained() throws {
        let store = try makeStore(path)
        let received = ReceivedMessage(sender: bob.deviceAddress, certificate: bob.certificate,
                                       content: textContent("hi alice", to: "alice@relay.test", id: 7), startedSession: true)
        let envelopes = [OutgoingEnvelope(recipient: bob.deviceAddress, envelope: [1, 2, 3]),
                         OutgoingEnvelope(recipient: DeviceAddress(address: "alice@relay.test", deviceId: 2), envelope: [4, 5])]
        var changes = SessionChanges()
        changes.received = received
        changes.outgoing = envelopes
        try store.commit(changes)

        let inbox = try store.inbox()
        #expect(inbox.map(\.message) == [received])
        #expect(try store.outbox().map(\.envelope) == envelopes)

        let filed = try store.file(inboxEntry: inbox[0].id, as: try record(of: received))
        #expect(filed != nil)
        #expect(try store.inbox().isEmpty)
        let history = try store.messages(with: "bob@relay.test")
        #expect(history.map(\.text) == ["hi alice"])
        #expect(history.first?.id == filed)
        #expect(history.first?.sender == bob.deviceAddress)

        let outbox = try store.outbox()
        try store.removeFromOutbox([outbox[0].id])
        #expect(try store.outbox().map(\.envelope) == [envelopes[1]])
        try store.removeFromOutbox([outbox[1].id])
        #expect(try store.outbox().isEmpty)

        // Non-message content (nil record) just leaves the inbox.
        var receipt = SessionChanges()
        receipt.received = received
        try store.commit(receipt)
        #expect(try store.file(inboxEntry: try #require(try store.inbox().first).id, as: nil) == nil)
        #expect(try store.inbox().isEmpty)
        #expect(try store.messageCount() == 1)
    }

    @Test func sendCommitsOutboxWithHistory() throws {
        let store = try makeStore(path)
        var changes = SessionChanges()
        changes.outgoing = [OutgoingEnvelope(recipient: bob.deviceAddress, envelope: [9, 9])]
        let sent = MessageRecord(conversation: "bob@relay.test", direction: .outgoing, sender: alice.deviceAddress,
                                 clientMessageId: [UInt8](repeating: 1, count: 16), sentAt: 1, receivedAt: 1, text: "to bob", state: .pending)
        let id = try store.commit(changes, recording: sent)
        #expect(id != nil)
        #expect(try store.outbox().count == 1)
        #expect(try store.messages(with: "bob@relay.test").map(\.state) == [.pending])
        #expect(try store.conversations() == ["bob@relay.test"])
    }

    @Test(arguments: DeliveryState.allCases)
    func deliveryStateUpdates(to state: DeliveryState) throws {
        let store = try makeStore(path)
        let ids = try store.insertMessages([message("one", 1), message("two", 2)])
        try store.updateState(of: try #require(ids[0]), to: state)
        #expect(try store.messages(with: "bob@relay.test").map(\.state) == [state, .received])
        #expect(try store.verify().rows["messages"] == 2)
    }

    @Test func conversationsAreMostRecentFirst() throws {
        let store = try makeStore(path)
        try store.insertMessages([message("a", 1, peer: "bob@relay.test"), message("b", 2, peer: "carol@relay.test")])
        #expect(try store.conversations() == ["carol@relay.test", "bob@relay.test"])
        try store.insertMessages([message("c", 3, peer: "bob@relay.test")])
        #expect(try store.conversations() == ["bob@relay.test", "carol@relay.test"])
    }

    @Test func repliesAndAttachmentsAreStoredAndSearchStillFindsTheText() throws {
        let store = try makeStore(path)
        let pointer = AttachmentPointer(id: String(repeating: "0f", count: 32), key: [UInt8](repeating: 7, count: 32), size: 1234,
                                        digest: [UInt8](repeating: 3, count: 32), fileName: "plan.pdf", contentType: "application/pdf")
        let quoted = [UInt8](repeating: 5, count: 16)
        let records = [
            MessageRecord(conversation: "bob@relay.test", direction: .incoming, sender: bob.deviceAddress, clientMessageId: [UInt8](repeating: 1, count: 16),
                          sentAt: 1, receivedAt: 1, text: "the quarterly plan", state: .received, replyTo: quoted, attachment: pointer),
            MessageRecord(conversation: "bob@relay.test", direction: .incoming, sender: bob.deviceAddress, clientMessageId: [UInt8](repeating: 2, count: 16),
                          sentAt: 2, receivedAt: 2, text: "only a reply", state: .received, replyTo: quoted),
            MessageRecord(conversation: "bob@relay.test", direction: .incoming, sender: bob.deviceAddress, clientMessageId: [UInt8](repeating: 3, count: 16),
                          sentAt: 3, receivedAt: 3, text: "", state: .received, attachment: pointer),
        ]
        try store.insertMessages(records)
        let stored = try store.messages(with: "bob@relay.test")
        #expect(stored.map(\.replyTo) == [quoted, quoted, nil])
        #expect(stored.map(\.attachment) == [pointer, nil, pointer])
        #expect(try store.search("quarterly").map(\.attachment) == [pointer])
        #expect(try store.verify().rows["messages"] == 3)
        // The key and file name are inside the encrypted cell, nowhere in the file.
        let file = fileBytes(path) + fileBytes(path + "-wal")
        #expect(file.range(of: Data("plan.pdf".utf8)) == nil)
    }
}
