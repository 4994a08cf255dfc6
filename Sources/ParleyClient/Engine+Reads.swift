import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// What the front ends read: they ask the engine, which owns the store, instead of reaching into it.
/// Each read is one store call; none of them touches the relay.
extension Engine {
    public nonisolated func contacts() throws(StoreError) -> [Contact] { try store.contacts() }

    public nonisolated func contact(_ address: AccountAddress) throws(StoreError) -> Contact? { try store.contact(address) }

    /// The conversations that hold messages, most recent first.
    public nonisolated func conversations() throws(StoreError) -> [ConversationId] { try store.conversations() }

    public nonisolated func unreadCounts() throws(StoreError) -> [ConversationId: Int] { try store.unreadCounts() }

    /// A page of `conversation`, oldest first, ending before the store id `before`.
    public nonisolated func messages(in conversation: ConversationId, before: Int64? = nil, limit: Int = 200) throws(StoreError) -> [MessageRecord] {
        try store.messages(in: conversation, before: before, limit: limit)
    }

    /// Messages stored after the store id `id` (the daemon's durable cursors).
    public nonisolated func messages(after id: Int64, limit: Int = 200) throws(StoreError) -> [MessageRecord] {
        try store.messages(after: id, limit: limit)
    }

    public nonisolated func message(sentBy sender: AccountAddress, clientMessageId: [UInt8]) throws(StoreError) -> MessageRecord? {
        try store.message(sentBy: sender, clientMessageId: clientMessageId)
    }

    public nonisolated func search(_ text: String, in conversation: ConversationId? = nil, limit: Int = 100) throws(StoreError) -> [MessageRecord] {
        try store.search(text, in: conversation, limit: limit)
    }

    /// A front end's own setting, kept in the store (names are prefixed by the front end, e.g. "tui.").
    public nonisolated func setting(_ name: String) throws(StoreError) -> String? { try store.setting(name) }

    public nonisolated func setSetting(_ name: String, _ value: String?) throws(StoreError) { try store.setSetting(name, value) }
}

extension Engine {
    /// Writes the account, contacts, trust decisions and history to one file encrypted under `passphrase`.
    public nonisolated func exportBackup(to file: String, passphrase: SecretBytes) throws(StoreError) -> Backup.Summary {
        try Backup.export(store, to: file, passphrase: passphrase)
    }

    /// Writes the backup with its key sealed by `seal` (a passphrase, or a custodian's public key).
    public nonisolated func exportBackup(to file: String, sealedWith seal: Backup.Seal) throws(StoreError) -> Backup.Summary {
        try Backup.export(store, to: file, sealedWith: seal)
    }
}
