import ArgumentParser
import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

struct AddContactCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "add-contact",
        abstract: "Look up an account on its relay and add it as a contact.",
        discussion: "The contact's account key is trusted on first use until you verify its safety number.")

    @Argument(help: ArgumentHelp("The contact's address.", valueName: "NAME@HOST:PORT"), transform: accountAddress)
    var address: AccountAddress

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let contact = try await client.openOperations().addContact(address)
        if json { try Output.result(contact); return }
        Output.line("added \(contact.address) (\(contact.devices) device\(contact.devices == 1 ? "" : "s"), trust: \(contact.trust))")
    }
}

struct SendCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "send",
        abstract: "Send a message to a contact.",
        discussion: """
            The message is encrypted for every device of the contact and every other device of this account, \
            saved with its envelopes in one transaction, then delivered. If the relay cannot be reached it \
            stays in the outbox (exit status 3) and is delivered by the next command that reaches the relay. \
            A text must fit in one envelope (about 96,000 bytes); a longer one is refused (exit status 1) \
            before anything is saved: send it as a file.
            """)

    @Argument(help: ArgumentHelp("The contact: an address, a nickname, or the name before the @ of one contact's address (with --group, the first word of the text).", valueName: "CONTACT"))
    var contactOrWord: String?
    @Argument(help: ArgumentHelp("The message text (an attachment's caption); '-' reads it from standard input (without its final line end).", valueName: "TEXT"))
    var rest: [String] = []
    @Option(help: ArgumentHelp("Send to this group (its id, as `parley group list` shows it) instead of a contact; with --attachment, the file is uploaded once for every member.", valueName: "GROUP"))
    var group: String?
    @Option(help: ArgumentHelp("Send this file (up to 100 MiB), with TEXT as its caption.", valueName: "FILE")) var attachment: String?
    @Option(name: .customLong("reply-to"), help: ArgumentHelp("The id of the message this one replies to.", valueName: "HEX"))
    var replyTo: String?
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    /// The words of the text: with --group every positional argument, else those after CONTACT.
    var text: [String] { group == nil ? rest : (contactOrWord.map { [$0] } ?? []) + rest }

    func validate() throws {
        guard group != nil || contactOrWord != nil else { throw ValidationError("Missing expected argument '<contact>'") }
        guard !text.isEmpty || attachment != nil else { throw ValidationError("no message text given") }
        if let replyTo { _ = try messageId(replyTo, "--reply-to") }
        if group == nil, let contactOrWord, contactOrWord.contains("@") {
            // Said as the parser says it of an argument it parses itself: the value, the argument, the reason.
            do { _ = try AccountAddress(contactOrWord) } catch {
                throw ValidationError("The value '\(contactOrWord)' is invalid for '<contact>': \(error.reason)")
            }
        }
    }

    func run() async throws {
        var body = text.joined(separator: " ")
        if body == "-" {
            body = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            // `echo text | parley send X -` means "text": the line end that ends the input is not part of it.
            // ("\r\n" is one Character in Swift, so one removeLast drops either form.)
            if body.hasSuffix("\n") || body.hasSuffix("\r\n") { body.removeLast() }
        }
        guard !body.isEmpty || attachment != nil else { throw ValidationError("the message is empty") }
        let quoted = try replyTo.map { Operations.ReplyTarget.id(try messageId($0, "--reply-to")) }
        if let group {
            let operations = try client.openOperations()
            let sent = try await operations.sendToGroup(try operations.groupId(group), text: body, attachment: attachment, replyTo: quoted)
            if json { try Output.result(sent) } else { Output.line("\(sent.state) to group \(sent.groupId)") }
            return
        }
        let operations = try client.openOperations()
        let contact = try operations.resolve(contactOrWord ?? "")
        let sent = try await operations.send(.init(recipients: [contact], text: body, attachment: attachment, replyTo: quoted))
        guard let result = sent.results.first else { return }
        if json { try Output.result(sent) }
        guard result.type == .pending else {
            if !json { Output.line("\(result.state ?? "sent") to \(contact)") }
            return
        }
        // Saved but not taken by the relay: the outbox retries it; the status (3) says so.
        if !json { Output.line("saved in the outbox; delivery will be retried") }
        if let reason = result.pendingBecause { fail(reason.message, ErrorCategory.relayOrNetwork.exitCode) }
        throw ExitCode(ErrorCategory.relayOrNetwork.exitCode)
    }
}

struct ReceiveCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "receive",
        abstract: "Fetch and show new messages.",
        discussion: """
            Drains the mailbox (each message is decrypted, stored, and only then acknowledged to the relay), \
            then keeps listening on the push channel until --timeout seconds pass without anything new. \
            Delivery receipts go back to the senders automatically (not in groups, where only read receipts go).
            """)

    @OptionGroup var client: ClientOptions
    @Flag(help: "Print one JSON object per message, receipt, typing indicator, read elsewhere, identity or device change: the params of the daemon's notification.") var json = false
    @Option(help: "Seconds to keep listening after the last event (0: fetch once and exit).") var timeout: Double = 5

    func validate() throws {
        guard timeout >= 0, timeout <= 86_400 else { throw ValidationError("--timeout must be between 0 and 86400 seconds") }
    }

    func run() async throws {
        try client.lockHome(as: "parley receive")
        let engine = try client.openEngine()
        let account = engine.ownAddress
        try? await engine.flushOutbox()
        let show: @Sendable (EngineEvent) -> Void = { event in
            json ? printJSON(event, engine: engine, account: account)
                 : print(event, named: { ReceivedShapes.nickname(try? engine.contact($0)) }, groupNamed: { (try? engine.group($0))?.name })
        }
        for event in try await engine.receivePending() { show(event) }
        guard timeout > 0 else { return }
        let events = await engine.subscribe()
        let connection = Task { await engine.runConnection() }
        defer { connection.cancel() }
        let deadline = Deadline(seconds: timeout)
        let printer = Task {
            for await event in events {
                if case .connection = event { continue }
                show(event)
                await deadline.extend()
            }
        }
        await deadline.wait()
        printer.cancel()
    }

    /// " [file NAME, N bytes: parley get-attachment FROM ID]" for a message that carries one, else "".
    private func attachmentNote(_ m: MessageRecord) -> String {
        guard let file = m.attachment else { return "" }
        let name = Output.peer(file.fileName)
        return "\(m.text.isEmpty ? "" : " ")[file \(name), \(file.size) bytes: parley get-attachment \(Output.peer(m.sender.address)) \(Output.hex(m.clientMessageId))]"
    }

    /// --json: exactly the params of the notification the daemon writes for `event` (less `subscription`,
    /// which names one of the daemon's subscriptions), one per line; what no notification carries
    /// (undecryptable, held, discarded, a failed drain) goes to standard error as the plain line.
    private func printJSON(_ event: EngineEvent, engine: Engine, account: AccountAddress) {
        if let (_, params) = ReceivedShapes.notification(for: event, account: account, now: SystemWallClock().nowMilliseconds(),
                                                         sentAt: { try? engine.message(sentBy: $0, clientMessageId: $1)?.sentAt },
                                                         names: { ReceivedShapes.nickname(try? engine.contact($0)) },
                                                         groupNames: { (try? engine.group($0))?.name }) {
            Output.line(JSONValue.object(params).serialized)
            return
        }
        switch event {
        case .undecryptable, .unverifiedSender, .discarded, .receiveFailed, .refusedByPolicy:
            let text = describe(event) ?? ""
            _ = (text + "\n").withCString { write(STDERR_FILENO, $0, strlen($0)) }
        case .message, .messageChanged, .receipt, .typing, .identityChanged, .devicesChanged, .readElsewhere, .connection, .disappearingTimer, .expired,
             .groupChanged:
            break
        }
    }

    private func print(_ event: EngineEvent, named: (AccountAddress) -> String?, groupNamed: (GroupId) -> String?) {
        if let line = describe(event, named: named, groupNamed: groupNamed) { Output.line(line) }
    }

    /// The plain line for `event`, if it has one; `named` gives a sender's nickname (shown instead of the
    /// address), `groupNamed` a group's name.
    private func describe(_ event: EngineEvent, named: (AccountAddress) -> String? = { _ in nil },
                          groupNamed: (GroupId) -> String? = { _ in nil }) -> String? {
        switch event {
        case .message(let m):
            if m.direction == .system { return "(" + Output.peer(m.text) + ")" }
            if m.direction == .incoming {
                let name = (try? m.sender.account).flatMap(named)
                // A group's message says which group first: its id, as `parley group list` shows it (for
                // `parley send --group`), and its name once this device has it.
                let group = m.conversation.group.map { id in
                    let name = groupNamed(id).map { PeerText.forName($0) } ?? ""
                    return "[group \(id.hex)\(name.isEmpty ? "" : " \"" + Output.peer(name) + "\"")] "
                } ?? ""
                return group + "\(Output.peer(name ?? m.sender.address)): " + Output.peer(m.text, multiline: true) + attachmentNote(m)
            } else if m.state != .pending {
                return "(you, to \(Output.peer(m.conversation.description))): " + Output.peer(m.text, multiline: true) + attachmentNote(m) + " [\(m.state)]"
            }
            return nil
        case .messageChanged(let m, let action):
            // This account's own actions come from its other devices: in a 1:1 conversation, whoever is not
            // the contact (in a group the actor is named, whoever it is).
            let own = action.conversation.peer.map { action.actor != $0 } ?? false
            let who = own ? "you" : Output.peer(named(action.actor) ?? action.actor.description)
            let id = Output.hex(m.clientMessageId)
            switch action.change {
            case .react(let emoji, true): return "(\(who) removed the reaction \(Output.peer(emoji)) to \(id))"
            case .react(let emoji, false): return "(\(who) reacted \(Output.peer(emoji)) to \(id))"
            case .edit(let text): return "(\(who) edited \(id)): " + Output.peer(text, multiline: true)
            case .delete: return "(\(who) deleted \(id) for everyone)"
            }
        case .receipt(_, let from, let read, let ids):
            return "\(Output.peer(from.description)): \(read ? "read" : "delivered") \(ids.count) message\(ids.count == 1 ? "" : "s")"
        case .undecryptable(let from, let reason):
            return "(a message\(from.map { " from \(Output.peer($0.description))" } ?? "") could not be decrypted: \(Output.peer(reason)))"
        case .unverifiedSender(let address):
            return "(a message naming \(Output.peer(address.description)) as its sender is held unverified: that account's relay could not be reached to confirm its key; the next receive tries again)"
        case .discarded(let count, let total):
            return "(\(count) envelope\(count == 1 ? "" : "s") that no contact of yours sent discarded unread; \(total) in all)"
        case .identityChanged(let address, let trust):
            return "(the identity key of \(Output.peer(address.description)) changed; "
                + (trust.allowsSending ? "verify it with `parley verify \(Output.peer(address.description))`)" : "sending to them is stopped until you verify or `parley trust` it)")
        case .devicesChanged(let address, let added, let removed, let suspicious):
            return "(\(Output.peer(address.description)) changed devices: +\(added.count) −\(removed.count)\(suspicious ? "; unusually many new devices — verify the safety number" : ""))"
        case .receiveFailed(let problem):
            return "(" + Output.peer(problem) + ")"
        case .refusedByPolicy(let address, let reason):
            return "(a message from \(Output.peer(address.description)) was dropped unread: \(Output.peer(reason)))"
        case .typing, .readElsewhere, .connection, .disappearingTimer, .groupChanged:
            return nil   // a timer or group change arrives with its notice, a message of its own
        case .expired(let conversation, let ids):
            return "(\(ids.count) message\(ids.count == 1 ? "" : "s") with \(Output.peer(conversation.description)) disappeared)"
        }
    }
}

/// Waits until `seconds` have passed since the last `extend()`.
actor Deadline {
    private var end: ContinuousClock.Instant
    private let seconds: Double
    init(seconds: Double) {
        self.seconds = seconds
        end = .now + .milliseconds(Int(seconds * 1000))
    }
    func extend() { end = .now + .milliseconds(Int(seconds * 1000)) }
    func wait() async {
        while ContinuousClock.now < end { try? await Task.sleep(until: min(end, .now + .milliseconds(100))) }
    }
}
