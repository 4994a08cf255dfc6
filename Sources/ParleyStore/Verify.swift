import Foundation
internal import GRDB
import ParleyCrypto
import ParleyProtocol

/// What `verify()` checked.
public struct VerifyReport: Sendable, Equatable {
    public var rows: [String: Int] = [:]
    public var total: Int { rows.values.reduce(0, +) }
}

extension EncryptedStore {
    /// Checks the whole file: SQLite's integrity check, then every encrypted cell decrypts under its row's
    /// associated data and every record parses. Throws the first problem found, naming table, column and row.
    public func verify() throws(StoreError) -> VerifyReport {
        let problems = try read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check") }
        guard problems == ["ok"] else { throw .corrupt(path: path, detail: problems.prefix(3).joined(separator: "; ")) }
        var report = VerifyReport()
        try read { db in
            report.rows["local"] = try check(db, "SELECT name AS k, body FROM local", table: "local", columns: ["body"]) { .key(Array(($0["k"] as String).utf8)) }
            report.rows["contacts"] = try check(db, "SELECT lookup AS k, body FROM contacts", table: "contacts", columns: ["body"]) { .key([UInt8]($0["k"] as Data)) }
            report.rows["sessions"] = try check(db, "SELECT lookup AS k, device, body FROM sessions", table: "sessions", columns: ["device", "body"]) { .key([UInt8]($0["k"] as Data)) }
            for table in ["conversations", "inbox", "outbox", "attachments"] {
                report.rows[table] = try check(db, "SELECT id AS k, body FROM \(table)", table: table, columns: ["body"]) { .id($0["k"]) }
            }
            report.rows["settings"] = try check(db, "SELECT lookup AS k, body FROM settings", table: "settings", columns: ["body"]) { .key([UInt8]($0["k"] as Data)) }
            for table in ["groups", "key_packages"] {
                report.rows[table] = try check(db, "SELECT lookup AS k, body FROM \(table)", table: table, columns: ["body"]) { .key([UInt8]($0["k"] as Data)) }
            }
            report.rows["messages"] = try check(db, "SELECT id AS k, body, state FROM messages", table: "messages", columns: ["body", "state"]) { .id($0["k"]) }
        }
        // Records must also parse, not just authenticate.
        _ = try localAccount()
        try Self.guarded(path) { _ = try preKeys() }
        _ = try contacts()
        _ = try inbox()
        _ = try outbox()
        _ = try groups()
        _ = try keyPackageKeys()
        for conversation in try conversations() { _ = try messages(in: conversation, limit: Int.max) }
        return report
    }

    private func check(_ db: Database, _ sql: String, table: String, columns: [String],
                       row: (Row) -> CellCipher.Row) throws -> Int {
        var count = 0
        let cursor = try Row.fetchCursor(db, sql: sql)
        while let next = try cursor.next() {
            for column in columns { _ = try open(next[column], table, column, row(next)) }
            count += 1
        }
        return count
    }
}
