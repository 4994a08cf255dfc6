import ParleyProtocol
import ParleyStore
import Testing
@testable import ParleyTUI

func chat(_ n: Int, from sender: String, in peer: String, direction: MessageDirection = .incoming, at: UInt64 = 1_700_000_000_000,
          text: String? = nil, state: DeliveryState? = nil) -> ChatMessage {
    ChatMessage(id: Int64(n), clientMessageId: [UInt8(n & 0xFF), UInt8(n >> 8)], direction: direction, conversation: dm(peer), sender: sender,
                sentAt: at, text: text ?? "message \(n)", state: state ?? (direction == .outgoing ? .sent : .received))
}

/// The direct conversation with `address` (what the chat window keys a window by).
func dm(_ address: String) -> ConversationId { .direct(try! AccountAddress(address)) }

@Suite struct AppStateTests {
    let bob = "bob@127.0.0.1:7000", carol = "carol@127.0.0.1:7000", me = "alice@127.0.0.1:7000"

    @Test func unreadCountsUntilFocused() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.apply(message: chat(1, from: bob, in: bob))
        s.apply(message: chat(2, from: bob, in: bob))
        #expect(s.roster.first?.unread == 2)
        s.focus(dm(bob))
        #expect(s.roster.first?.unread == 0)
        #expect(s.apply(message: chat(3, from: bob, in: bob)) == false)
        #expect(s.roster.first?.unread == 0)
    }

    @Test func newActivityMovesAConversationToTheTop() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.ensureRosterEntry(dm(carol), trust: .verified)
        s.apply(message: chat(1, from: carol, in: carol))
        #expect(s.roster.map(\.title) == [carol, bob])
        s.apply(message: chat(2, from: bob, in: bob))
        #expect(s.roster.map(\.title) == [bob, carol])
    }

    @Test func receiptsAdvanceButNeverGoBack() {
        var s = AppState(account: me)
        let mine = chat(5, from: me, in: bob, direction: .outgoing)
        s.apply(message: mine)
        s.apply(receiptIn: dm(bob), read: true, messageIds: [mine.clientMessageId])
        #expect(s.conversations[dm(bob)]?.messages.last?.state == .read)
        s.apply(receiptIn: dm(bob), read: false, messageIds: [mine.clientMessageId])
        #expect(s.conversations[dm(bob)]?.messages.last?.state == .read)
    }

    @Test func aStateUpdateReplacesTheMessage() {
        var s = AppState(account: me)
        s.apply(message: chat(5, from: me, in: bob, direction: .outgoing, state: .pending))
        #expect(s.roster.first?.pending == 1)
        s.apply(message: chat(5, from: me, in: bob, direction: .outgoing, state: .sent))
        #expect(s.conversations[dm(bob)]?.messages.count == 1)
        #expect(s.roster.first?.pending == 0)
    }

    @Test func windowsCycleThroughConsoleAndConversations() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.ensureRosterEntry(dm(carol), trust: .unverified)
        #expect(s.focus == nil)
        s.cycleWindow(by: 1)
        #expect(s.focus == dm(bob))
        s.cycleWindow(by: 1)
        #expect(s.focus == dm(carol))
        s.cycleWindow(by: 1)
        #expect(s.focus == nil)
        s.cycleWindow(by: -1)
        #expect(s.focus == dm(carol))
    }

    @Test func scrollingStaysStillWhenMessagesArrive() {
        var s = AppState(account: me)
        s.focus(dm(bob))
        s.apply(message: chat(1, from: bob, in: bob))
        s.scroll(by: 10)
        s.apply(message: chat(2, from: bob, in: bob))
        #expect(s.conversations[dm(bob)]?.scroll == 11)
        s.scroll(by: -100)
        #expect(s.conversations[dm(bob)]?.scroll == 0)
    }

    @Test func typingExpires() {
        var s = AppState(account: me)
        s.typing(in: dm(bob), from: bob, started: true, now: 1000)
        #expect(s.conversations[dm(bob)]?.typingUntil == 9000)
        s.apply(message: chat(1, from: bob, in: bob))
        #expect(s.conversations[dm(bob)]?.typingUntil == nil)
    }

    /// A window is keyed by its conversation, and what it shows about typing names who typed (the peer
    /// of a direct conversation today, one member of a group next).
    @Test func typingNamesTheTypistOfTheConversation() {
        var s = AppState(account: me)
        s.typing(in: dm(bob), from: carol, started: true, now: 1000)
        #expect(s.conversations[dm(bob)]?.typist == carol)
        #expect(s.conversations[dm(carol)] == nil)
        s.typing(in: dm(bob), from: carol, started: false, now: 2000)
        #expect(s.conversations[dm(bob)]?.typist == nil && s.conversations[dm(bob)]?.typingUntil == nil)
    }
}

@Suite struct RestoredUnreadTests {
    let bob = "bob@127.0.0.1:7000", carol = "carol@127.0.0.1:7000", me = "alice@127.0.0.1:7000"

    @Test func countsFromTheStoreShowUntilFocusedAndKeepCounting() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.ensureRosterEntry(dm(carol), trust: .verified)
        s.restoreUnread([dm(bob): 3, dm("stranger@127.0.0.1:7000"): 9])
        #expect(s.roster.map(\.unread) == [3, 0])
        // A new message adds to the restored count; focusing clears it.
        s.apply(message: chat(1, from: bob, in: bob))
        #expect(s.roster.first { $0.title == bob }?.unread == 4)
        s.focus(dm(bob))
        #expect(s.roster.first { $0.title == bob }?.unread == 0)
    }

    /// What the store will count at the next start (nothing before a message this account wrote) is what
    /// the roster shows now, also when another device of the account wrote it.
    @Test func aMessageWrittenOnAnotherDeviceAnswersWhatCameBefore() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.ensureRosterEntry(dm(carol), trust: .verified)
        s.apply(message: chat(1, from: bob, in: bob))
        s.apply(message: chat(2, from: bob, in: bob))
        s.apply(message: chat(3, from: carol, in: carol))
        s.apply(message: chat(4, from: me, in: bob, direction: .outgoing))
        #expect(s.roster.first { $0.title == bob }?.unread == 0)
        #expect(s.roster.first { $0.title == carol }?.unread == 1, "other conversations keep their counts")
        // A later state change of that message (a receipt) is not a new message: what came after still counts.
        s.apply(message: chat(5, from: bob, in: bob))
        s.apply(message: chat(4, from: me, in: bob, direction: .outgoing, state: .delivered))
        #expect(s.roster.first { $0.title == bob }?.unread == 1)
    }

    @Test func theFocusedConversationShowsNone() {
        var s = AppState(account: me)
        s.ensureRosterEntry(dm(bob), trust: .unverified)
        s.focus(dm(bob))
        s.restoreUnread([dm(bob): 5])
        #expect(s.roster.first?.unread == 0)
    }

    @Test func oldNoticesExpire() {
        var s = AppState(account: me)
        func expire(_ now: UInt64) -> Bool { s.expireNotice(now: now) }
        #expect(!expire(1_000))
        s.say("sent notes.txt")
        #expect(!expire(1_000), "the clock starts when the notice is first seen")
        #expect(!expire(1_000 + AppState.noticeLifetime - 1))
        #expect(expire(1_000 + AppState.noticeLifetime))
        #expect(s.notice == nil)
        s.say("not sent: the relay refused", error: true)
        #expect(!expire(50_000))
        #expect(!expire(50_000 + AppState.noticeLifetime), "an error stays longer")
        s.say("another error", error: true)
        #expect(!expire(50_000 + AppState.errorNoticeLifetime), "a new notice starts its own clock")
        #expect(s.notice?.text == "another error")
        #expect(expire(50_000 + AppState.errorNoticeLifetime * 2))
    }

    @Test func aMessageKeptAsFailedSaysHowToRetryIt() {
        let line = ChatController.sendFailure(StoreError.io("disk"), keptAsFailed: true)
        #expect(line.hasPrefix("not sent: ") && line.hasSuffix("kept as ✗ failed: /retry sends it again, /delete removes it"))
        #expect(!ChatController.sendFailure(StoreError.io("disk")).contains("kept"))
    }
}
