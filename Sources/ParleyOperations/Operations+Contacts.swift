import ParleyClient
import ParleyProtocol
import ParleyStore

/// Contacts as people: nicknames, short names, removal, blocking. The CLI, the daemon and the chat window
/// turn what the user typed into an address with `resolve` (the one place short names are understood);
/// everything after it takes the `AccountAddress`.
extension Operations {
    /// The account `text` names: an address (parsed here, at the edge), or a short name — a contact's
    /// nickname (any case), or the local part of their address when one contact has it. A short name
    /// that names no contact, and a malformed address, are invalid input (exit 1, -32602); one that names
    /// several is refused with the candidates.
    public func resolve(_ text: String) throws -> AccountAddress {
        if text.contains("@") {
            do { return try AccountAddress(text) } catch {
                throw OperationError.invalidInput("\(PeerText.forTerminal(text)) is not an address: \(error.reason)")
            }
        }
        let contacts = try engine.contacts()
        let wanted = text.lowercased()
        var matches = contacts.filter { !$0.nickname.isEmpty && PeerText.forName($0.nickname).lowercased() == wanted }
        if matches.isEmpty { matches = contacts.filter { $0.address.name.lowercased() == wanted } }
        switch matches.count {
        case 0:
            throw OperationError.invalidInput("'\(PeerText.forTerminal(text))' is neither an address (NAME@HOST[:PORT]) nor a contact's nickname or name")
        case 1: return matches[0].address
        default:
            let names = matches.map(\.address.description).joined(separator: ", ")
            throw OperationError.refused("'\(PeerText.forTerminal(text))' could be \(names); give the address")
        }
    }

    /// The name to show for `address`: its contact's nickname, neutralised, or the address itself.
    public func shownName(of address: AccountAddress) -> String {
        guard let nickname = try? engine.contact(address)?.nickname, !nickname.isEmpty else { return address.description }
        return PeerText.forName(nickname)
    }

    /// Gives a contact a nickname ("" removes it). The name is user input: neutralised (controls and
    /// bidirectional overrides dropped, whitespace folded, at most `PeerText.nameLimit` characters).
    /// Refused: a name with "@" (it could pass for another account's address) and one another contact has.
    public func renameContact(_ address: AccountAddress, to name: String) async throws -> ContactResult {
        let clean = PeerText.forName(name)
        guard !clean.contains("@") else { throw OperationError.invalidInput("a nickname cannot contain '@' (it would read as an address)") }
        if !clean.isEmpty, let other = try engine.contacts().first(where: {
            $0.address != address && PeerText.forName($0.nickname).lowercased() == clean.lowercased()
        }) {
            throw OperationError.refused("\(other.address) is already called '\(clean)'; nothing was changed")
        }
        return ContactResult(try await engine.setNickname(address, to: clean))
    }

    /// Forgets a contact and the sessions with their devices. Their conversation's history stays (it is
    /// the user's record; adding the contact again continues it).
    public func removeContact(_ address: AccountAddress) async throws -> RemovedContactResult {
        let removed = try await engine.removeContact(address)
        return RemovedContactResult(address: removed.address.description, name: PeerText.forName(removed.nickname))
    }

    /// Blocks or unblocks contacts: a blocked contact's messages are dropped before they are stored (and
    /// still acknowledged), and sending to them is refused.
    public func setBlocked(_ addresses: [AccountAddress], _ blocked: Bool) async throws -> [ContactResult] {
        for address in addresses where try engine.contact(address) == nil { throw ClientError.unknownContact(address) }
        var out: [ContactResult] = []
        for address in addresses { out.append(ContactResult(try await engine.setBlocked(address, blocked))) }
        return out
    }
}

/// What `removeContact` removed: the contact and their sessions; the history is kept.
public struct RemovedContactResult: Codable, Sendable, Equatable {
    public let address: String
    public let name: String
    public var sessionsRemoved = true
    public var historyKept = true
}
