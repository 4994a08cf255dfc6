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
        try exportBackup(to: file, sealedWith: .passphrase(passphrase))
    }

    /// The backup, its key sealed with a passphrase or to a custodian's public key, as the policy allows.
    public func exportBackup(to file: String, sealedWith seal: Backup.Seal) throws -> BackupResult {
        switch seal {
        case .passphrase: try policy.checkBackup(custodian: nil)
        case .custodian(let key): try policy.checkBackup(custodian: key)
        }
        let summary = try engine.exportBackup(to: file, sealedWith: seal)
        return BackupResult(file: file, contacts: summary.contacts, messages: summary.messages)
    }
}
