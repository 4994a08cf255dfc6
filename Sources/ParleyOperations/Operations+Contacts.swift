import ParleyClient
import ParleyProtocol
import ParleyStore

/// Contacts as people: nicknames, short names, removal, blocking.
extension Operations {
    /// The contact `text` names: their address, their nickname (any case), or the local part of their
    /// address when one contact has it. Text that names no contact is returned as it is (an address not
    /// added yet, this account's own); text that names several is refused with the candidates.
    public func resolve(_ text: String) throws -> String {
        let contacts = try engine.contacts()
        if contacts.contains(where: { $0.address == text }) || text.contains("@") { return text }
        let wanted = text.lowercased()
        var matches = contacts.filter { !$0.nickname.isEmpty && PeerText.forName($0.nickname).lowercased() == wanted }
        if matches.isEmpty { matches = contacts.filter { Self.localPart(of: $0.address).lowercased() == wanted } }
        switch matches.count {
        case 0: return text
        case 1: return matches[0].address
        default:
            let names = matches.map { PeerText.forTerminal($0.address) }.joined(separator: ", ")
            throw OperationError.refused("'\(PeerText.forTerminal(text))' could be \(names); give the address")
        }
    }

    /// The name to show for `address`: its contact's nickname, neutralised, or the address itself.
    public func shownName(of address: String) -> String {
        guard let nickname = try? engine.contact(address)?.nickname, !nickname.isEmpty else { return address }
        return PeerText.forName(nickname)
    }

    /// Gives a contact a nickname ("" removes it). The name is user input: neutralised (controls and
    /// bidirectional overrides dropped, whitespace folded, at most `PeerText.nameLimit` characters).
    /// Refused: a name with "@" (it could pass for another account's address) and one another contact has.
    public func renameContact(_ contact: String, to name: String) async throws -> ContactResult {
        let address = try resolve(contact)
        let clean = PeerText.forName(name)
        guard !clean.contains("@") else { throw OperationError.invalidInput("a nickname cannot contain '@' (it would read as an address)") }
        if !clean.isEmpty, let other = try engine.contacts().first(where: {
            $0.address != address && PeerText.forName($0.nickname).lowercased() == clean.lowercased()
        }) {
            throw OperationError.refused("\(PeerText.forTerminal(other.address)) is already called '\(clean)'; nothing was changed")
        }
        return ContactResult(try await engine.setNickname(address, to: clean))
    }

    /// Forgets a contact and the sessions with their devices. Their conversation's history stays (it is
    /// the user's record; adding the contact again continues it).
    public func removeContact(_ contact: String) async throws -> RemovedContactResult {
        let removed = try await engine.removeContact(try resolve(contact))
        return RemovedContactResult(address: removed.address, name: PeerText.forName(removed.nickname))
    }

    /// Blocks or unblocks contacts: a blocked contact's messages are dropped before they are stored (and
    /// still acknowledged), and sending to them is refused.
    public func setBlocked(_ contacts: [String], _ blocked: Bool) async throws -> [ContactResult] {
        let addresses = try contacts.map(resolve)
        for address in addresses where try engine.contact(address) == nil { throw ClientError.unknownContact(address) }
        var out: [ContactResult] = []
        for address in addresses { out.append(ContactResult(try await engine.setBlocked(address, blocked))) }
        return out
    }

    static func localPart(of address: String) -> String {
        String(address.prefix { $0 != "@" })
    }
}

/// What `removeContact` removed: the contact and their sessions; the history is kept.
public struct RemovedContactResult: Codable, Sendable, Equatable {
    public let address: String
    public let name: String
    public var sessionsRemoved = true
    public var historyKept = true
}
