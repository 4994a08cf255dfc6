import Foundation
internal import GRDB
import ParleyCrypto

/// Named settings (relay endpoint options, front-end preferences), encrypted like everything else.
extension EncryptedStore {
    public func setting(_ name: String) throws(StoreError) -> String? {
        let key = lookup(name, "settings")
        guard let cell = try read({ db in try Data.fetchOne(try db.cachedStatement(sql: "SELECT body FROM settings WHERE lookup = ?"), arguments: [key]) }) else {
            return nil
        }
        let plain = try open(cell, "settings", "body", .key([UInt8](key)))
        guard let value = String(validating: plain, as: UTF8.self) else { throw .malformedRecord(table: "settings", detail: name) }
        return value
    }

    /// Sets `name` to `value`, or removes it when `value` is nil.
    public func setSetting(_ name: String, _ value: String?) throws(StoreError) {
        let key = lookup(name, "settings")
        try write { db in
            if let value {
                try db.execute(sql: "INSERT OR REPLACE INTO settings (lookup, body) VALUES (?, ?)",
                               arguments: [key, seal(Array(value.utf8), "settings", "body", .key([UInt8](key)))])
            } else {
                try db.execute(sql: "DELETE FROM settings WHERE lookup = ?", arguments: [key])
            }
        }
    }
}

/// Envelopes discarded unread because nothing in them was vouched for by a key this device holds (junk that
/// anyone can send, or a certificate naming a contact under a key their relay does not publish). They are
/// counted, never filed into a conversation, so a flood of them writes no history.
extension EncryptedStore {
    private static let discardedEnvelopesSetting = "discarded-envelopes"

    /// How many envelopes this device has discarded so far.
    public func discardedEnvelopes() throws(StoreError) -> Int {
        try setting(Self.discardedEnvelopesSetting).flatMap { Int($0) } ?? 0
    }

    /// Adds `count` to the number of discarded envelopes, in one transaction, and returns the new total.
    @discardableResult
    public func countDiscardedEnvelopes(_ count: Int) throws(StoreError) -> Int {
        let key = lookup(Self.discardedEnvelopesSetting, "settings")
        let row = CellCipher.Row.key([UInt8](key))
        return try write { db in
            var total = count
            if let cell = try Data.fetchOne(db, sql: "SELECT body FROM settings WHERE lookup = ?", arguments: [key]),
               let text = String(validating: try open(cell, "settings", "body", row), as: UTF8.self), let before = Int(text) {
                total += before
            }
            try db.execute(sql: "INSERT OR REPLACE INTO settings (lookup, body) VALUES (?, ?)",
                           arguments: [key, seal(Array(String(total).utf8), "settings", "body", row)])
            return total
        }
    }
}
