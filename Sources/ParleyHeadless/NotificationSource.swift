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
    /// The name of group `id` (for a group message's `groupInfo`), nil for a group this device does not know.
    func groupName(of id: GroupId) -> String?
}

extension EncryptedStore: NotificationSource {
    public func groupName(of id: GroupId) -> String? { (try? group(id))??.name }
}

extension Engine: NotificationSource {
    public nonisolated func groupName(of id: GroupId) -> String? { try? group(id).name }
}
