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

    public init(address: AccountAddress, account: KnownAccount, trust: TrustState = .unverified, displayName: String = "") {
        self.address = address
        self.account = account
        self.trust = trust
        self.displayName = displayName
    }

    func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.u8(RecordCodec.version)
        w.bytes16(Array(address.description.utf8))
        w.bytes32(account.serialized())
        w.u8(trust.rawValue)
        w.bytes16(Array(displayName.utf8))
        return w.bytes
    }

    init(serialized bytes: [UInt8]) throws(StoreError) {
        do {
            var r = ByteReader(bytes, structure: "contact")
            guard try r.u8() == RecordCodec.version else { throw StoreError.malformedRecord(table: "contacts", detail: "unknown version") }
            let text = try RecordCodec.string(try r.bytes16())
            do { address = try AccountAddress(text) } catch {
                throw StoreError.malformedRecord(table: "contacts", detail: "address: \(error.reason)")
            }
            account = try KnownAccount(serialized: try r.bytes32())
            guard let trust = TrustState(rawValue: try r.u8()) else { throw StoreError.malformedRecord(table: "contacts", detail: "trust") }
            self.trust = trust
            displayName = try RecordCodec.string(try r.bytes16())
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

    public func contacts() throws(StoreError) -> [Contact] {
        let rows = try read { db in try Row.fetchAll(db, sql: "SELECT lookup, body FROM contacts") }
        var out: [Contact] = []
        for row in rows {
            let key: Data = row["lookup"]
            out.append(try Contact(serialized: try open(row["body"], "contacts", "body", .key([UInt8](key)))))
        }
        return out.sorted { $0.address.description < $1.address.description }
    }
}
