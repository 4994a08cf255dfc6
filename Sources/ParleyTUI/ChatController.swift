import CHeap
import CNcurses
import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// The UI thread's owner of app state: turns keys, commands and engine events into state changes and
/// redraws. Engine calls happen in tasks whose results come back through the inbox.
final class ChatController {
    let engine: Engine
    let inbox: UIInbox
    var state: AppState
    var editor: LineEditor
    let renderer = Renderer()
    var terminal: Terminal?
    var theme = Theme.builtIn
    var config: Config
    let themes: ThemeLibrary
    var quitting = false
    /// Decrypted attachments given to the opener; removed when the window closes.
    let openedFiles = OpenedFiles()
    /// Images drawn by the terminal (kitty graphics) in the rows the renderer leaves for them.
    var imageDrawer = InlineImageDrawer(insideTmux: ProcessInfo.processInfo.environment["TMUX"].map { !$0.isEmpty } ?? false)
    private var dirty = true
    private var lastTypingSent: [ConversationId: UInt64] = [:]
    private var receipted: Set<[UInt8]> = []
    private let outgoing: AsyncStream<(String, ConversationId)>.Continuation

    init(engine: Engine, account: String, options: ChatOptions, inbox: UIInbox) {
        self.engine = engine
        self.inbox = inbox
        outgoing = Self.startSender(engine: engine, inbox: inbox)
        config = options.config
        themes = options.themes
        state = AppState(account: account)
        editor = LineEditor(keymap: config.keymap, overrides: config.bindings)
        state.timestamps = config.timestamps
        state.showRoster = config.showRoster
        state.keymapLabel = config.keymap.rawValue
        state.imageRows = Self.imageRows(config)
        if !options.connect { state.connection = .offline }
        loadRoster()
        for line in options.welcome { state.log(line) }
        if let problem = options.configProblem { state.log(problem, style: .statusError) }
        setTheme(config.theme, quietly: true)
        if let focus = options.focus { open(focus) }
        if let tip = options.tip { state.say(tip) }
    }

    /// Lines one mouse-wheel notch scrolls.
    static let wheelLines = 3

    static func now() -> UInt64 { UInt64(Date().timeIntervalSince1970 * 1000) }

    // MARK: Loop

    func run() {
        let terminal = Terminal()
        self.terminal = terminal
        terminal.apply(theme)
        var lastTick = Self.now()
        while !quitting {
            if dirty { redraw() }
            var fds = [pollfd(fd: STDIN_FILENO, events: Int16(POLLIN), revents: 0), pollfd(fd: inbox.readEnd, events: Int16(POLLIN), revents: 0)]
            _ = poll(&fds, 2, 250)
            for job in inbox.drain() {
                job(self)
                dirty = true
            }
            for key in terminal.readKeys() {
                handle(key)
                dirty = true
                if quitting { break }
            }
            let now = Self.now()
            if now - lastTick >= 1000 {
                lastTick = now
                // Give the heap that page loads and renders freed back to the system (glibc keeps it
                // otherwise): the window's memory stays near what it shows, not its peak.
                parley_release_free_memory()
                if state.expireNotice(now: now) { dirty = true }
                if let focus = state.focus, let until = state.conversations[focus]?.typingUntil, until <= now {
                    state.conversations[focus]?.typingUntil = nil
                    state.conversations[focus]?.typist = nil
                    dirty = true
                }
            }
        }
        terminal.end()
        openedFiles.removeAll()
        outgoing.finish()
    }

    func redraw() {
        guard let terminal else { return }
        loadOlderIfNeeded(width: terminal.width, height: terminal.height)
        let canvas = renderer.render(state, editor: editor, width: terminal.width, height: terminal.height, now: Self.now())
        terminal.draw(canvas)
        drawImages(canvas.images)
        dirty = false
    }

    func quit() { quitting = true }

    // MARK: Keys

    func handle(_ key: Key) {
        if key == .resize {
            terminal?.updateSize()
            terminal?.forceRepaint()
            imageDrawer.forgetDrawn()
            return
        }
        state.notice = nil
        if state.verification != nil, key == .escape || key == .ctrl("g") || (key == .char("q") && editor.isEmpty) {
            state.verification = nil
            return
        }
        if key == .ctrl("c") { quit(); return }
        if handleOverlayKey(key) { return }
        if key == .wheelUp || key == .wheelDown {
            // A notch moves a few lines, as in most terminal programs: a page per notch would fly past
            // on a touchpad, which sends many notches for one gesture.
            state.scroll(by: key == .wheelUp ? Self.wheelLines : -Self.wheelLines)
            return
        }
        if handleSelectionKey(key) { return }
        if case .char = key { state.completions = [] }
        let wasEmpty = editor.isEmpty
        switch editor.handle(key) {
        case .submit(let line):
            state.completions = []
            submit(line)
        case .window(let action): perform(action)
        case .complete: complete()
        case .edited:
            if wasEmpty != editor.isEmpty || !editor.isEmpty { noteTyping() }
        case .ignored: break
        }
    }

    private func perform(_ action: Action) {
        let page = max(1, (terminal?.height ?? 24) - 5)
        switch action {
        case .nextWindow: state.cycleWindow(by: 1); afterFocus()
        case .prevWindow: state.cycleWindow(by: -1); afterFocus()
        case .scrollUp: state.scroll(by: page)
        case .scrollDown: state.scroll(by: -page)
        case .scrollTop: state.scroll(by: Int.max / 4)
        case .scrollBottom: state.scrollToBottom()
        case .redraw: terminal?.forceRepaint(); imageDrawer.forgetDrawn()
        case .quit: quit()
        case .closeOverlay: state.verification = nil; state.overlay = nil; state.completions = []
        case .jumpToUnread: jumpToUnread()
        case .selectMessages:
            if !state.enterSelection() { state.say(state.focus == nil ? "open a conversation first" : "no message to select", error: true) }
        default: break
        }
    }

    private func complete() {
        let (word, _) = editor.wordBeforeCursor
        let line = String(editor.text.prefix(editor.cursor))
        let contacts = state.roster.filter { $0.conversation.peer != nil }.map(\.title)
        let members = state.focus?.group.map { state.otherMembers(of: $0) } ?? []
        var candidates = CommandTable.candidates(for: line, contacts: contacts, themes: themes.names(), members: members)
        if !line.hasPrefix("/") {
            // In plain text only contact names complete (to mention someone); nothing else is guessed.
            candidates = contacts.map { ConversationPane.shortName($0) }
        }
        state.completions = editor.complete(with: candidates)
        if state.completions.isEmpty, candidates.filter({ $0.hasPrefix(word) }).isEmpty { terminal?.bell() }
    }

    private func noteTyping() {
        guard let conversation = state.focus, !editor.string.hasPrefix("/"),
              conversation.group != nil || state.trust(of: conversation)?.allowsSending == true else { return }
        let now = Self.now()
        guard now - (lastTypingSent[conversation] ?? 0) > 10_000 else { return }
        lastTypingSent[conversation] = now
        let engine = engine
        Task {
            switch conversation {
            case .direct(let peer): try? await engine.sendTyping(to: peer, started: true)
            case .group(let id): try? await engine.sendTyping(toGroup: id, started: true)
            }
        }
    }

    // MARK: Sending

    func submit(_ line: String) {
        let trimmed = line.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { return }
        if trimmed.hasPrefix("/") && !trimmed.hasPrefix("//") {
            runCommand(trimmed)
            return
        }
        let text = trimmed.hasPrefix("//") ? String(trimmed.dropFirst()) : line
        guard let peer = state.focus else {
            state.say("open a conversation first: /msg CONTACT (Tab completes names)", error: true)
            return
        }
        send(text, to: peer)
    }

    func send(_ text: String, to conversation: ConversationId) {
        if let group = conversation.group, state.groups[group]?.active == false {
            state.say("you are no longer a member of \(state.windowName(of: conversation)): nothing can be sent to it", error: true)
            return
        }
        lastTypingSent[conversation] = 0
        state.scrollToBottom()
        outgoing.yield((text, conversation))
    }

    /// Sends one message at a time, in the order they were typed (concurrent tasks could reorder them).
    static func startSender(engine: Engine, inbox: UIInbox) -> AsyncStream<(String, ConversationId)>.Continuation {
        let (stream, continuation) = AsyncStream.makeStream(of: (String, ConversationId).self)
        Task {
            for await (text, peer) in stream {
                do {
                    let record: MessageRecord
                    switch peer {
                    case .direct(let account):
                        try Operations(engine: engine).checkPolicyAllowsSending(to: account)
                        record = try await engine.send(text: text, to: account)
                    case .group(let id):
                        guard let sent = try await ChatController.sendToGroup(id, text: text, engine: engine) else {
                            inbox.post { $0.reload(peer) }
                            continue
                        }
                        record = sent
                    }
                    inbox.post { $0.showMessage(ChatMessage(record)) }
                } catch {
                    // A message that could not even be encrypted is kept in the conversation, marked failed.
                    let kept = (try? await engine.newestFailed(in: peer))?.text == text
                    let description = ChatController.sendFailure(error, keptAsFailed: kept)
                    inbox.post { controller in
                        controller.state.say(description, error: true)
                        controller.reload(peer)
                    }
                }
            }
        }
        return continuation
    }

    /// The status line for a send that did not reach the relay: a message kept in the outbox for a retry
    /// says so; one refused (too long, untrusted contact, refused for good) says it was not sent; one kept
    /// in the conversation as failed (`keptAsFailed`: it could not be encrypted) says how to retry it.
    static func sendFailure(_ error: any Error, keptAsFailed: Bool = false) -> String {
        // The status line is one row: the window's own way to verify, first.
        if case .unverified? = error as? PolicyError {
            return "not sent: policy allows only verified contacts; /verify first"
        }
        if keptAsFailed { return "not sent: " + describe(error) + " — kept as ✗ failed: /retry sends it again, /delete removes it" }
        guard let error = error as? ClientError, error.isWorthRetrying else {
            let hint = (error as? ClientError)?.isPermanentRefusal == true ? " — /retry sends it again, /delete removes it" : ""
            return "not sent: " + describe(error) + hint
        }
        if case .relayOutOfSpace = error { return error.description }
        return error.description + "; the message waits in the outbox"
    }

    static func describe(_ error: any Error) -> String {
        if let error = error as? ClientError { return error.description }
        if let error = error as? StoreError { return error.description }
        return String(describing: error)
    }

    // MARK: Engine events

    func handle(_ event: EngineEvent) {
        switch event {
        case .message(let record):
            showMessage(ChatMessage(record))
        case .messageChanged(let record, _):
            showChanged(record)
        case .receipt(let conversation, _, let read, let ids):
            // A receipt for a message not loaded yet (its send still returning): the store has it.
            if state.apply(receiptIn: conversation, read: read, messageIds: ids) < ids.count, state.conversations[conversation] != nil {
                reload(conversation)
            }
        case .typing(let conversation, let from, let started):
            state.typing(in: conversation, from: from.description, started: started, now: Self.now())
        case .undecryptable(let from, _):
            if let from { reload(.direct(from)) }
            state.say("a message\(from.map { " from \($0)" } ?? "") could not be decrypted", error: true)
        case .unverifiedSender(let address):
            state.say("a message naming \(address) is held unverified until its relay can be reached", error: true)
        case .discarded(let count, let total):
            state.say("\(count) envelope\(count == 1 ? "" : "s") that no contact sent discarded unread (\(total) in all)", error: true)
        case .identityChanged(let address, let trust):
            state.ensureRosterEntry(.direct(address), trust: trust)
            reload(.direct(address))
            state.say("the identity key of \(address) changed — /verify \(address)", error: true)
            terminal?.bell()
        case .devicesChanged(let address, _, _, let suspicious):
            reload(.direct(address))
            if suspicious { state.say("\(address) added several devices at once — verify the safety number", error: true) }
        case .readElsewhere(let conversation, _):
            state.readElsewhere(conversation)
        case .receiveFailed(let problem):
            state.say(problem, error: true)
        case .refusedByPolicy(let address, let reason):
            state.say("a message from \(address) was dropped unread: \(reason)", error: true)
        case .disappearingTimer(let conversation, _, _):
            // The notice arrives as a message of its own; the title shows the timer this device applies.
            state.conversations[conversation]?.disappearing = try? engine.effectiveTimer(of: conversation)
        case .groupChanged(let id, _):
            // The notice arrived as a message of its own; the title and roster entry follow the record (a
            // group just joined shows in the roster at once), and members the engine learnt of are contacts.
            refreshContacts()
            refreshGroup(id, show: true)
            if state.conversations[.group(id)] != nil { reload(.group(id)) }
        case .expired(let conversation, let ids):
            openedFiles.erase(messages: ids)
            if state.conversations[conversation] != nil { reload(conversation) }
        case .connection(let connection):
            state.connection = switch connection {
            case .connected: .connected
            case .connecting: .connecting
            case .disconnected(let why): .disconnected(why)
            }
        }
    }

    func showMessage(_ message: ChatMessage) {
        if state.conversations[message.conversation] == nil { load(message.conversation) }
        let unread = state.apply(message: message)
        // A group's name and members as they are now (a message can follow a rename or a Welcome); the
        // engine makes a member it did not know a contact when it checks their leaf.
        if let group = message.conversation.group {
            if !message.sender.isEmpty, message.sender != state.account, !state.contacts.contains(message.sender) { refreshContacts() }
            refreshGroup(group)
        }
        if message.direction == .incoming {
            if unread || state.conversations[message.conversation]?.scroll ?? 0 > 0 {
                announce(message.conversation)
                notifyDesktop(message)
            }
            if state.focus == message.conversation { sendReadReceipts(message.conversation) }
        }
    }

    /// The direct conversation with the account an engine event names (nil for text that names none).
    static func direct(_ address: String) -> ConversationId? { (try? AccountAddress(address)).map(ConversationId.direct) }

    /// Bell and desktop notification for a new message, as config.toml and /notify choose.
    private func announce(_ conversation: ConversationId) {
        let (bell, escape) = Announcement.decide(config, peer: conversation.description, shown: state.nicknames[conversation.description])
        if bell { terminal?.bell() }
        if let escape { TerminalRestore.write(escape) }
    }

    func sendReadReceipts(_ peer: ConversationId) {
        guard let messages = state.conversations[peer]?.messages else { return }
        let ids = messages.suffix(50).filter { $0.direction == .incoming && !receipted.contains($0.clientMessageId) }.map(\.clientMessageId)
        guard !ids.isEmpty else { return }
        receipted.formUnion(ids)
        let engine = engine, sendReceipts = state.trust(of: peer)?.allowsSending == true
        // Marks them read in the store, tells this account's other devices, and the peer (if trusted).
        Task { try? await engine.markRead(peer, sendReadReceipts: sendReceipts) }
    }

    // MARK: History

    /// The contacts' nicknames by address, neutralised again on the way out of the store.
    static func nicknames(_ contacts: [Contact]) -> [String: String] {
        Dictionary(contacts.compactMap { contact in
            let name = PeerText.forName(contact.nickname)
            return name.isEmpty ? nil : (contact.address.description, name)
        }, uniquingKeysWith: { a, _ in a })
    }

    func loadRoster() {
        let contacts = (try? engine.contacts()) ?? []
        state.nicknames = Self.nicknames(contacts)
        state.contacts = Set(contacts.map(\.address.description))
        refreshGroups()
        let trustByConversation = Dictionary(contacts.map { contact in (ConversationId.direct(contact.address), contact.trust) },
                                             uniquingKeysWith: { a, _ in a })
        let active = (try? engine.conversations()) ?? []
        // Groups this device is in come after the conversations with messages (a group left shows while it has some).
        let groups = state.groups.filter(\.value.active).keys.sorted { $0.hex < $1.hex }.map(ConversationId.group)
        var seen = Set<ConversationId>()
        for conversation in active + contacts.map({ ConversationId.direct($0.address) }) + groups where seen.insert(conversation).inserted {
            let shown: TrustState? = switch conversation {
            case .direct: trustByConversation[conversation]
            case .group(let id): state.groups[id].map { self.trust(ofGroup: $0.members) }
            }
            guard let shown else { continue }
            state.ensureRosterEntry(conversation, trust: shown)
        }
        state.restoreUnread((try? engine.unreadCounts()) ?? [:])
        for conversation in state.roster.map(\.conversation) {
            let key = conversation.description
            if config.contactNotify[key] == nil, let saved = try? engine.setting("tui.notify." + key), let mode = NotifyMode(rawValue: saved) {
                config.contactNotify[key] = mode
            }
            if case let pending = History.page(of: conversation, from: engine, limit: 20).filter({ $0.state == .pending }).count,
               let index = state.roster.firstIndex(where: { $0.conversation == conversation }) {
                state.roster[index].pending = pending
            }
        }
    }

    func load(_ peer: ConversationId) {
        History.open(peer, from: engine, into: &state)
        state.conversations[peer]?.disappearing = try? engine.effectiveTimer(of: peer)
    }

    /// Re-reads the loaded part of a conversation (after notices the engine wrote, or state changes).
    func reload(_ peer: ConversationId) {
        let scroll = state.conversations[peer]?.scroll ?? 0
        let count = max(History.pageSize, state.conversations[peer]?.messages.count ?? 0)
        let page = History.page(of: peer, from: engine, limit: count)
        var conversation = state.conversations[peer] ?? AppState.Conversation()
        conversation.messages = page
        conversation.reachedStart = page.count < count
        conversation.scroll = scroll
        state.conversations[peer] = conversation
        if let contact = contact(peer) {
            let changed = state.trust(of: peer) != contact.trust
            state.ensureRosterEntry(peer, trust: contact.trust)
            if changed, !state.groups.isEmpty { refreshGroups() }  // a group shows the weakest trust of its members
        }
        state.updatePending(peer)
    }

    /// Scrolled up near the top of what is loaded: fetch the page before it.
    private func loadOlderIfNeeded(width: Int, height: Int) {
        History.loadOlderIfNeeded(&state, from: engine, renderer: renderer, width: width, height: height)
    }

    /// The contact a direct conversation is with.
    func contact(_ conversation: ConversationId) -> Contact? {
        conversation.peer.flatMap { try? engine.contact($0) }
    }

    func open(_ peer: ConversationId) {
        if state.trust(of: peer) == nil, let contact = contact(peer) { state.ensureRosterEntry(peer, trust: contact.trust) }
        if state.conversations[peer] == nil { load(peer) }
        state.focus(peer)
        afterFocus()
    }

    func afterFocus() {
        if let peer = state.focus {
            if state.conversations[peer] == nil { load(peer) }
            sendReadReceipts(peer)
        }
    }

    func setTheme(_ name: String, quietly: Bool = false) {
        do {
            theme = name == "builtin" ? Theme.builtIn : try themes.load(name)
            state.themeName = theme.name
            terminal?.apply(theme)
            if !quietly { state.say("theme: \(theme.name)") }
        } catch {
            state.log("theme \(name): \(error)", style: .statusError)
            if !quietly { state.say("\(error)", error: true) }
        }
    }
}
