import ParleyProtocol
import ParleyStore

/// A group as the roster, its window's title and completion show it.
public struct GroupSummary: Equatable, Sendable {
    /// Neutralised (`PeerText.forName`): the members chose it. Empty from a Welcome until the name follows.
    public var name: String
    /// The member accounts, this one included, each once.
    public var members: [String]
    /// False once this device left or was removed: the window keeps the history and sends nothing.
    public var active: Bool

    public init(name: String, members: [String], active: Bool) {
        self.name = PeerText.forName(name)
        self.members = members
        self.active = active
    }
}

extension AppState {
    /// What a window is called in the roster and its title: a group's name, a contact's nickname, or the address.
    public func windowName(of conversation: ConversationId) -> String {
        switch conversation {
        case .direct: return shownName(of: conversation.description)
        case .group(let id):
            let name = groups[id]?.name ?? ""
            return name.isEmpty ? "unnamed group" : name
        }
    }

    /// The input line's prompt: a group's name, a contact's nickname, or the local part of the address.
    public func promptName(of conversation: ConversationId) -> String {
        switch conversation {
        case .direct: return nicknames[conversation.description] ?? ConversationPane.shortName(conversation.description)
        case .group: return DisplayWidth.truncate(windowName(of: conversation), to: 20)
        }
    }

    /// How a group window names a member: by the nickname the user gave; a contact by the local part of
    /// the address when no other contact has that local part; anyone else by the whole address (a
    /// stranger's "bob@elsewhere" never reads as your bob).
    public func memberName(_ address: String) -> String {
        Self.memberName(address, nicknames: nicknames, contacts: contacts)
    }

    static func memberName(_ address: String, nicknames: [String: String], contacts: Set<String>) -> String {
        if let nickname = nicknames[address] { return nickname }
        let short = ConversationPane.shortName(address)
        guard contacts.contains(address), !contacts.contains(where: { $0 != address && ConversationPane.shortName($0) == short }) else {
            return address
        }
        return short
    }

    /// The members of group `id` other than this account (what `/kick` completes).
    public func otherMembers(of id: GroupId) -> [String] {
        (groups[id]?.members ?? []).filter { $0 != account }
    }

    /// Takes in what the store says about a group now: its name and members for the title and the roster,
    /// and the trust its roster entry shows if it has one (the weakest of the other members', `weakest`).
    public mutating func update(group id: GroupId, _ summary: GroupSummary, trust: TrustState) {
        groups[id] = summary
        if let index = roster.firstIndex(where: { $0.conversation == .group(id) }) { roster[index].trust = trust }
    }

    /// The trust a group shows: the least trusted of the other members (a key change anywhere shows), or
    /// verified when every other member is (or there is nobody else).
    public static func weakest(_ states: [TrustState]) -> TrustState {
        let order: [TrustState] = [.untrusted, .changed, .unverified, .verified]
        return order.first { states.contains($0) } ?? .verified
    }
}
