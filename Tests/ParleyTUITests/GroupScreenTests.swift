import Foundation
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing
@testable import ParleyTUI

/// Groups in the chat window, rendered off-screen: the roster's group entries (name, member count, unread),
/// a group window naming each sender, `/members`, completion of the group commands. Golden screens in
/// Golden/ (text) and Golden/styled/ (each cell's style in every shipped theme).
@Suite struct GroupScreenTests {
    let me = "alice@127.0.0.1:7000", bob = "bob@127.0.0.1:7000", carol = "carol@127.0.0.1:7000"
    /// A member another member added: not a contact of this device.
    let dave = "dave@10.0.0.9:7000"
    let day1: UInt64 = 1_700_000_000_000
    let climbing = GroupId.fixed(0xC1), bookClub = GroupId.fixed(0xB0)
    let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)

    func message(_ n: Int, from sender: String, in group: GroupId, direction: MessageDirection = .incoming, text: String,
                 minutes: UInt64 = 0) -> ChatMessage {
        ChatMessage(id: Int64(n), clientMessageId: [UInt8(n), 0x47], direction: direction, conversation: .group(group), sender: sender,
                    sentAt: day1 + minutes * 60_000, text: text, state: direction == .outgoing ? .delivered : .received)
    }

    /// Alice's window: Bob (verified) and Carol contacts, Dave a stranger in the group "Climbing", which
    /// has a conversation with names, a notice and a problem; a second group she left.
    func state(focus: ConversationId? = nil) -> AppState {
        var s = AppState(account: me)
        s.connection = .connected
        s.contacts = [bob, carol]
        s.nicknames = [carol: "Carol"]
        s.ensureRosterEntry(dm(bob), trust: .verified)
        s.ensureRosterEntry(dm(carol), trust: .unverified)
        s.update(group: bookClub, GroupSummary(name: "Book club", members: [me, bob], active: false), trust: .verified)
        s.ensureRosterEntry(.group(bookClub), trust: .verified)
        s.update(group: climbing, GroupSummary(name: "Climbing", members: [me, bob, carol, dave], active: true), trust: .unverified)
        s.ensureRosterEntry(.group(climbing), trust: .unverified)
        if let focus { s.focus(focus) }
        s.apply(message: message(1, from: me, in: climbing, direction: .system, text: "You created the group Climbing."))
        s.apply(message: message(2, from: bob, in: climbing, text: "Saturday at 9?", minutes: 1))
        s.apply(message: message(3, from: me, in: climbing, direction: .outgoing, text: "Yes, at the north wall", minutes: 2))
        s.apply(message: message(4, from: carol, in: climbing, text: "I'll bring the rope", minutes: 3))
        s.apply(message: message(5, from: dave, in: climbing, text: "Can I come too?", minutes: 4))
        s.apply(message: message(6, from: "", in: climbing, text: "A group message could not be read: a forged signature", minutes: 5))
        s.conversations[.group(climbing)]?.reachedStart = true
        return s
    }

    func text(_ s: AppState, width: Int = 100, height: Int = 16) -> String {
        renderer.render(s, editor: LineEditor(), width: width, height: height, now: day1).text()
    }

    @Test func aGroupWindowNamesEachSender() throws {
        let screen = text(state(focus: .group(climbing)))
        try golden("group-window-100x16", screen)
        // The title: the group's name, its member count, the weakest trust among the others.
        #expect(screen.contains(" Climbing (4 members) ? unverified"))
        // A contact by local part, a nickname, own messages as "me", a stranger by the whole address.
        #expect(screen.contains("bob: Saturday at 9?") && screen.contains("Carol: I'll bring the rope"))
        #expect(screen.contains("me: Yes, at the north wall ✓✓"))
        #expect(screen.contains("dave@10.0.0.9:7000: Can I come too?"))
        #expect(screen.contains("*** You created the group Climbing.") && screen.contains("*** A group message could not be read"))
        #expect(!screen.contains(": A group message"))
        // The group's id is nobody's name: it is never shown.
        #expect(!screen.contains("group:") && !screen.contains(climbing.hex.prefix(8)))
        #expect(screen.split(separator: "\n").last == "[Climbing]")
    }

    @Test func theRosterShowsGroupsWithMemberCountsAndUnread() throws {
        let screen = text(state(focus: dm(bob)))
        try golden("group-roster-100x16", screen)
        let rows = screen.split(separator: "\n").map(String.init)
        let climbingRow = try #require(rows.first { $0.contains("Climbing") })
        #expect(climbingRow.hasPrefix(" # Climbing") && climbingRow.contains("[4] (3)"), "\(climbingRow)")
        let left = try #require(rows.first { $0.contains("Book club") })
        #expect(left.contains("[left]"), "\(left)")
        // Opening it clears the unread count.
        var s = state(focus: dm(bob))
        s.focus(.group(climbing))
        #expect(s.roster.first { $0.conversation == .group(climbing) }?.unread == 0)
    }

    @Test func aGroupLeftSaysSoInItsTitle() {
        var s = state()
        s.focus(.group(bookClub))
        #expect(text(s).contains(" Book club (no longer a member) ✔ verified"))
    }

    @Test func membersOverlayShowsEachAccountsTrustAndDevices() throws {
        var s = state(focus: .group(climbing))
        let members = [
            GroupMemberResult(address: me, name: "", isSelf: true, isContact: false, trustLevel: "", devices: 2),
            GroupMemberResult(address: bob, name: "", isSelf: false, isContact: true, trustLevel: TrustLevel.name(.verified), devices: 1),
            GroupMemberResult(address: carol, name: "Carol", isSelf: false, isContact: true, trustLevel: TrustLevel.name(.changed), devices: 3),
            GroupMemberResult(address: dave, name: "", isSelf: false, isContact: false, trustLevel: "", devices: 1),
        ]
        s.overlay = Overlay(title: "Members of Climbing: 4 accounts, 7 devices", lines: members.map(ChatController.memberLine))
        let screen = text(s)
        try golden("group-members-100x16", screen)
        #expect(screen.contains("· you           2 devices  alice@127.0.0.1:7000"))
        #expect(screen.contains("✔ verified      1 device   bob@127.0.0.1:7000"))
        #expect(screen.contains("! KEY CHANGED   3 devices  Carol (carol@127.0.0.1:7000)"))
        #expect(screen.contains("? not a contact 1 device   dave@10.0.0.9:7000"))
    }

    /// The group window and the roster with groups, each cell's style resolved in every shipped theme.
    @Test func styledGroupScreensInEveryTheme() throws {
        let library = ThemeLibrary(directories: [ThemeLibrary.shippedDirectory])
        for name in library.names() {
            let theme = try library.load(name)
            for (screen, s) in [("group-window", state(focus: .group(climbing))), ("group-roster", state(focus: dm(bob)))] {
                let canvas = renderer.render(s, editor: LineEditor(), width: 80, height: 14, now: day1)
                try golden("styled/\(screen)-\(name)", NavigationTests.styled(canvas, theme))
            }
        }
    }

    /// A group's name and a stranger's address are the members' to choose: nothing in them reaches the
    /// terminal as a control sequence.
    @Test func aGroupNameIsNeutralised() {
        var s = state(focus: .group(climbing))
        s.update(group: climbing, GroupSummary(name: "Evil\u{1B}]0;owned\u{07}\u{202E} group\n2", members: [me, bob], active: true), trust: .verified)
        let screen = text(s)
        #expect(!screen.unicodeScalars.contains { $0 != "\n" && PeerText.isDangerous($0) }, "\(screen.debugDescription)")
        #expect(screen.contains("Evil]0;owned group 2 (2 members)"), "\(screen)")
    }

    @Test func memberNamesAreShortOnlyForContacts() {
        let s = state()
        #expect(s.memberName(bob) == "bob")
        #expect(s.memberName(carol) == "Carol")
        #expect(s.memberName(dave) == dave)
        #expect(s.otherMembers(of: climbing) == [bob, carol, dave])
        #expect(s.windowName(of: .group(climbing)) == "Climbing" && s.promptName(of: .group(climbing)) == "Climbing")
        // Two contacts with one local part: neither goes by it.
        var twoBobs = s
        twoBobs.contacts.insert("bob@10.0.0.9:7000")
        #expect(twoBobs.memberName(bob) == bob && twoBobs.memberName("bob@10.0.0.9:7000") == "bob@10.0.0.9:7000")
        #expect(twoBobs.memberName(carol) == "Carol")
        var unnamed = s
        unnamed.update(group: climbing, GroupSummary(name: "", members: [me], active: true), trust: .verified)
        #expect(unnamed.windowName(of: .group(climbing)) == "unnamed group")
    }

    @Test func aGroupShowsTheWeakestTrustOfItsMembers() {
        #expect(AppState.weakest([.verified, .verified]) == .verified)
        #expect(AppState.weakest([.verified, .unverified]) == .unverified)
        #expect(AppState.weakest([.unverified, .changed, .verified]) == .changed)
        #expect(AppState.weakest([.changed, .untrusted]) == .untrusted)
        #expect(AppState.weakest([]) == .verified)
    }

    // MARK: Commands

    @Test func groupCommandsCompleteContactsAndMembers() {
        let contacts = [bob, carol], members = [bob, dave]
        func candidates(_ line: String) -> [String] {
            CommandTable.candidates(for: line, contacts: contacts, themes: [], members: members)
        }
        #expect(candidates("/group ") == ["new"])
        #expect(candidates("/group new Climbing ") == contacts)
        #expect(candidates("/group new Climbing bob ") == contacts)
        #expect(candidates("/invite ") == contacts && candidates("/invite bob carol ") == contacts)
        #expect(candidates("/kick ") == members && candidates("/kick bob ") == members)
        #expect(candidates("/leave ") == [] && candidates("/members ") == [] && candidates("/rename ") == [])
        for name in ["group", "invite", "kick", "leave", "rename", "members"] { #expect(CommandTable.find(name) != nil, "/\(name)") }
    }

    @Test func aGroupNameMayBeQuoted() {
        #expect(ChatController.name(in: ["Climbing", "bob", "carol"])! == ("Climbing", ["bob", "carol"]))
        #expect(ChatController.name(in: ["\"Climbing", "club\"", "bob"])! == ("Climbing club", ["bob"]))
        #expect(ChatController.name(in: ["\"Solo\"", "bob"])! == ("Solo", ["bob"]))
        #expect(ChatController.name(in: ["\"Open", "bob"]) == nil)
        #expect(ChatController.name(in: []) == nil)
    }

    func golden(_ name: String, _ text: String) throws {
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Golden/\(name).txt")
        if ProcessInfo.processInfo.environment["PARLEY_UPDATE_GOLDEN"] == "1" {
            try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
            try (text + "\n").write(to: url, atomically: true, encoding: .utf8)
        }
        let expected = try String(contentsOf: url, encoding: .utf8)
        #expect(text + "\n" == expected, "screen differs from Golden/\(name).txt")
    }
}

extension GroupId {
    /// A group id of 32 copies of `byte` (tests).
    static func fixed(_ byte: UInt8) -> GroupId { try! GroupId(Array(repeating: byte, count: GroupId.length)) }
}
