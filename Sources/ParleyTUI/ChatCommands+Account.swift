import Foundation
import ParleyClient
import ParleyCrypto
import ParleyOperations
import ParleyProtocol
import ParleyQR
import ParleyRelayAPI
import ParleyStore

/// The slash commands that act on the account through the operations layer (`Operations`): contacts,
/// verification and trust, devices, files, failed messages, search.
extension ChatController {
    func trust(_ name: String?) {
        guard let peer = contactAddress(name) else { return }
        engineCall("trusted \(peer)", reloading: .direct(peer)) { _ = try await Operations(engine: $0).trust(peer) }
    }

    /// `/nick NAME` (the focused conversation's contact) or `/nick CONTACT NAME` when the first word
    /// names a contact.
    func nick(_ args: [String]) {
        var target: AccountAddress?, words = args[...]
        if args.count > 1, let first = args.first, isContactName(first) {
            target = contactAddress(first)
            words = words.dropFirst()
        } else {
            target = contactAddress(nil)
        }
        guard let peer = target else { return }
        var name = words.joined(separator: " ")
        if name == "\"\"" { name = "" }
        let engine = engine, inbox = inbox
        Task {
            do {
                let result = try await Operations(engine: engine).renameContact(peer, to: name)
                inbox.post { c in
                    c.state.nicknames[result.address] = result.name.isEmpty ? nil : result.name
                    c.state.say(result.name.isEmpty ? "\(result.address) has no nickname now" : "\(result.address) is now \(result.name)")
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say(text, error: true) }
            }
        }
    }

    /// Whether `word` names a contact (address, nickname or unique local part) without saying anything.
    func isContactName(_ word: String) -> Bool {
        guard let address = try? Operations(engine: engine).resolve(word) else { return false }
        return (try? engine.contact(address)) != nil
    }

    func remove(_ name: String?) {
        guard let peer = contactAddress(name) else { return }
        let engine = engine, inbox = inbox
        Task {
            do {
                let removed = try await Operations(engine: engine).removeContact(peer)
                inbox.post { c in
                    c.state.nicknames[removed.address] = nil
                    c.state.contacts.remove(removed.address)
                    c.state.say("removed \(removed.address) and the sessions with their devices; the conversation's history is kept")
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say(text, error: true) }
            }
        }
    }

    func block(_ name: String?, _ blocked: Bool) {
        guard let peer = contactAddress(name) else { return }
        engineCall(blocked ? "blocked \(peer): their messages are dropped, nothing is sent to them" : "unblocked \(peer)",
                   reloading: .direct(peer)) { _ = try await Operations(engine: $0).setBlocked([peer], blocked) }
    }

    func add(_ address: String) {
        let parsed: AccountAddress
        do { parsed = try AccountAddress(address) } catch {
            state.say("usage: /add NAME@HOST:PORT (\(error))", error: true)
            return
        }
        let engine = engine, inbox = inbox
        state.say("looking up \(address)…")
        Task {
            do {
                let contact = try await Operations(engine: engine).addContact(parsed)
                inbox.post { c in
                    c.state.contacts.insert(contact.address)
                    if let conversation = ChatController.direct(contact.address) {
                        c.state.ensureRosterEntry(conversation, trust: contact.trust)
                        c.open(conversation)
                    }
                    c.state.say("added \(contact.address)")
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("cannot add \(address): \(text)", error: true) }
            }
        }
    }

    func verify(_ args: [String]) {
        var args = args[...]
        var conversation = state.focus
        if let first = args.first, !first.allSatisfy(\.isNumber) {
            conversation = resolve(first)
            args = args.dropFirst()
            if conversation == nil { return }
        }
        guard let conversation, let peer = conversation.peer else { state.say("which contact? /verify CONTACT", error: true); return }
        let digits = args.joined()
        let engine = engine, inbox = inbox
        if digits.isEmpty {
            Task {
                do {
                    let number = try await Operations(engine: engine).safetyNumber(with: peer)
                    let payload = Hex.decode(number.scannableSafetyNumber) ?? []
                    let qr = (try? QRCode.encode(payload)).map { QRRenderer.halfBlocks($0, quietZone: 2) } ?? []
                    inbox.post { c in
                        c.state.verification = AppState.Verification(peer: peer.description, digits: number.safetyNumber, qrLines: qr,
                                                                     trust: c.state.trust(of: conversation) ?? .unverified)
                    }
                } catch {
                    let text = ChatController.describe(error)
                    inbox.post { $0.state.say(text, error: true) }
                }
            }
            return
        }
        Task {
            do {
                let outcome = try await Operations(engine: engine).verify(peer, .digits(digits))
                inbox.post { c in
                    c.reload(conversation)
                    c.state.verification = nil
                    if outcome.result == .verified { c.state.say("\(peer) is verified ✔") }
                    else { c.state.say(outcome.sentence, error: true) }
                }
            } catch OperationError.notASafetyNumber {
                // Not 60 digits: no comparison was made, so nothing is said about the contact's trust.
                inbox.post { $0.state.say("that is not a safety number: it has 60 digits (12 groups of 5); nothing was changed", error: true) }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say(text, error: true) }
            }
        }
    }

    func attach(_ args: [String]) {
        guard let peer = state.focus?.peer else { state.say("open a conversation first: /msg CONTACT", error: true); return }
        guard let file = args.first else { state.say("usage: /attach FILE [CAPTION]", error: true); return }
        let path = Self.expand(file)
        let caption = args.dropFirst().joined(separator: " ")
        let engine = engine, inbox = inbox, name = (path as NSString).lastPathComponent
        state.say("encrypting and uploading \(name)…")
        Task {
            do {
                let sent = try await Operations(engine: engine).send(.init(recipients: [peer], text: caption, attachment: path))
                let account = try AccountAddress(await engine.account.address)
                let record = try sent.id.flatMap(Hex.decode).flatMap { try engine.message(sentBy: account, clientMessageId: $0) }
                inbox.post { c in
                    if let record { c.showMessage(ChatMessage(record)) }
                    c.state.say(sent.results.first?.type == .pending ? "\(name) waits in the outbox" : "sent \(name)")
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("not sent: \(text)", error: true) }
            }
        }
    }

    func save(_ args: [String]) {
        guard let peer = state.focus else { state.say("open a conversation first", error: true); return }
        let target: SaveTarget
        guard let attachments = allAttachments(peer) else { return }
        switch SaveTarget.resolve(args, in: attachments) {
        case .success(let found): target = found
        case .failure(let problem): state.say(problem.text, error: true); return
        }
        save(target)
    }

    /// Downloads, checks and saves the attachment `target` names (`/save`, `s` in selection mode).
    func save(_ target: SaveTarget) {
        let operations = Operations(engine: engine), inbox = inbox
        let sender = target.message.sender, id = target.message.clientMessageId, path = target.path.map(Self.expand)
        state.say("downloading \(target.message.attachment?.name ?? "the attachment")…")
        Task {
            do {
                let saved = try await operations.saveAttachment(from: try AccountAddress(sender), id: id, to: path)
                inbox.post { $0.state.say(target.savedLine(to: saved.file ?? "")) }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say("not saved: \(text)", error: true) }
            }
        }
    }

    func devices(_ name: String?) {
        var peer = state.focus?.peer
        if let name { guard let p = contactAddress(name) else { return }; peer = p }
        let engine = engine, inbox = inbox
        Task {
            do {
                let devices = try await Operations(engine: engine).devices(of: peer)
                let own = engine.ownAddress
                let title: String
                if let peer, peer != own, let contact = try engine.contact(peer) {
                    title = "Devices of \(peer) (\(TrustBadge.words(contact.trust).0)):"
                } else {
                    title = "Your devices (\(own)):"
                }
                let lines = devices.map { "  device #\($0.id)  \(KeyFingerprint.short(Hex.decode($0.identityKey) ?? []))" }
                inbox.post { c in
                    let shown = lines.isEmpty ? ["  (no device list yet)"] : lines
                    c.state.log(([title] + shown).joined(separator: "\n"))
                    c.show(Overlay(title: String(title.dropLast()), lines: shown.map { Overlay.Line($0) }))
                }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { $0.state.say(text, error: true) }
            }
        }
    }

    /// /retry and /delete: the newest failed message of the focused conversation.
    func failed(retry: Bool) {
        guard let conversation = state.focus, let peer = conversation.peer else {
            state.say("open a conversation first: /msg CONTACT", error: true)
            return
        }
        let operations = Operations(engine: engine), inbox = inbox
        Task {
            do {
                if retry {
                    let record = try await operations.retryFailed(with: peer)
                    inbox.post { c in
                        c.reload(conversation)
                        c.state.say(record.state == .pending ? "sent again; it waits in the outbox" : "sent again")
                    }
                } else {
                    try await operations.deleteFailed(with: peer)
                    inbox.post { c in
                        c.reload(conversation)
                        c.state.say("deleted the failed message")
                    }
                }
            } catch OperationError.refused(let text) {
                inbox.post { $0.state.say(text, error: true) }
            } catch {
                let text = ChatController.describe(error)
                inbox.post { c in
                    c.reload(conversation)
                    c.state.say((retry ? "not sent: " : "not deleted: ") + text, error: true)
                }
            }
        }
    }
}
