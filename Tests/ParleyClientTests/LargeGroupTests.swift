import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyStore
import ParleyTestSupport
import Testing

/// A group of 200 members (issue #22, item 5): 200 accounts on one relay (the relay core in process), each
/// with its own home and store; one commit adds 199 of them, every one joins from the Welcome, and messages
/// from three members reach all the others. Run time is printed, not asserted.
@Suite("Engine: a group of 200 members")
struct LargeGroupTests {
    static let members = 200
    /// Devices working at once (the machine has two cores; a little more hides the store's syncs).
    static let width = 4
    static let oneTimePreKeys = 10

    /// `body` for each item, `width` at a time, results in the items' order.
    static func each<T: Sendable, R: Sendable>(_ items: [T], _ body: @escaping @Sendable (T) async throws -> R) async throws -> [R] {
        try await withThrowingTaskGroup(of: (Int, R).self) { group in
            var results = [R?](repeating: nil, count: items.count)
            var next = 0
            for _ in 0..<min(width, items.count) {
                let index = next, item = items[index]
                group.addTask { (index, try await body(item)) }
                next += 1
            }
            while let (index, result) = try await group.next() {
                results[index] = result
                if next < items.count {
                    let index = next, item = items[index]
                    group.addTask { (index, try await body(item)) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }

    @Test("200 accounts, one relay, 200 homes: one commit adds 199, all join at one epoch, and three members' messages reach every member")
    func twoHundredMembers() async throws {
        let clock = ContinuousClock(), start = clock.now
        var marks: [(String, Duration)] = []
        func mark(_ step: String) { marks.append((step, start.duration(to: clock.now))) }

        let network = InProcessNetwork()
        let relay = try network.addRelay("127.0.0.1:7322")
        let directory = try TemporaryDirectory("large-group")
        // Each account is registered and uploads its prekeys as any other, but with 10 one-time prekeys of
        // each kind instead of 100 (the relay's low mark: no refill follows): nothing here starts a 1:1
        // session, and 90 more ML-KEM-1024 keys per account were half of this test's CPU time (ML-KEM key
        // generation, and the relay parsing each uploaded key).
        let devices = try await Self.each(Array(0..<Self.members)) { index in
            try await ClientDevice.create("m\(index)", on: relay, relayName: relay.name, in: directory, oneTimePreKeys: Self.oneTimePreKeys)
        }
        mark("accounts")

        // Every member holds every other's device list, as `addContact` leaves it (fetched once here, and
        // saved in one transaction per home rather than 199).
        var contacts: [Contact] = []
        for device in devices {
            let account = await device.engine.account
            contacts.append(Contact(address: await device.address,
                                    account: KnownAccount(accountKey: account.accountKey.publicKey, deviceList: account.deviceList)))
        }
        let everyone = contacts
        _ = try await Self.each(devices) { device in
            let own = await device.address
            try device.store.saveContacts(everyone.filter { $0.address != own })
            return try await device.engine.stockKeyPackages()
        }
        mark("contacts and KeyPackages")

        let creator = devices[0]
        let group = try await creator.engine.createGroup(name: "Two hundred", members: contacts.dropFirst().map(\.address))
        #expect(group.members.count == Self.members)
        let id = group.id
        mark("create and add 199")

        _ = try await Self.each(Array(devices.dropFirst())) { device in try await device.engine.receivePending() }
        let epoch = try #require(try creator.store.group(id)?.epoch)
        for device in devices {
            let record = try device.store.group(id), who = await device.address
            #expect(record?.epoch == epoch && record?.members.count == Self.members && record?.name == "Two hundred",
                    "\(who) is in the group at epoch \(epoch)")
        }
        mark("199 joins")

        let senders = [0, 100, Self.members - 1]
        for sender in senders {
            _ = try await devices[sender].engine.send(text: "from m\(sender)", toGroup: id)
            _ = try await Self.each(devices.indices.filter { $0 != sender }.map { devices[$0] }) { device in
                try await device.engine.receivePending()
            }
        }
        mark("3 messages, each to 199")

        let expected = Set(senders.map { "from m\($0)" })
        for device in devices {
            let filed = try device.store.messages(in: .group(id), limit: 100), who = await device.address
            #expect(Set(filed.filter { $0.state != .failed }.map(\.text)).isSuperset(of: expected), "\(who) read every message")
            #expect(filed.allSatisfy { $0.state != .failed }, "nothing undecryptable at \(who)")
        }
        print("200-member group: " + marks.map { "\($0.0) at \(String(format: "%.1f", Double($0.1.components.seconds) + Double($0.1.components.attoseconds) / 1e18)) s" }
            .joined(separator: ", "))
    }
}
