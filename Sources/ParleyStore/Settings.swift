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
