import Foundation
@testable import ParleyClient
import ParleyCrypto
@testable import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing

/// What a group leaves on the relay for rejoining (PROTOCOL.md §17.9), read from the relay's own SQLite file:
/// the GroupInfo and a rejoiner's external commit are sealed under the group's GroupInfo key, which every
/// member keeps beside its MLS state; a commit that removes a device changes the key. SQLite only: these
/// tests read the relay's database file.
@Suite("End to end: the GroupInfo left for rejoining is sealed from the relay")
struct GroupInfoSealEndToEndTests {
    /// The group's GroupInfo and its epoch as the relay's database holds them, nil when it holds none.
    static func storedGroupInfo(_ relay: RelayProcess, _ id: GroupId, _ directory: TemporaryDirectory) async throws -> (bytes: [UInt8], epoch: UInt64)? {
        let rows = try await query(relay, "SELECT hex(group_info) || '|' || epoch FROM mls_group_infos WHERE group_id = X'\(id.hex)'", directory)
        guard let row = rows.first else { return nil }
        let parts = row.split(separator: "|")
        return (try #require(Hex.decode(String(parts[0]).lowercased())), try #require(UInt64(parts[1])))
    }

    /// The bodies of the group's commits the relay still holds, oldest first.
    static func storedCommits(_ relay: RelayProcess, _ id: GroupId, _ directory: TemporaryDirectory) async throws -> [[UInt8]] {
        try await query(relay, "SELECT hex(body) FROM group_messages WHERE group_id = X'\(id.hex)' AND is_commit = 1 ORDER BY id", directory)
            .map { try #require(Hex.decode($0.lowercased())) }
    }

    static func query(_ relay: RelayProcess, _ sql: String, _ directory: TemporaryDirectory) async throws -> [String] {
        let result = try await run("/usr/bin/sqlite3", ["-readonly", relay.dataDirectory + "/relay.sqlite", sql], in: directory)
        #expect(result.status == 0, "\(result.summary)")
        return result.stdout.split(separator: "\n").map(String.init).filter { !$0.isEmpty }
    }

    static func contains(_ haystack: [UInt8], _ needle: [UInt8]) -> Bool {
        guard !needle.isEmpty, haystack.count >= needle.count else { return false }
        return (0...(haystack.count - needle.count)).contains { haystack[$0..<($0 + needle.count)].elementsEqual(needle) }
    }

    static func state(_ device: TestDevice, _ id: GroupId) throws -> Group {
        try Group(serialized: SecretBytes(try #require(try device.store.group(id)).state))
    }

    static func key(_ device: TestDevice, _ id: GroupId) throws -> GroupInfoKey {
        try #require(try device.store.group(id)?.infoKey, "\(device.home) holds no GroupInfo key")
    }

    @Test("the GroupInfo the relay keeps names no member, not the group's name, and is no GroupInfo; every member holds the key that opens it")
    func storedGroupInfoIsSealed() async throws {
        try await withRelay { relay, directory in
            let w = try await GroupWorld.make(on: relay, in: directory)
            let name = "Moonlit Reading Circle"
            let addresses = [await w.alice.address, await w.bob.address, await w.carol.address]
            let id = try await w.alice.engine.createGroup(name: name, members: [addresses[1], addresses[2]]).id
            for device in w.all { try await device.engine.receivePending() }
            // A commit by a member that joined by Welcome: it holds the key the adder sent it.
            _ = try await w.carol.engine.updateOwnLeaf(in: id)
            for device in w.all { try await device.engine.receivePending() }

            let stored = try #require(try await Self.storedGroupInfo(relay, id, directory), "the commit left a GroupInfo")
            for address in addresses {
                #expect(!Self.contains(stored.bytes, Array(address.description.utf8)), "the stored GroupInfo names \(address)")
            }
            #expect(!Self.contains(stored.bytes, Array(name.utf8)), "the stored GroupInfo holds the group's name")
            #expect((try? GroupInfo(tlsEncoded: stored.bytes)) == nil, "the stored bytes parse as a GroupInfo")

            let keys = try w.all.map { try Self.key($0, id) }
            #expect(keys.allSatisfy { $0 == keys[0] }, "every device holds one key")
            #expect(keys[0].epoch == 0, "derived when the group was made; no device was removed since")
            let opened = try GroupSeal.open(stored.bytes, .groupInfo, key: keys[0].key, keyEpoch: keys[0].epoch, groupId: id, epoch: stored.epoch)
            let info = try GroupInfo(tlsEncoded: opened)
            let aliceEpoch = try Self.state(w.alice, id).epoch
            #expect(info.groupContext.epoch == stored.epoch && stored.epoch == aliceEpoch)
            #expect(info.groupContext.groupID == id.bytes)
            #expect(info.groupContext.extensions.isEmpty, "the group context carries nothing a user wrote (nor anything else)")
        }
    }

    @Test("a member whose state is corrupted rejoins with an external commit the relay cannot read, and the group goes on")
    func externalCommitIsSealed() async throws {
        try await withRelay { relay, directory in
            let w = try await GroupWorld.make(on: relay, in: directory)
            let bobAddress = await w.bob.address
            let id = try await w.alice.engine.createGroup(name: "g", members: [bobAddress, await w.carol.address]).id
            for device in w.all { try await device.engine.receivePending() }
            var record = try #require(try w.bob2.store.group(id))
            record.state = [UInt8](repeating: 0xEE, count: record.state.count)
            try w.bob2.store.saveGroup(record)

            _ = try await w.alice.engine.send(text: "while broken", toGroup: id)
            try await w.bob2.engine.receivePending()
            #expect(try w.bob2.store.messages(in: .group(id), limit: 100).contains { $0.direction == .system && $0.text.contains("rejoined") })
            // The external commit, waiting for the other devices: neither an MLS message nor naming the rejoiner.
            let external = try #require(try await Self.storedCommits(relay, id, directory).last)
            #expect((try? MLSMessage(tlsEncoded: external)) == nil, "the stored external commit parses as an MLS message")
            #expect(!Self.contains(external, Array(bobAddress.description.utf8)), "the stored external commit names the rejoiner's account")
            #expect(GroupSeal.isSealed(external))

            for device in w.all { try await device.engine.receivePending() }
            _ = try await w.carol.engine.send(text: "after", toGroup: id)
            for device in w.all { try await device.engine.receivePending() }
            let groups = try w.all.map { try Self.state($0, id) }
            #expect(Set(groups.map(\.epoch)).count == 1 && Set(groups.map(\.epochAuthenticator.unprotectedBytes)).count == 1)
            #expect(try w.bob2.store.messages(in: .group(id), limit: 100).filter { $0.direction != .system && $0.state != .failed }.map(\.text) == ["after"])
            #expect(try Self.key(w.bob2, id) == (try Self.key(w.alice, id)), "the rejoin keeps the key: it removes no device")
        }
    }

    @Test("a commit that removes a device changes the key: the removed device cannot open the next GroupInfo, the others can")
    func removalChangesTheKey() async throws {
        try await withRelay { relay, directory in
            let w = try await GroupWorld.make(on: relay, in: directory)
            let carolAddress = await w.carol.address
            let id = try await w.alice.engine.createGroup(name: "g", members: [await w.bob.address, carolAddress]).id
            for device in w.all { try await device.engine.receivePending() }
            let before = try Self.key(w.carol, id)

            let after = try await w.alice.engine.removeMembers([carolAddress], from: id)
            for device in w.all { try await device.engine.receivePending() }
            let stored = try #require(try await Self.storedGroupInfo(relay, id, directory))
            #expect(stored.epoch == after.epoch && GroupSeal.keyEpoch(of: stored.bytes) == after.epoch, "sealed under the key of the removal's epoch")
            // Carol, removed, kept the old key: it opens nothing, neither as it is nor claiming the new key's epoch.
            #expect(try Self.key(w.carol, id) == before)
            #expect(throws: ProtocolError.self) {
                try GroupSeal.open(stored.bytes, .groupInfo, key: before.key, keyEpoch: before.epoch, groupId: id, epoch: stored.epoch)
            }
            #expect(throws: ProtocolError.self) {
                try GroupSeal.open(stored.bytes, .groupInfo, key: before.key, keyEpoch: after.epoch, groupId: id, epoch: stored.epoch)
            }
            for device in [w.alice, w.bob, w.bob2] {
                let key = try Self.key(device, id)
                #expect(key.epoch == after.epoch && !(key == before))
                _ = try GroupInfo(tlsEncoded: try GroupSeal.open(stored.bytes, .groupInfo, key: key.key, keyEpoch: key.epoch, groupId: id,
                                                                 epoch: stored.epoch))
            }
        }
    }

    @Test("a group saved before GroupInfo keys leaves no GroupInfo until a commit removes a device; then every member derives the key")
    func groupsWithoutAKeyLeaveNothingReadable() async throws {
        try await withRelay { relay, directory in
            let w = try await GroupWorld.make(on: relay, in: directory)
            let carolAddress = await w.carol.address
            let id = try await w.alice.engine.createGroup(name: "g", members: [await w.bob.address, carolAddress]).id
            for device in w.all { try await device.engine.receivePending() }
            for device in w.all {
                var record = try #require(try device.store.group(id))
                record.infoKey = nil   // as a record of version 1 opens
                try device.store.saveGroup(record)
            }
            _ = try await w.bob.engine.updateOwnLeaf(in: id)
            #expect(try await Self.storedGroupInfo(relay, id, directory) == nil, "no key, no GroupInfo: nothing the relay could read")
            for device in w.all { try await device.engine.receivePending() }

            _ = try await w.alice.engine.removeMembers([carolAddress], from: id)
            for device in w.all { try await device.engine.receivePending() }
            let stored = try #require(try await Self.storedGroupInfo(relay, id, directory))
            let key = try Self.key(w.bob2, id)
            #expect(try Self.key(w.alice, id) == key && (try Self.key(w.bob, id)) == key)
            _ = try GroupInfo(tlsEncoded: try GroupSeal.open(stored.bytes, .groupInfo, key: key.key, keyEpoch: key.epoch, groupId: id, epoch: stored.epoch))
        }
    }

    @Test("the GroupInfo key is the MLS exporter's output for PROTOCOL.md's vector (computed outside this code)")
    func exporterVector() {
        let key = EpochSecrets.export(suite: .x25519ChaCha20Poly1305, exporterSecret: SecretBytes([UInt8](repeating: 0x55, count: 32)),
                                      label: Array(GroupSeal.keyLabel.utf8), context: [UInt8](repeating: 0xab, count: 32), length: 32)
        #expect(Hex.encode(key.unprotectedBytes) == "c8fd8cfdbccddf4d008471e139629975a902270e68d98445f1f7cabca0f2f751")
    }
}
