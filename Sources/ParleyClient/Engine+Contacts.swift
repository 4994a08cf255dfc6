import ParleyProtocol
import ParleyStore

/// Contacts as people: a name of the user's choosing, removal, blocking.
extension Engine {
    /// Gives `peer` the nickname `name` (already neutralised; "" removes it) and returns the contact.
    @discardableResult
    public func setNickname(_ peer: AccountAddress, to name: String) throws -> Contact {
        guard var contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        contact.nickname = PeerText.forName(name)
        try store.saveContact(contact)
        return contact
    }

    /// Forgets `peer` and the sessions with their devices; their conversation's history is kept.
    public func removeContact(_ peer: AccountAddress) throws -> Contact {
        guard let contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        try store.removeContact(peer)
        return contact
    }

    /// Blocks (or unblocks) `peer`: a blocked contact's messages are dropped once decrypted, never filed,
    /// and nothing is sent to them.
    @discardableResult
    public func setBlocked(_ peer: AccountAddress, _ blocked: Bool) throws -> Contact {
        guard var contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        contact.blocked = blocked
        try store.saveContact(contact)
        return contact
    }

    /// Refuses a send to a blocked contact before anything is encrypted or uploaded.
    func refuseIfBlocked(_ peer: AccountAddress) throws {
        if try store.contact(peer)?.blocked == true { throw ClientError.blocked(peer) }
    }

    /// The addresses of blocked contacts (read once per received page).
    func blockedAddresses() throws -> Set<AccountAddress> {
        Set(try store.contacts().filter(\.blocked).map(\.address))
    }
}
