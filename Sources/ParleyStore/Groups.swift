import Foundation
internal import GRDB
import ParleyCrypto
import ParleyProtocol

/// A group this device is (or was) a member of. `state` is the MLS library's serialised state of the
/// current epoch (PROTOCOL.md §16.6): every secret of the epoch, so it is only ever written sealed, like a
/// ratchet session. `name` is what the members called the group (peer-controlled text: neutralised before
/// it is saved and on every output); `members` every leaf of the tree as account and device, as the state
/// says, kept beside it so that listing groups needs no MLS decoding. `infoKey` seals what the group leaves
/// on the relay for rejoining (PROTOCOL.md §17.9); it is kept beside the state, not in it, so that a member
/// whose state no longer opens can still rejoin.
public struct GroupRecord: Sendable, Equatable {
    public let id: GroupId
    public var name: String
    public var members: [DeviceAddress]
    public var epoch: UInt64
    /// False once this device left the group or was removed: the state then reads nothing more.
    public var active: Bool
    public var state: [UInt8]
    /// The group's GroupInfo key and the epoch it was derived in; nil in a record saved before there were
    /// such keys (version 1) and in a joiner's until a member sends it.
    public var infoKey: GroupInfoKey?

    public init(id: GroupId, name: String, members: [DeviceAddress], epoch: UInt64, active: Bool = true, state: [UInt8],
                infoKey: GroupInfoKey?) {
        self.id = id
        self.name = name
        self.members = members
        self.epoch = epoch
        self.active = active
        self.state = state
        self.infoKey = infoKey
    }

    /// The accounts among the members, each once, in order of first leaf.
    public var accounts: [String] {
        var seen = Set<String>()
        return members.map(\.address).filter { seen.insert($0).inserted }
    }

    /// Version 2 adds the GroupInfo key; version 1 records still open (without one).
    static let recordVersion: UInt8 = 2

    /// `version u8 ‖ id[32] ‖ bytes16(name) ‖ epoch u64 ‖ active u8 ‖ u16 n ‖ n × (bytes16(address) ‖ deviceId u32)
    /// ‖ bytes32(state)`, then (version 2) `0x00` without a GroupInfo key or `0x01 ‖ key epoch u64 ‖ key[32]`.
    func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 128 + state.count + members.count * 48)
        w.u8(Self.recordVersion)
        w.raw(id.bytes)
        w.bytes16(Array(name.utf8))
        w.u64(epoch)
        w.bool(active)
        w.u16(UInt16(members.count))
        for member in members {
            w.bytes16(Array(member.address.utf8))
            w.u32(member.deviceId)
        }
        w.bytes32(state)
        if let infoKey {
            w.u8(1)
            w.u64(infoKey.epoch)
            w.secret(infoKey.key)
        } else {
            w.u8(0)
        }
        return w.bytes
    }

    init(serialized bytes: [UInt8]) throws(StoreError) {
        do {
            var r = ByteReader(bytes, structure: "group")
            let version = try r.u8()
            guard version == 1 || version == Self.recordVersion else {
                throw StoreError.malformedRecord(table: "groups", detail: "unknown record version")
            }
            id = try GroupId(try r.raw(GroupId.length))
            guard let text = String(validating: try r.bytes16(), as: UTF8.self) else {
                throw StoreError.malformedRecord(table: "groups", detail: "name is not UTF-8")
            }
            name = text
            epoch = try r.u64()
            active = try r.bool()
            var members: [DeviceAddress] = []
            for _ in 0..<(try r.u16()) {
                guard let address = String(validating: try r.bytes16(), as: UTF8.self) else {
                    throw StoreError.malformedRecord(table: "groups", detail: "member address is not UTF-8")
                }
                members.append(DeviceAddress(address: address, deviceId: try r.u32()))
            }
            self.members = members
            state = try r.bytes32()
            infoKey = nil
            if version >= 2 {
                switch try r.u8() {
                case 0: break
                case 1: infoKey = GroupInfoKey(epoch: try r.u64(), key: SecretBytes(try r.raw(GroupInfoKey.length)))
                default: throw StoreError.malformedRecord(table: "groups", detail: "unknown GroupInfo key flag")
                }
            }
            try r.finish()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .malformedRecord(table: "groups", detail: "\(error)")
        }
    }
}

/// A group's GroupInfo key (PROTOCOL.md §17.9): MLS-Exporter("parley group info key v1", group_id, 32) in
/// epoch `epoch`, the group's first or the last one whose commit removed a device.
public struct GroupInfoKey: Sendable, Equatable {
    public static let length = 32
    public let epoch: UInt64
    public let key: SecretBytes

    public init(epoch: UInt64, key: SecretBytes) {
        precondition(key.count == Self.length)
        self.epoch = epoch
        self.key = key
    }

    public static func == (a: GroupInfoKey, b: GroupInfoKey) -> Bool { a.epoch == b.epoch && a.key.constantTimeEquals(b.key) }
}

/// The private keys of one KeyPackage this device uploaded: kept until a Welcome uses them (a
/// last-resort package's stay, since the relay hands it out again). Sealed like every secret.
public struct KeyPackageKeys: Sendable, Equatable {
    /// The KeyPackage's reference (RFC 9420 §5.2), which a Welcome names.
    public let reference: [UInt8]
    public let keyPackage: [UInt8]
    public let initPrivateKey: [UInt8]
    public let encryptionPrivateKey: [UInt8]
    public let lastResort: Bool

    public init(reference: [UInt8], keyPackage: [UInt8], initPrivateKey: [UInt8], encryptionPrivateKey: [UInt8], lastResort: Bool) {
        self.reference = reference
        self.keyPackage = keyPackage
        self.initPrivateKey = initPrivateKey
        self.encryptionPrivateKey = encryptionPrivateKey
        self.lastResort = lastResort
    }

    static let recordVersion: UInt8 = 1

    func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 64 + keyPackage.count)
        w.u8(Self.recordVersion)
        w.bytes16(reference)
        w.bytes32(keyPackage)
        w.bytes16(initPrivateKey)
        w.bytes16(encryptionPrivateKey)
        w.bool(lastResort)
        return w.bytes
    }

    init(serialized bytes: [UInt8]) throws(StoreError) {
        do {
            var r = ByteReader(bytes, structure: "key package keys")
            guard try r.u8() == Self.recordVersion else { throw StoreError.malformedRecord(table: "key_packages", detail: "unknown record version") }
            reference = try r.bytes16()
            keyPackage = try r.bytes32()
            initPrivateKey = try r.bytes16()
            encryptionPrivateKey = try r.bytes16()
            lastResort = try r.bool()
            try r.finish()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .malformedRecord(table: "key_packages", detail: "\(error)")
        }
    }
}

/// Groups and this device's KeyPackage keys (schema v4).
extension EncryptedStore {
    private func groupKey(_ id: GroupId) -> Data { Data(cipher.lookup(id.bytes, table: "groups")) }
    private func keyPackageKey(_ reference: [UInt8]) -> Data { Data(cipher.lookup(reference, table: "key_packages")) }

    public func group(_ id: GroupId) throws(StoreError) -> GroupRecord? {
        try read { db in try group(id, db) }
    }

    func group(_ id: GroupId, _ db: Database) throws -> GroupRecord? {
        let key = groupKey(id)
        guard let cell = try Data.fetchOne(try db.cachedStatement(sql: "SELECT body FROM groups WHERE lookup = ?"), arguments: [key]) else { return nil }
        var plain = try open(cell, "groups", "body", .key([UInt8](key)))
        defer { wipe(&plain) }
        let record = try GroupRecord(serialized: plain)
        guard record.id == id else { throw StoreError.malformedRecord(table: "groups", detail: "a record under another group's key") }
        return record
    }

    /// Every group, active ones first, then by name.
    public func groups() throws(StoreError) -> [GroupRecord] {
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT lookup, body FROM groups") }
        var out: [GroupRecord] = []
        for row in rows {
            let key: Data = row["lookup"]
            var plain = try open(row["body"], "groups", "body", .key([UInt8](key)))
            defer { wipe(&plain) }
            out.append(try GroupRecord(serialized: plain))
        }
        return out.sorted { ($0.active ? 0 : 1, $0.name, $0.id.hex) < ($1.active ? 0 : 1, $1.name, $1.id.hex) }
    }

    /// Saves a group's new state together with the messages it decrypted (and the KeyPackage keys a Welcome
    /// used, which are deleted), in one transaction: the state never moves past a message that is not
    /// stored, and a message is never stored under a state that is not. Returns the message ids (nil for a
    /// repeat), as `insertMessages` does.
    @discardableResult
    public func saveGroup(_ record: GroupRecord, filing messages: [MessageRecord] = [], usedKeyPackage reference: [UInt8]? = nil) throws(StoreError) -> [Int64?] {
        try write { db in
            try save(record, db)
            if let reference {
                let key = keyPackageKey(reference)
                if let cell = try Data.fetchOne(db, sql: "SELECT body FROM key_packages WHERE lookup = ?", arguments: [key]),
                   try !KeyPackageKeys(serialized: try open(cell, "key_packages", "body", .key([UInt8](key)))).lastResort {
                    try db.execute(sql: "DELETE FROM key_packages WHERE lookup = ?", arguments: [key])
                }
            }
            return try messages.map { try insert($0, db) }
        }
    }

    func save(_ record: GroupRecord, _ db: Database) throws {
        let key = groupKey(record.id)
        var plain = record.serialized()
        defer { wipe(&plain) }
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO groups (lookup, body) VALUES (?, ?)").execute(
            arguments: [key, seal(plain, "groups", "body", .key([UInt8](key)))])
    }

    // MARK: KeyPackage keys

    /// Keeps the private keys of KeyPackages about to be uploaded (before the upload: a package the relay
    /// hands out must always have its keys here). A new last-resort package replaces the previous one.
    public func saveKeyPackageKeys(_ keys: [KeyPackageKeys]) throws(StoreError) {
        try write { db in
            if keys.contains(where: \.lastResort) {
                for row in try Row.fetchAll(db, sql: "SELECT lookup, body FROM key_packages") {
                    let key: Data = row["lookup"]
                    if try KeyPackageKeys(serialized: try open(row["body"], "key_packages", "body", .key([UInt8](key)))).lastResort {
                        try db.execute(sql: "DELETE FROM key_packages WHERE lookup = ?", arguments: [key])
                    }
                }
            }
            for entry in keys {
                let key = keyPackageKey(entry.reference)
                var plain = entry.serialized()
                defer { wipe(&plain) }
                try db.cachedStatement(sql: "INSERT OR REPLACE INTO key_packages (lookup, body) VALUES (?, ?)").execute(
                    arguments: [key, seal(plain, "key_packages", "body", .key([UInt8](key)))])
            }
        }
    }

    /// The keys of the KeyPackage with this reference, if this device made it and has not used it.
    public func keyPackageKeys(reference: [UInt8]) throws(StoreError) -> KeyPackageKeys? {
        let key = keyPackageKey(reference)
        guard let cell = try read({ db in try Data.fetchOne(db, sql: "SELECT body FROM key_packages WHERE lookup = ?", arguments: [key]) }) else {
            return nil
        }
        var plain = try open(cell, "key_packages", "body", .key([UInt8](key)))
        defer { wipe(&plain) }
        return try KeyPackageKeys(serialized: plain)
    }

    /// Every KeyPackage whose keys are kept (the relay's stock and the last-resort one).
    public func keyPackageKeys() throws(StoreError) -> [KeyPackageKeys] {
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT lookup, body FROM key_packages") }
        var out: [KeyPackageKeys] = []
        for row in rows {
            let key: Data = row["lookup"]
            var plain = try open(row["body"], "key_packages", "body", .key([UInt8](key)))
            defer { wipe(&plain) }
            out.append(try KeyPackageKeys(serialized: plain))
        }
        return out
    }
}
