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
    case malformedRecord(table: String, detail: String)
    case backupInvalid(String)
    case io(String)

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
        case .malformedRecord(let table, let detail): "a record in \(table) is malformed: \(detail)"
        case .backupInvalid(let detail): "the backup file cannot be used: \(detail)"
        case .io(let detail): detail
        }
    }
}
