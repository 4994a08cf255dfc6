import Foundation
import ParleyCrypto
import ParleyProtocol

/// Store failures. Each names what is wrong in words a person can act on; none carries a secret.
public enum StoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case noStore(path: String)
    case alreadyExists(path: String)
    case wrongPassphrase
    case wrongKeyFile(path: String)
    case keyFileUnreadable(path: String, reason: String)
    case keyFileTooOpen(path: String, mode: String)
    case noUnlockMethod(kind: String)
    case notADatabase(path: String, detail: String)
    case corrupt(path: String, detail: String)
    case tamperedRow(table: String, column: String, row: String)
    case unsupportedSchema(found: Int, supported: Int)
    /// Migrating the store from schema `from` to `to` failed; the file is as it was before.
    case upgradeFailed(path: String, from: Int, to: Int, detail: String)
    case malformedRecord(table: String, detail: String)
    case backupInvalid(String)
    case io(String)
    /// The file system holding the store has no room left: `directory` is the home, `available` the
    /// bytes free there when the write failed, `needed` what to free before trying again.
    case diskFull(directory: String, available: Int64, needed: Int64)

    public var description: String {
        switch self {
        case .noStore(let path): "no Parley store at \(path) (run `parley init` first, or pass --home)"
        case .alreadyExists(let path): "a Parley store already exists at \(path)"
        case .wrongPassphrase: "wrong passphrase: the store was not unlocked and nothing was changed"
        case .wrongKeyFile(let path): "the key file \(path) does not unlock this store"
        case .keyFileUnreadable(let path, let reason): "cannot read key file \(path): \(reason)"
        case .keyFileTooOpen(let path, let mode): "key file \(path) is readable by others (mode \(mode)); run chmod 600 on it"
        case .noUnlockMethod(let kind): "this store cannot be unlocked with a \(kind)"
        case .notADatabase(let path, let detail): "\(path) is not a Parley store (\(detail))"
        case .corrupt(let path, let detail): "the store \(path) is damaged: \(detail)"
        case .tamperedRow(let table, let column, let row): "the store was tampered with: \(table).\(column) of row \(row) fails authentication"
        case .unsupportedSchema(let found, let supported): "the store has schema version \(found); this Parley reads up to \(supported)"
        case .upgradeFailed(let path, let from, let to, let detail):
            "cannot upgrade the store \(path) from schema version \(from) to \(to) (\(detail)); it was left unchanged, as the previous version of Parley wrote it"
        case .malformedRecord(let table, let detail): "a record in \(table) is malformed: \(detail)"
        case .backupInvalid(let detail): "the backup file cannot be used: \(detail)"
        case .io(let detail): detail
        case .diskFull(let directory, let available, let needed):
            "the disk holding \(directory) is full (\(Self.bytes(available)) free): free at least \(Self.bytes(needed)) there; "
                + "nothing was lost, and messages not stored yet stay on the relay"
        }
    }

    /// What to free before a full disk is tried again: room for a page of fetched mail (100 envelopes of up
    /// to 96 KiB) and the write-ahead log it passes through.
    public static let spaceNeeded: Int64 = 16 << 20

    /// The `diskFull` error for the store at `path`, with the space free now in its directory.
    public static func diskFull(path: String) -> StoreError {
        let directory = (path as NSString).deletingLastPathComponent
        var info = statvfs()
        let free = statvfs(directory.isEmpty ? "." : directory, &info) == 0
        let available = free ? Int64(info.f_bavail) * Int64(info.f_frsize) : 0
        return .diskFull(directory: directory.isEmpty ? "." : directory, available: available, needed: spaceNeeded)
    }

    static func bytes(_ count: Int64) -> String {
        count >= 10 << 20 ? "\(count >> 20) MiB" : count >= 10 << 10 ? "\(count >> 10) KiB" : "\(count) bytes"
    }
}
