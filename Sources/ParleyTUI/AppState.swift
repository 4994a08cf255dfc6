import ParleyProtocol
import ParleyStore

/// Everything the screen shows, with no curses and no engine in it: the controller feeds it events and
/// the renderer draws it. Windows are the console (window 0: command output) and one per conversation;
/// everything kept per window (its history, scroll position, unread count, typing indicator) is keyed by
/// the conversation's `ConversationId`, never by a peer's address, so a group is one more kind of key.
public struct AppState: Sendable {
    public enum Connection: Equatable, Sendable { case connecting, connected, disconnected(String), offline }

    public struct RosterEntry: Equatable, Sendable {
        public let conversation: ConversationId
        /// The trust state of the account a direct conversation is with.
        public var trust: TrustState
        public var unread = 0
        public var pending = 0
        public init(_ conversation: ConversationId, trust: TrustState) {
            self.conversation = conversation
            self.trust = trust
        }
        /// How the roster, completion and the window title name it: a direct conversation's address.
        public var title: String { conversation.description }
    }

    public struct Conversation: Sendable {
        /// The loaded part of the history, oldest first (pages come from the store as the user scrolls up).
        public var messages: [ChatMessage] = []
        public var reachedStart = false
        /// Lines scrolled up from the newest (0 = following new messages).
        public var scroll = 0
        /// When the typing indicator expires (ms since 1970), if someone is typing,
        public var typingUntil: UInt64?
        /// and who is (the account that sent the indicator).
        public var typist: String?
        /// The store id of the first message that was unread when the conversation was opened: the
        /// "new messages" line is drawn above it until the conversation is left (`Navigation.swift`).
        public var unreadFrom: Int64?
        /// The store id of the message a search result opened, drawn highlighted until the conversation is left.
        public var highlight: Int64?
        /// The disappearing-message timer this device applies (seconds), shown in the title; nil: off.
        public var disappearing: UInt32?
        public init() {}
    }

    public struct ConsoleLine: Equatable, Sendable {
        public let text: String
        public let style: ThemeKey
        /// Columns continuation lines are indented by when the line wraps.
        public var indent = 0
    }

    public struct Verification: Equatable, Sendable {
        public let peer: String
        public let digits: String
        public let qrLines: [String]
        public var trust: TrustState
    }

    public let account: String

    /// How an address is shown: its contact's nickname, or the address itself.
    public func shownName(of address: String) -> String { nicknames[address] ?? address }
    public var connection: Connection = .connecting
    public var roster: [RosterEntry] = []
    /// The focused window: nil is the console, else a conversation.
    public var focus: ConversationId?
    public var conversations: [ConversationId: Conversation] = [:]
    public var console: [ConsoleLine] = []
    public var consoleScroll = 0
    public var verification: Verification?
    /// The contacts' nicknames by address, neutralised (`PeerText.forName`): shown instead of the address
    /// in the roster, the window title, message lines and notifications.
    public var nicknames: [String: String] = [:]
    /// The contacts' addresses: a group window names a member who is one by nickname or local part, and
    /// anyone else by the whole address (a stranger's "bob@elsewhere" never reads as your bob).
    public var contacts: Set<String> = []
    /// The groups this device is or was in (`AppState+Groups.swift`).
    public var groups: [GroupId: GroupSummary] = [:]
    /// A one-line notice in the status bar (cleared by the next key press).
    public var notice: ConsoleLine?
    public var completions: [String] = []
    public var timestamps = true
    public var showRoster = true
    public var themeName = "default"
    public var keymapLabel = "emacs"
    /// Rows left blank under a PNG attachment for the terminal to draw it in (0: inline images are off).
    public var imageRows = 0
    /// Selection mode and the action a selected message is waiting for (AppState+Selection.swift).
    public var selection: MessageSelection?
    public var pendingAction: PendingAction?
    /// What the input line held when an edit or a reaction took it over: given back when that is done.
    public var pendingDraft: String?
    /// Command output or search results shown over the focused window (`Overlay`); Esc closes it.
    public var overlay: Overlay?
    /// The unread count of the conversation just focused, until its messages are loaded and the
    /// "new messages" line can be placed (`settleUnreadMarker`).
    var pendingUnreadMarker: (conversation: ConversationId, count: Int)?

    public init(account: String) { self.account = account }

    // MARK: Windows

    /// The windows in switching order: console first, then the roster's conversations.
    public var windows: [ConversationId?] { [nil] + roster.map { Optional($0.conversation) } }

    public mutating func focus(_ conversation: ConversationId?) {
        if conversation != focus {
            markUnread(leaving: focus, entering: conversation)
            overlay = nil  // it was about the window being left
        }
        focus = conversation
        verification = nil
        if let index = rosterIndex(conversation) { roster[index].unread = 0 }
    }

    private func rosterIndex(_ conversation: ConversationId?) -> Int? {
        guard let conversation else { return nil }
        return roster.firstIndex { $0.conversation == conversation }
    }

    public mutating func cycleWindow(by step: Int) {
        let all = windows
        let current = all.firstIndex(where: { $0 == focus }) ?? 0
        focus(all[((current + step) % all.count + all.count) % all.count])
    }

    public mutating func ensureRosterEntry(_ conversation: ConversationId, trust: TrustState) {
        if let index = rosterIndex(conversation) {
            roster[index].trust = trust
        } else {
            roster.append(RosterEntry(conversation, trust: trust))
        }
    }

    public mutating func removeFromRoster(_ conversation: ConversationId) {
        roster.removeAll { $0.conversation == conversation }
        conversations[conversation] = nil
        if focus == conversation { focus = nil }
    }

    public func trust(of conversation: ConversationId) -> TrustState? { roster.first { $0.conversation == conversation }?.trust }

    // MARK: Messages

    /// Shows a message (new or changed) in its conversation; returns whether it counts as unread.
    @discardableResult
    public mutating func apply(message: ChatMessage) -> Bool {
        let peer = message.conversation
        if rosterIndex(peer) == nil { roster.append(RosterEntry(peer, trust: .unverified)) }
        var conversation = conversations[peer] ?? Conversation()
        if let index = conversation.messages.lastIndex(where: { $0.clientMessageId == message.clientMessageId && $0.sender == message.sender }) {
            // Updates can arrive out of order (a receipt before the send's own result): never go back.
            let kept = Self.rank(conversation.messages[index].state) > Self.rank(message.state) ? conversation.messages[index].state : message.state
            conversation.messages[index] = message
            conversation.messages[index].state = kept
        } else {
            conversation.messages.append(message)
            if conversation.scroll > 0 { conversation.scroll += 1 }  // keep the view still while scrolled up
            // A message this account wrote, here or on another device, answers what came before it: the
            // store counts nothing before it as unread (`EncryptedStore.unreadCounts`), so neither does the
            // roster — the count a restart shows is the one the window showed.
            if message.direction == .outgoing, let index = rosterIndex(peer) { roster[index].unread = 0 }
        }
        if message.direction == .incoming { (conversation.typingUntil, conversation.typist) = (nil, nil) }
        conversations[peer] = conversation
        let unread = message.direction == .incoming && focus != peer
        if let index = rosterIndex(peer) {
            if unread { roster[index].unread += 1 }
            roster[index].pending = conversation.messages.filter { $0.state == .pending }.count
            // Most recently active first, as the store orders conversations.
            let entry = roster.remove(at: index)
            roster.insert(entry, at: 0)
        }
        return unread
    }

    /// Advances the delivery state of own messages a receipt names; returns how many it found loaded.
    @discardableResult
    public mutating func apply(receiptIn peer: ConversationId, read: Bool, messageIds: [[UInt8]]) -> Int {
        guard var conversation = conversations[peer] else { return 0 }
        var found = 0
        let ids = Set(messageIds)
        let state: DeliveryState = read ? .read : .delivered
        for index in conversation.messages.indices where conversation.messages[index].direction == .outgoing
            && ids.contains(conversation.messages[index].clientMessageId) {
            found += 1
            let current = conversation.messages[index].state
            if Self.rank(state) > Self.rank(current) { conversation.messages[index].state = state }
        }
        conversations[peer] = conversation
        updatePending(peer)
        return found
    }

    /// Another device of this account read the conversation: nothing there is unread here either.
    public mutating func readElsewhere(_ conversation: ConversationId) {
        if let index = rosterIndex(conversation) { roster[index].unread = 0 }
    }

    /// Unread counts an earlier run left in the store (`EncryptedStore.unreadCounts`): the roster starts
    /// where the last session ended. The focused conversation is being read, so it shows none.
    public mutating func restoreUnread(_ counts: [ConversationId: Int]) {
        for index in roster.indices {
            let conversation = roster[index].conversation
            roster[index].unread = conversation == focus ? 0 : counts[conversation] ?? 0
        }
    }

    public mutating func updatePending(_ peer: ConversationId) {
        guard let index = rosterIndex(peer) else { return }
        roster[index].pending = conversations[peer]?.messages.filter { $0.state == .pending }.count ?? 0
    }

    /// The store's order of progress: a state shown never moves backwards.
    static func rank(_ state: DeliveryState) -> Int { state.rank }

    /// `sender` started or stopped typing in `conversation`.
    public mutating func typing(in conversation: ConversationId, from sender: String, started: Bool, now: UInt64) {
        conversations[conversation, default: Conversation()].typingUntil = started ? now + 8_000 : nil
        conversations[conversation, default: Conversation()].typist = started ? sender : nil
    }

    /// Puts an older page in front of the loaded history (scrolling up past what is loaded).
    public mutating func prepend(_ page: [ChatMessage], to peer: ConversationId, complete: Bool) {
        var conversation = conversations[peer] ?? Conversation()
        conversation.messages.insert(contentsOf: page, at: 0)
        conversation.reachedStart = complete
        conversations[peer] = conversation
    }

    public mutating func log(_ text: String, style: ThemeKey = .helpText, indent: Int = 0) {
        for line in text.split(separator: "\n", omittingEmptySubsequences: false) {
            console.append(ConsoleLine(text: String(line), style: style, indent: indent))
        }
        if console.count > 2000 { console.removeFirst(console.count - 2000) }
    }

    public mutating func say(_ text: String, error: Bool = false) {
        notice = ConsoleLine(text: text, style: error ? .statusError : .statusBar)
    }

    /// How long a notice nobody dismissed stays (a key press dismisses it at once): errors longer.
    public static let noticeLifetime: UInt64 = 10_000
    public static let errorNoticeLifetime: UInt64 = 30_000
    /// The notice being timed and when this clock first saw it.
    private var noticeClock: (line: ConsoleLine, since: UInt64)?

    /// Called about once a second with the time in milliseconds: a notice that has stood for its lifetime
    /// goes, so an old one does not linger as if it were news. Returns whether it went.
    public mutating func expireNotice(now: UInt64) -> Bool {
        guard let notice else { noticeClock = nil; return false }
        guard let clock = noticeClock, clock.line == notice else {
            noticeClock = (notice, now)
            return false
        }
        let lifetime = notice.style == .statusError ? Self.errorNoticeLifetime : Self.noticeLifetime
        guard now >= clock.since + lifetime else { return false }
        self.notice = nil
        noticeClock = nil
        return true
    }

    // MARK: Scrolling

    public mutating func scroll(by lines: Int) {
        if let focus {
            conversations[focus, default: Conversation()].scroll = max(0, (conversations[focus]?.scroll ?? 0) + lines)
        } else {
            consoleScroll = max(0, min(consoleScroll + lines, max(0, console.count - 1)))
        }
    }

    public mutating func scrollToBottom() {
        if let focus { conversations[focus]?.scroll = 0 } else { consoleScroll = 0 }
    }
}

/// A message as the conversation pane shows it (a copy of the stored record whose state can advance).
public struct ChatMessage: Equatable, Sendable {
    public let id: Int64
    public let clientMessageId: [UInt8]
    public let direction: MessageDirection
    public let conversation: ConversationId
    public let sender: String
    public let sentAt: UInt64
    public let text: String
    public var state: DeliveryState
    /// An attached file's name and size (the pointer itself stays in the store until /save).
    public var attachment: (name: String, size: UInt64)?
    /// The client message id of the message this one replies to: its first line is quoted above it.
    public var replyTo: [UInt8]?
    /// Edited by its author (the earlier texts are in the store), deleted for everyone, reacted to.
    public var edited = false
    public var deleted = false
    public var reactions: [Reaction] = []

    public static func == (a: ChatMessage, b: ChatMessage) -> Bool {
        a.id == b.id && a.clientMessageId == b.clientMessageId && a.direction == b.direction && a.conversation == b.conversation
            && a.sender == b.sender && a.sentAt == b.sentAt && a.text == b.text && a.state == b.state
            && a.attachment?.name == b.attachment?.name && a.attachment?.size == b.attachment?.size
            && a.replyTo == b.replyTo && a.edited == b.edited && a.deleted == b.deleted && a.reactions == b.reactions
    }

    public init(id: Int64, clientMessageId: [UInt8], direction: MessageDirection, conversation: ConversationId, sender: String,
                sentAt: UInt64, text: String, state: DeliveryState) {
        self.id = id
        self.clientMessageId = clientMessageId
        self.direction = direction
        self.conversation = conversation
        self.sender = sender
        self.sentAt = sentAt
        self.text = text
        self.state = state
    }

    public init(_ record: MessageRecord) {
        self.init(id: record.id, clientMessageId: record.clientMessageId, direction: record.direction, conversation: record.conversation,
                  sender: record.sender.address, sentAt: record.sentAt, text: record.text, state: record.state)
        attachment = record.attachment.map { ($0.fileName, $0.size) }
        replyTo = record.replyTo
        edited = record.edited
        deleted = record.deleted
        reactions = record.reactions
    }
}
