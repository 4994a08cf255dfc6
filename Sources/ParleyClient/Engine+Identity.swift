import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// signal-cli's `--trust-new-identities`: what happens when a contact's account key is new or changes.
public enum TrustPolicy: String, Sendable, CaseIterable {
    /// Trust the first key seen; a change of a verified contact's key stops sending until the user decides,
    /// a change of an unverified one is accepted and announced.
    case onFirstUse = "on-first-use"
    /// Accept every key and every change (still announced in the conversation).
    case always
    /// Accept no key until the user trusts it, not even the first one.
    case never
}

/// Verification, trust decisions, and the notices that make identity and device changes visible.
extension Engine {
    /// The safety number with `peer`: 60 digits, and the scannable payload (local = this account).
    public func safetyNumber(with peer: AccountAddress) throws -> (digits: String, scannable: [UInt8]) {
        guard let contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        let localKey = SafetyNumber.accountKey(account.accountKey.publicKey), localId = SafetyNumber.accountId(account.address)
        let remoteKey = SafetyNumber.accountKey(contact.account.accountKey), remoteId = SafetyNumber.accountId(peer.description)
        let local = SafetyNumber.partyHash(key: localKey, id: localId)
        let remote = SafetyNumber.partyHash(key: remoteKey, id: remoteId)
        let digits = [SafetyNumber.digits(of: local), SafetyNumber.digits(of: remote)].sorted().joined()
        return (digits, SafetyNumber.scannable(version: SafetyNumber.scannableVersion, localHash: local, remoteHash: remote))
    }

    public enum VerificationOutcome: Equatable, Sendable {
        case verified
        case mismatch
        case versionMismatch(theirs: Int, ours: Int)
        case malformed
    }

    /// Compares the peer's 60 digits (spaces ignored) with ours; on a match the contact becomes verified.
    public func verify(_ peer: AccountAddress, digits: String) async throws -> VerificationOutcome {
        let typed = digits.filter { !$0.isWhitespace }
        guard typed.count == 60, typed.allSatisfy({ $0.isASCII && $0.isNumber }) else { return .malformed }
        let ours = try safetyNumber(with: peer).digits
        guard constantTimeEquals(Array(typed.utf8), Array(ours.utf8)) else { return .mismatch }
        try await setTrust(.verified, for: peer)
        return .verified
    }

    /// Compares a scanned code (the peer's scannable payload) with ours.
    public func verify(_ peer: AccountAddress, scanned: [UInt8]) async throws -> VerificationOutcome {
        guard let contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        let local = SafetyNumber.partyHash(key: SafetyNumber.accountKey(account.accountKey.publicKey), id: SafetyNumber.accountId(account.address))
        let remote = SafetyNumber.partyHash(key: SafetyNumber.accountKey(contact.account.accountKey), id: SafetyNumber.accountId(peer.description))
        switch SafetyNumber.compare(scanned: scanned, version: SafetyNumber.scannableVersion, localHash: local, remoteHash: remote) {
        case .match:
            try await setTrust(.verified, for: peer)
            return .verified
        case .mismatch: return .mismatch
        case .versionMismatch(let theirs, let ours): return .versionMismatch(theirs: theirs, ours: ours)
        case .malformed: return .malformed
        }
    }

    /// Accepts the contact's current key without verifying it (clears `changed` and `untrusted`).
    public func trust(_ peer: AccountAddress) async throws {
        try await setTrust(.unverified, for: peer)
    }

    /// Records the decision, writes it into the conversation, and tells this account's other devices
    /// (PROTOCOL.md §12, type 0x05), which apply it if they know the same key.
    private func setTrust(_ state: TrustState, for peer: AccountAddress) async throws {
        guard let contact = try store.contact(peer) else { throw ClientError.unknownContact(peer) }
        guard contact.trust != state else { return }
        try record(state, for: contact, elsewhere: false)
        guard account.deviceList.devices.count > 1 else { return }
        try await sendControl(.trustDecision(address: peer.description, accountKey: contact.account.accountKey.bytes, state: state.rawValue),
                              to: ownAddress)
    }

    private func record(_ state: TrustState, for contact: Contact, elsewhere: Bool) throws {
        var contact = contact
        let before = contact.trust, peer = contact.address
        contact.trust = state
        try store.saveContact(contact)
        let suffix = elsewhere ? " (on another of your devices)" : ""
        let words: String = switch state {
        case .verified: "You verified the safety number of \(peer)\(suffix)."
        case .unverified: before == .verified ? "\(peer) is no longer marked verified\(suffix)." : "You accepted the identity key of \(peer)\(suffix)."
        case .changed, .untrusted: "The identity key of \(peer) is not trusted\(suffix)."
        }
        try notice(words, in: peer)
    }

    /// A trust decision from another device of this account: applied only when it is about the key this
    /// device knows for the contact (a decision about an older or newer key is not this key's decision).
    func applyTrustDecision(address: AccountAddress, accountKey: [UInt8], state: UInt8) throws -> EngineEvent? {
        guard let decided = TrustState(rawValue: state), let contact = try store.contact(address),
              contact.account.accountKey.bytes == accountKey, contact.trust != decided else { return nil }
        try record(decided, for: contact, elsewhere: true)
        return .identityChanged(address: address, trust: decided)
    }

    /// Marks the incoming messages of `conversation` read (`seen`): this account's other devices are
    /// told, and so is the peer unless `sendReadReceipts` is false (in a group, one group message tells the
    /// members and this account's other devices alike, and without it nobody). Returns how many were marked.
    @discardableResult
    public func markRead(_ conversation: ConversationId, sendReadReceipts: Bool = true) async throws -> Int {
        if case .group(let id) = conversation { return try await markRead(group: id, sendReadReceipts: sendReadReceipts) }
        let peer = try Self.recipient(of: conversation)
        let unread = try store.unreadMessages(in: conversation)
        guard !unread.isEmpty else { return 0 }
        let ids = unread.map(\.clientMessageId)
        try store.advanceState(ofMessagesSentBy: peer, ids: ids, to: .seen)
        let receipt = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: conversation,
                              body: .receipt(read: true, messageIds: ids))
        if sendReadReceipts, try store.contact(peer)?.trust.allowsSending == true {
            try await send(receipt, to: peer)      // the peer's devices and this account's other devices
        } else if account.deviceList.devices.count > 1 {
            try await send(receipt, to: ownAddress)
        }
        return unread.count
    }

    /// Takes in a signed device list fetched from `address`'s relay: a device-list change is recorded in
    /// the conversation (a burst of additions flagged), and a new account key goes through the trust policy.
    func learn(_ list: SignedDeviceList, for address: AccountAddress, keyChange: [UInt8]? = nil) async throws {
        guard var contact = try store.contact(address) else {
            let trust: TrustState = trustPolicy == .never ? .untrusted : .unverified
            try store.saveContact(Contact(address: address, account: KnownAccount(accountKey: list.accountKey, deviceList: list), trust: trust))
            return
        }
        if contact.account.accountKey != list.accountKey {
            let before = contact.trust, oldKey = contact.account.accountKey
            let statement = try await keyChangeStatement(keyChange, for: address)
            try await manager.replaceIdentity(list, for: address)
            contact = try store.contact(address) ?? contact
            // Under on-first-use only an accepted, unverified key is replaced without stopping; a verified
            // key, or one whose earlier change the user has not decided on yet, keeps sending stopped.
            contact.trust = switch trustPolicy {
            case .always: .unverified
            case .never: .untrusted
            case .onFirstUse: before == .unverified ? .unverified : before == .untrusted ? .untrusted : .changed
            }
            try store.saveContact(contact)
            try notice("The identity key of \(address) changed. "
                + Self.keyChangeWords(statement, address: address, oldKey: oldKey, newKey: list.accountKey) + " " + (contact.trust.allowsSending
                ? "Verify their new safety number with `parley verify \(address)`."
                : "Sending is stopped until you verify the new safety number or accept it with `parley trust \(address)`."),
                       in: address)
            try noticeInSharedGroups("The identity key of \(address) changed" + (contact.trust.allowsSending
                ? ": verify their new safety number with `parley verify \(address)`."
                : "; their devices are refused in groups until you verify the new safety number or accept it with `parley trust \(address)`."),
                                     about: address)
            emit(.identityChanged(address: address, trust: contact.trust))
            return
        }
        let old = contact.account.deviceList
        try await manager.updateDeviceListIfNewer(list, for: address)
        guard let old, list.version > old.version else { return }
        let before = Dictionary(uniqueKeysWithValues: old.devices.map { ($0.deviceId, $0.identityKey) })
        let after = Dictionary(uniqueKeysWithValues: list.devices.map { ($0.deviceId, $0.identityKey) })
        let added = list.devices.filter { before[$0.deviceId] != $0.identityKey }.map(\.deviceId)
        let removed = old.devices.filter { after[$0.deviceId] == nil }.map(\.deviceId)
        // A device whose id stays and whose key changed rotated its key (`parley rotate-keys`), or was
        // restored from a backup: its sessions were deleted with the old key, and the next message starts
        // a new one.
        let rekeyed = added.filter { before[$0] != nil }, new = added.filter { before[$0] == nil }
        for id in rekeyed {
            try notice("\(address)'s device \(id) has a new key.", in: address)
            try noticeInSharedGroups("\(address)'s device \(id) has a new key.", about: address)
        }
        if !new.isEmpty || !removed.isEmpty {
            var words = "\(address) " + [new.isEmpty ? nil : "added device\(new.count == 1 ? "" : "s") \(new.map { "#\($0)" }.joined(separator: ", "))",
                                         removed.isEmpty ? nil : "removed device\(removed.count == 1 ? "" : "s") \(removed.map { "#\($0)" }.joined(separator: ", "))"]
                .compactMap { $0 }.joined(separator: " and ") + "."
            let suspicious = new.count >= Self.suspiciousDeviceBurst
            if suspicious { words += " That is an unusual number of new devices at once: verify the safety number before sending anything sensitive." }
            try notice(words, in: address)
        }
        if !added.isEmpty || !removed.isEmpty {
            emit(.devicesChanged(address: address, added: added, removed: removed, suspicious: new.count >= Self.suspiciousDeviceBurst))
        }
    }

    /// The old key's statement naming the new account key of `address` (PROTOCOL.md §3.5), as its relay
    /// serves it (`offered`, or fetched when not given); nil when there is none or the relay cannot say.
    private func keyChangeStatement(_ offered: [UInt8]?, for address: AccountAddress) async throws -> [UInt8]? {
        if let offered { return offered }
        return (try? await peerRelay(for: address).account(address.description))?.keyChange?.bytes
    }

    /// What the conversation says about who vouched for a new account key: the old key's statement is shown
    /// when it verifies for this account, this old key and this new key; it never makes the new key trusted.
    public static func keyChangeWords(_ statement: [UInt8]?, address: AccountAddress, oldKey: Ed25519.PublicKey, newKey: Ed25519.PublicKey) -> String {
        guard let statement else { return "The old key did not sign the change." }
        do {
            let change = try AccountKeyChange(verifying: statement)
            try change.check(address: address.description, oldKey: oldKey, newKey: newKey)
            return "The old key signed the change to the new key: it came from someone holding the old key "
                + "(the owner, or whoever took a device), which does not make the new key trusted."
        } catch {
            return "A statement offered for the change is not valid (\(error)): it is ignored."
        }
    }

    /// Three or more devices added in one change of a contact's list is flagged.
    static let suspiciousDeviceBurst = 3

    /// Writes a system notice into the conversation with `peer`.
    func notice(_ text: String, in peer: AccountAddress) throws {
        try notice(text, in: .direct(peer), about: peer)
    }

    /// Writes a system notice about `peer` into `conversation` (theirs, or a group's they are in).
    func notice(_ text: String, in conversation: ConversationId, about peer: AccountAddress) throws {
        let now = clock.nowMilliseconds()
        try store.insertMessages([MessageRecord(conversation: conversation, direction: .system, sender: DeviceAddress(address: peer.description, deviceId: 0),
                                                clientMessageId: Content.newMessageId(), sentAt: now, receivedAt: now, text: text,
                                                state: .received)])
    }
}
