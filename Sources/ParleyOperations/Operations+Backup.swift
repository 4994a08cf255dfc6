import ParleyClient
import ParleyCrypto
import ParleyStore

public struct BackupResult: Codable, Sendable, Equatable {
    public let file: String
    public let contacts: Int
    public let messages: Int
}

/// The account in one encrypted file (restoring one makes a new home, so it stays with `parley backup import`).
extension Operations {
    public func exportBackup(to file: String, passphrase: SecretBytes) throws -> BackupResult {
        let summary = try engine.exportBackup(to: file, passphrase: passphrase)
        return BackupResult(file: file, contacts: summary.contacts, messages: summary.messages)
    }
}
