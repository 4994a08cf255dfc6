import ParleyClient
import ParleyProtocol
import ParleyStore

/// What the notification hub reads and writes: the engine in the daemon (front ends ask the engine, never
/// its store), a store of their own in tests.
public protocol NotificationSource: Sendable {
    func setting(_ name: String) throws -> String?
    func setSetting(_ name: String, _ value: String?) throws
    func messages(after id: Int64, limit: Int) throws -> [MessageRecord]
    func message(sentBy sender: AccountAddress, clientMessageId: [UInt8]) throws -> MessageRecord?
    /// The contact at `address` (for the nickname a notification names the sender by).
    func contact(_ address: AccountAddress) throws -> Contact?
}

extension EncryptedStore: NotificationSource {}
extension Engine: NotificationSource {}
