import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyStore

/// The group commands (`/group new`, `/invite`, `/kick`, `/leave`, `/rename`, `/members`), each an adapter
/// over one `Operations` call, and what the window keeps of the groups (the roster's entries, titles).
extension ChatController {
    /// `/group new NAME CONTACT…`: creates the group and opens its window.
    func group(_ args: [String]) {
        guard args.first == "new", case let (name, rest)? = Self.name(in: Array(args.dropFirst())), !name.isEmpty else {
            state.say("usage: /group new NAME CONTACT…   (a NAME with spaces in quotes)", error: true)
            return
        }
        guard let members = accounts(rest, { contactAddress($0) }) else { return }
        state.say("creating \(name)…")
        groupCall(reloading: nil, { try await $0.createGroup(name: name, members: members) }) { c, result in
            guard let id = GroupId(hex: result.id) else { return }
            c.open(.group(id))
            let others = result.members.filter { $0 != c.state.account }.map { c.state.memberName($0) }
            c.state.say("created \(c.state.windowName(of: .group(id)))" + (others.isEmpty ? " (only you so far: /invite CONTACT…)" : " with " + others.joined(separator: ", ")))
        }
    }

    /// `/invite CONTACT…` in a group's window.
    func invite(_ args: [String]) {
        guard let id = focusedGroup(for: "invite") else { return }
        guard !args.isEmpty else { state.say("usage: /invite CONTACT…   (Tab completes names)", error: true); return }
        guard let members = accounts(args, { contactAddress($0) }) else { return }
        let names = members.map { state.memberName($0.description) }.joined(separator: ", ")
        state.say("inviting \(names)…")
        groupCall(reloading: id, { try await $0.addToGroup(id, members: members) }) { c, _ in
            c.state.say("invited \(names) to \(c.state.windowName(of: .group(id)))")
        }
    }

    /// `/kick MEMBER…` in a group's window.
    func kick(_ args: [String]) {
        guard let id = focusedGroup(for: "kick") else { return }
        guard !args.isEmpty else { state.say("usage: /kick MEMBER…   (Tab completes the members)", error: true); return }
        guard let members = accounts(args, { member($0, of: id) }) else { return }
        let names = members.map { state.memberName($0.description) }.joined(separator: ", ")
        groupCall(reloading: id, { try await $0.removeFromGroup(id, members: members) }) { c, _ in
            c.state.say("removed \(names) from \(c.state.windowName(of: .group(id)))")
        }
    }

    /// `/leave` in a group's window.
    func leaveGroup() {
        guard let id = focusedGroup(for: "leave") else { return }
        groupCall(reloading: id, { try await $0.leaveGroup(id) }) { c, _ in
            c.state.say("you left \(c.state.windowName(of: .group(id))); its history stays here until /close")
        }
    }

    /// `/rename NAME` in a group's window.
    func renameGroup(_ args: [String]) {
        guard let id = focusedGroup(for: "rename") else { return }
        // Every word is the name (quotes around it are taken off).
        let words = args.joined(separator: " ")
        let quoted = words.count >= 2 && words.hasPrefix("\"") && words.hasSuffix("\"")
        let name = quoted ? String(words.dropFirst().dropLast()) : words
        guard !PeerText.forName(name).isEmpty else { state.say("usage: /rename NAME", error: true); return }
        groupCall(reloading: id, { try await $0.renameGroup(id, to: name) }) { c, _ in
            c.state.say("the group is now called \(c.state.windowName(of: .group(id)))")
        }
    }

    /// `/members` in a group's window: each member account with its trust and its devices, over the window.
    func members() {
        guard let id = focusedGroup(for: "members") else { return }
        do {
            let members = try Operations(engine: engine).groupMembers(id)
            let devices = members.reduce(0) { $0 + $1.devices }
            let title = "Members of \(state.windowName(of: .group(id))): \(members.count) account\(members.count == 1 ? "" : "s"), "
                + "\(devices) device\(devices == 1 ? "" : "s")"
            show(Overlay(title: title, lines: members.map(Self.memberLine)))
        } catch {
            state.say(Self.describe(error), error: true)
        }
    }

    /// One member in `/members`: the trust mark and words, the device count, the name and address.
    static func memberLine(_ member: GroupMemberResult) -> Overlay.Line {
        let (mark, words, style): (String, String, ThemeKey)
        if member.isSelf {
            (mark, words, style) = ("·", "you", .ownName)
        } else if let trust = member.trust {
            let badge = TrustBadge.badge(trust), said = TrustBadge.words(trust)
            (mark, words, style) = (badge.0, said.0, said.1)
        } else {
            (mark, words, style) = ("?", "not a contact", .secUnverified)
        }
        let count = "\(member.devices) device\(member.devices == 1 ? "" : "s")"
        let who = member.name.isEmpty ? member.address : "\(member.name) (\(member.address))"
        let text = "\(mark) " + words.padding(toLength: 14, withPad: " ", startingAt: 0) + count.padding(toLength: 11, withPad: " ", startingAt: 0) + who
        return Overlay.Line(text, style: style, indent: 27)
    }

    /// Sends `text` to every member of group `id` (`Operations.sendToGroup`): the stored message, to show.
    static func sendToGroup(_ id: GroupId, text: String, engine: Engine) async throws -> MessageRecord? {
        let sent = try await Operations(engine: engine).sendToGroup(id, text: text)
        guard let messageId = Hex.decode(sent.id) else { return nil }
        return try engine.message(sentBy: engine.ownAddress, clientMessageId: messageId)
    }

    // MARK: Helpers

    /// The group of the focused window; nil (having said which window the command needs) in any other.
    func focusedGroup(for command: String) -> GroupId? {
        guard case .group(let id)? = state.focus else {
            state.say("/\(command) works in a group's window: open one with C-n or /msg GROUP, or start one with /group new NAME CONTACT…",
                      error: true)
            return nil
        }
        return id
    }

    /// The accounts `words` name, each once, as `resolve` finds them; nil once one names none (`resolve` said so).
    func accounts(_ words: [String], _ resolve: (String) -> AccountAddress?) -> [AccountAddress]? {
        var found: [AccountAddress] = []
        for word in words {
            guard let address = resolve(word) else { return nil }
            if !found.contains(address) { found.append(address) }
        }
        return found
    }

    /// The group `/msg NAME` opens: the one group this device is in with that name (any case), unless NAME
    /// also names a contact (a contact comes first).
    func groupNamed(_ name: String) -> GroupId? {
        let matches = state.groups.filter { $0.value.active && $0.value.name.lowercased() == name.lowercased() }
        guard matches.count == 1, !isContactName(name) else { return nil }
        return matches.first?.key
    }

    /// The member of group `id` that `word` names: a member's address, nickname, or unique local part.
    func member(_ word: String, of id: GroupId) -> AccountAddress? {
        let others = state.otherMembers(of: id)
        let matches = others.filter { $0 == word }.isEmpty
            ? others.filter { state.nicknames[$0] == word || ConversationPane.shortName($0) == word }
            : [word]
        guard matches.count == 1, let address = try? AccountAddress(matches[0]) else {
            state.say(matches.isEmpty ? "\(PeerText.forTerminal(word)) is not a member of \(state.windowName(of: .group(id))) — /members lists them"
                                      : "\(PeerText.forTerminal(word)) is ambiguous: use the full address", error: true)
            return nil
        }
        return address
    }

    /// The name at the start of `words`: one word, or the words from one starting with `"` to one ending with
    /// it (the quotes taken off); and the words after it. Nil when a quote is not closed.
    static func name(in words: [String]) -> (String, [String])? {
        guard let first = words.first else { return nil }
        guard first.hasPrefix("\"") else { return (first, Array(words.dropFirst())) }
        guard let end = words.firstIndex(where: { $0.count > ($0 == first ? 1 : 0) && $0.hasSuffix("\"") }) else { return nil }
        let quoted = words[...end].joined(separator: " ")
        return (String(quoted.dropFirst().dropLast()), Array(words[(end + 1)...]))
    }

    /// Runs a group operation in a task; on success takes in the group it returns (roster, title), reloads
    /// the window of `reloading` (notices the engine wrote) and runs `then` on the UI thread.
    func groupCall(reloading id: GroupId?, _ body: @escaping @Sendable (Operations) async throws -> GroupResult,
                   then: @escaping @Sendable (ChatController, GroupResult) -> Void) {
        let operations = Operations(engine: engine), inbox = inbox
        Task {
            do {
                let result = try await body(operations)
                inbox.post { c in
                    c.take(result, show: true)
                    if let id { c.reload(.group(id)) }
                    then(c, result)
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { c in
                    if let id { c.refreshGroup(id) }
                    c.state.say(text, error: true)
                }
            }
        }
    }

    // MARK: What the window keeps of the groups

    /// Takes in a group as the store has it now: its summary, and the trust its roster entry shows (the
    /// weakest of the other members'). `show` puts it in the roster if it is not there (a window /close
    /// took away stays away otherwise).
    func take(_ result: GroupResult, show: Bool) {
        guard let id = GroupId(hex: result.id) else { return }
        let weakest = trust(ofGroup: result.members)
        state.update(group: id, GroupSummary(name: result.name, members: result.members, active: result.active), trust: weakest)
        if show { state.ensureRosterEntry(.group(id), trust: weakest) }
    }

    /// The trust a group's roster entry and title show: the weakest of the other members' (one that is not
    /// a contact counts as unverified).
    func trust(ofGroup members: [String]) -> TrustState {
        AppState.weakest(members.filter { $0 != state.account }.map { address in
            (try? AccountAddress(address)).flatMap { try? engine.contact($0) }?.trust ?? .unverified
        })
    }

    /// Reads group `id` again (a change the engine made, or a message in it).
    func refreshGroup(_ id: GroupId, show: Bool = false) {
        guard let result = try? Operations(engine: engine).showGroup(id) else { return }
        take(result, show: show)
    }

    /// Reads every group again (a contact's trust changed, and a group shows the weakest); `show` also puts
    /// those this device is in into the roster (at start).
    func refreshGroups(show: Bool = false) {
        for result in (try? Operations(engine: engine).listGroups()) ?? [] { take(result, show: show && result.active) }
    }

    /// The contacts' addresses again (the engine adds a group's members it learns of as contacts).
    func refreshContacts() {
        state.contacts = Set(((try? engine.contacts()) ?? []).map(\.address.description))
    }
}
