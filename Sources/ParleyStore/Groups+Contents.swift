internal import GRDB
import ParleyProtocol

/// What one group message does to history, besides moving the group's state (PROTOCOL.md §17.6): file a
/// message, apply a reaction, edit or delete, or advance messages' delivery state (a receipt).
public enum GroupFiling: Sendable, Equatable {
    /// Stored unless its (sender, client message id) is already there.
    case message(MessageRecord)
    /// Applied to the message it names, unless refused (an edit or delete by anyone but the author, a target
    /// of another conversation or not held).
    case action(MessageAction)
    /// `author`'s messages with these client message ids advance to `state` (never backwards).
    case advance(author: AccountAddress, messageIds: [[UInt8]], to: DeliveryState)
}

extension EncryptedStore {
    /// Saves a group's new state with what its message did, in one transaction: the state never moves past
    /// a message, action or receipt that is not stored, and none is stored under a state that is not.
    /// Returns, per filing, the message as stored (a new message with its id; for an action the message as
    /// changed), or nil: a repeat, a refused action, a receipt.
    @discardableResult
    public func saveGroup(_ record: GroupRecord, with filings: [GroupFiling]) throws(StoreError) -> [MessageRecord?] {
        try write { db in
            try save(record, db)
            return try filings.map { filing -> MessageRecord? in
                switch filing {
                case .message(var message):
                    guard let id = try insert(message, db) else { return nil }
                    message.id = id
                    return message
                case .action(let action):
                    return try apply(action, db)
                case .advance(let author, let ids, let state):
                    _ = try advance(ofMessagesSentBy: author, ids: ids, to: state, db)
                    return nil
                }
            }
        }
    }
}
