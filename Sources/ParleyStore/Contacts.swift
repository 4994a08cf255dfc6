import Foundation
internal import GRDB
import ParleyCrypto
import ParleyProtocol

/// How far this device trusts a contact's account key (the verification issue drives the transitions).
public enum TrustState: UInt8, Sendable {
    /// Seen and accepted on first use; not compared out of band.
    case unverified = 0
    /// Safety number compared out of band.
    case verified = 1
    /// The account key changed after it was verified; sending stops until the user decides.
    case changed = 2
    /// Never accepted (policy `never`): sending stops until the user trusts the key.
    case untrusted = 3

    /// Whether messages may be sent to a contact in this state.
    public var allowsSending: Bool { self == .unverified || self == .verified }
}

/// A peer account and what this device knows and thinks of it.
public struct Contact: Sendable, Equatable {
    public let address: AccountAddress
    public var account: KnownAccount
    public var trust: TrustState
    public var displayName: String
    /// The name the user gave this contact ("" for none), shown instead of the address. User input:
    /// neutralised (`ContactName.neutralised`) before it is saved, and again on every output path.
    public var nickname: String
    /// Whether the user blocked this contact: their messages are decrypted (so the session stays in step)
    /// and then dropped before they are filed, and nothing is sent to them.
    public var blocked: Bool

    public init(address: AccountAddress, account: KnownAccount, trust: TrustState = .unverified, displayName: String = "",
                nickname: String = "", blocked: Bool = false) {
        self.address = address
        self.account = account
        self.trust = trust
        self.displayName = displayName
        self.nickname = nickname
        self.blocked = blocked
    }

    /// The record as schema v3 writes it (record version 2: v1's fields, then the nickname and the block flag).
    func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.u8(Self.recordVersion)
        writeVersion1Fields(to: &w)
        w.bytes16(Array(nickname.utf8))
        w.u8(blocked ? 1 : 0)
        return w.bytes
    }

    /// Record version 1, the one a link transfer carries (PROTOCOL.md §15.2, its vector in
    /// Tests/vectors/link-transfer-v1.json): a nickname and a block are this device's own choices and do not
    /// travel to a newly linked device, whose transfer format stays as documented.
    func serializedForLinkTransfer() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.u8(RecordCodec.version)
        writeVersion1Fields(to: &w)
        return w.bytes
    }

    private func writeVersion1Fields(to w: inout ByteWriter) {
        w.bytes16(Array(address.description.utf8))
        w.bytes32(account.serialized())
        w.u8(trust.rawValue)
        w.bytes16(Array(displayName.utf8))
    }

    /// Record version 1 (schema v1 and v2) ends after the display name; the v3 migration rewrites every
    /// contact as version 2. Both are read, so that a backup written before v3 restores.
    static let recordVersion: UInt8 = 2

    init(serialized bytes: [UInt8]) throws(StoreError) {
        do {
            var r = ByteReader(bytes, structure: "contact")
            let version = try r.u8()
            guard version == RecordCodec.version || version == Self.recordVersion else {
                throw StoreError.malformedRecord(table: "contacts", detail: "unknown version")
            }
            let text = try RecordCodec.string(try r.bytes16())
            do { address = try AccountAddress(text) } catch {
                throw StoreError.malformedRecord(table: "contacts", detail: "address: \(error.reason)")
            }
            account = try KnownAccount(serialized: try r.bytes32())
            guard let trust = TrustState(rawValue: try r.u8()) else { throw StoreError.malformedRecord(table: "contacts", detail: "trust") }
            self.trust = trust
            displayName = try RecordCodec.string(try r.bytes16())
            if version == Self.recordVersion {
                nickname = try RecordCodec.string(try r.bytes16())
                let flag = try r.u8()
                guard flag <= 1 else { throw StoreError.malformedRecord(table: "contacts", detail: "blocked") }
                blocked = flag == 1
            } else {
                nickname = ""
                blocked = false
            }
            try r.finish()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .malformedRecord(table: "contacts", detail: "\(error)")
        }
    }
}

extension EncryptedStore {
    public func contact(_ address: AccountAddress) throws(StoreError) -> Contact? {
        try read { db in try contact(address, db) }
    }

    func contact(_ address: AccountAddress, _ db: Database) throws -> Contact? {
        let key = lookup(address.description, "contacts")
        guard let cell = try Data.fetchOne(try db.cachedStatement(sql: "SELECT body FROM contacts WHERE lookup = ?"), arguments: [key]) else { return nil }
        return try Contact(serialized: try open(cell, "contacts", "body", .key([UInt8](key))))
    }

    public func saveContact(_ contact: Contact) throws(StoreError) {
        try write { db in try save(contact, db) }
    }

    func save(_ contact: Contact, _ db: Database) throws {
        let key = lookup(contact.address.description, "contacts")
        try db.cachedStatement(sql: "INSERT OR REPLACE INTO contacts (lookup, body) VALUES (?, ?)").execute(
                       arguments: [key, seal(contact.serialized(), "contacts", "body", .key([UInt8](key)))])
    }

    /// Forgets the contact and every ratchet session with their devices, in one transaction. Their
    /// conversation and its messages are kept (history is the user's; `parley history` still shows it).
    /// Returns whether there was such a contact.
    @discardableResult
    public func removeContact(_ address: AccountAddress) throws(StoreError) -> Bool {
        let text = address.description
        return try write { db in
            try db.execute(sql: "DELETE FROM sessions WHERE owner = ?", arguments: [lookup(text, "sessions.owner")])
            try db.execute(sql: "DELETE FROM contacts WHERE lookup = ?", arguments: [lookup(text, "contacts")])
            return db.changesCount > 0
        }
    }

    /// Every contact. The receive path asks for them on every page (for the blocked ones), so a cell is
    /// opened only when its sealed bytes differ from those it was last opened from: a change made by this
    /// store, by another process on the same file or by a key rotation changes the bytes (every seal draws
    /// a fresh nonce) and is seen on the next call, with no invalidation to forget.
    public func contacts() throws(StoreError) -> [Contact] {
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT lookup, body FROM contacts") }
        let before = openedContacts.withLock { $0 }
        var now: [Data: OpenedContact] = [:]
        now.reserveCapacity(rows.count)
        for row in rows {
            let key: Data = row["lookup"], cell: Data = row["body"]
            if let opened = before[key], opened.cell == cell {
                now[key] = opened
            } else {
                now[key] = OpenedContact(cell: cell, contact: try Contact(serialized: try open(cell, "contacts", "body", .key([UInt8](key)))))
                contactCellsOpened.add(1, ordering: .relaxed)
            }
        }
        openedContacts.withLock { $0 = now }
        return now.values.map(\.contact).sorted { $0.address.description < $1.address.description }
    }
}

/// A contact and the sealed cell it was opened from.
struct OpenedContact: Sendable {
    let cell: Data
    let contact: Contact
}
