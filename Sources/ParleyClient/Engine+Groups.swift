import Foundation
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// Groups (PROTOCOL.md §16, §17): every device of every member is an MLS leaf whose credential names its
/// account and device and is accepted only when the account's signed device list holds that device with
/// that key. The relay orders the commits (one per epoch); this device keeps its state of the current epoch
/// sealed in the store, saved in the transaction that stores what it decrypted.
extension Engine {
    static let groupSuite = CipherSuite.x25519ChaCha20Poly1305
    /// KeyPackages kept on the relay for this device (the relay calls under 10 low).
    static let keyPackageStock = 20
    static let keyPackageLifetimeSeconds: UInt64 = 90 * 86_400
    /// How often a commit or send refused for a stale epoch is rebuilt on the winning one.
    static let groupRetries = 20

    // MARK: KeyPackages

    var groupSignatureKey: SignaturePrivateKey {
        get throws { try SignaturePrivateKey(seed: account.device.keyPair.seed) }
    }

    /// A new leaf for this device: the leaf, the private half of its encryption key, and a KeyPackage
    /// around it with the private half of its init key.
    func newKeyPackage(lastResort: Bool) throws -> (package: KeyPackage, keys: KeyPackageKeys) {
        let suite = Self.groupSuite, signer = try groupSignatureKey
        let initKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let encryptionKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
        let now = clock.nowMilliseconds() / 1000
        var leaf = LeafNode(encryptionKey: encryptionKeys.publicKey, signatureKey: signer.publicKey,
                            credential: .basic(identity: GroupCredential.identity(account.deviceAddress)),
                            capabilities: Capabilities(cipherSuites: [suite.id]),
                            source: .keyPackage(Lifetime(notBefore: now - 3600, notAfter: now + Self.keyPackageLifetimeSeconds)), extensions: [])
        try leaf.sign(suite: suite, key: signer, context: nil)
        var package = KeyPackage(cipherSuite: suite.id, initKey: initKeys.publicKey, leafNode: leaf, extensions: [])
        package.sign(suite: suite, key: signer)
        let keys = KeyPackageKeys(reference: package.reference(suite: suite), keyPackage: package.tlsEncoded,
                                  initPrivateKey: initKeys.privateKey.unprotectedBytes,
                                  encryptionPrivateKey: encryptionKeys.privateKey.unprotectedBytes, lastResort: lastResort)
        return (package, keys)
    }

    /// Tops up this device's KeyPackages on the relay to `keyPackageStock`, with a last-resort one if it has
    /// none. The private keys are stored before the upload: a package the relay hands out always has them.
    /// Returns how many were uploaded.
    @discardableResult
    public func stockKeyPackages() async throws -> Int {
        let count = try await authorised { try await relay.keyPackageCount(token: $0) }
        let missing = max(0, Self.keyPackageStock - count.keyPackages)
        guard missing > 0 || !count.lastResort else { return 0 }
        let fresh = try (0..<missing).map { _ in try newKeyPackage(lastResort: false) }
        let lastResort = count.lastResort ? nil : try newKeyPackage(lastResort: true)
        try store.saveKeyPackageKeys(fresh.map(\.keys) + (lastResort.map { [$0.keys] } ?? []))
        let upload = KeyPackageUpload(keyPackages: fresh.map { Base64Bytes($0.package.tlsEncoded) },
                                      lastResort: lastResort.map { Base64Bytes($0.package.tlsEncoded) })
        try await authorised { try await relay.uploadKeyPackages(upload, token: $0) }
        return fresh.count + (lastResort == nil ? 0 : 1)
    }

    // MARK: Leaves and device lists

    /// The leaf check for the MLS library, over the device lists this device holds (its own account's and
    /// its contacts' whose keys it may send to).
    func leafCheck() throws -> LeafCheck {
        var lists: [String: SignedDeviceList] = [ownAddress.description: account.deviceList]
        for contact in try store.contacts() where contact.trust.allowsSending && !contact.blocked {
            if let list = contact.account.deviceList { lists[contact.address.description] = list }
        }
        return LeafCheck(lists: lists)
    }

    /// Runs `body` with the leaf check; when it refused a leaf of an account whose list this device lacks
    /// or holds in an older version, those lists are fetched from their relays (checked as for 1:1: signed
    /// by the account key, under the trust policy) and `body` runs once more.
    func withLeafCheck<R>(_ body: (@escaping CredentialValidator) throws -> R) async throws -> R {
        let check = try leafCheck()
        do { return try body(check.validator) } catch MLSError.credentialRejected {
            let refused = check.refusedAccounts
            guard !refused.isEmpty else { throw MLSError.credentialRejected }
            for text in refused {
                guard let address = try? AccountAddress(text) else { continue }
                try await refreshDeviceList(address)
            }
            return try body(try leafCheck().validator)
        }
    }

    // MARK: State

    func loadGroup(_ id: GroupId, validator: @escaping CredentialValidator) throws -> (record: GroupRecord, group: Group) {
        guard let record = try store.group(id), record.active else { throw ClientError.unknownGroup(id.hex) }
        let group = try Group(serialized: SecretBytes(record.state), credentialValidator: validator)
        return (record, group)
    }

    /// The record of `group` at its current epoch: its members read from the tree, `infoKey` kept beside the
    /// state (Engine+GroupInfoKey.swift).
    static func record(of group: Group, id: GroupId, name: String, infoKey: GroupInfoKey?) -> GroupRecord {
        GroupRecord(id: id, name: name, members: leafDevices(of: group), epoch: group.epoch, active: group.isActive,
                    state: group.serialized().unprotectedBytes, infoKey: infoKey)
    }

    /// The epoch's send secret (PROTOCOL.md §17.3).
    static func sendSecret(_ group: Group) -> [UInt8] {
        group.export(label: RelayAPI.groupSendLabel, context: group.context.groupID, length: RelayAPI.groupSecretLength).unprotectedBytes
    }

    static func verifier(_ group: Group) -> Base64Bytes {
        Base64Bytes(RelayAPI.groupSendVerifier(groupId: group.context.groupID, epoch: group.epoch, secret: sendSecret(group)))
    }

    /// Every device of the group, this one included: the list is the same whichever member sends, so it
    /// does not tell the relay who sent (PROTOCOL.md §17.4). This device drops its own copy on arrival
    /// (Engine+GroupOwnCopies.swift).
    func recipients(_ group: Group) -> [GroupRecipient] {
        Self.leafDevices(of: group).map { GroupRecipient(address: $0.address, deviceId: $0.deviceId) }
    }

    // MARK: Creating and changing groups

    /// Creates a group named `name` (neutralised) with this device as its only leaf, registers it with the
    /// relay, then adds `members` (every device of each).
    public func createGroup(name: String, members: [AccountAddress] = []) async throws -> GroupRecord {
        let id = GroupId.random()
        let (package, keys) = try newKeyPackage(lastResort: false)
        let group = try Group.create(suite: Self.groupSuite, groupID: id.bytes, leaf: package.leafNode,
                                     encryptionPrivateKey: SecretBytes(keys.encryptionPrivateKey), signatureKey: try groupSignatureKey,
                                     credentialValidator: try leafCheck().validator)
        _ = try await authorised { try await relay.createGroup(GroupCreation(groupId: id.hex, verifier: Self.verifier(group)), token: $0) }
        let record = Self.record(of: group, id: id, name: PeerText.forName(name), infoKey: Self.derivedInfoKey(group))
        let notice = groupNotice("You created the group \u{201C}\(record.name)\u{201D}.", in: id)
        for event in try saveGroup(record, notices: [notice], change: .joined) { emit(event) }
        guard !members.isEmpty else { return record }
        return try await addMembers(members, to: id)
    }

    /// Adds every device of each account (a contact this device may send to): one KeyPackage claimed per
    /// device, each checked (signature, credential naming that account and device, key in its list), one
    /// commit, and the Welcome to the new devices. The group's name follows in the new epoch.
    public func addMembers(_ accounts: [AccountAddress], to id: GroupId) async throws -> GroupRecord {
        var packages: [KeyPackage] = []
        for address in accounts {
            try await ensureDeviceList(address)
            let claim = try await peerRelay(for: address).claimKeyPackages(of: address.description)
            guard !claim.keyPackages.isEmpty else { throw ClientError.noKeyPackages(address) }
            for claimed in claim.keyPackages {
                let package = try KeyPackage(tlsEncoded: claimed.keyPackage.bytes)
                guard package.verifySignature(suite: Self.groupSuite),
                      GroupCredential.device(in: package.leafNode.credential) == DeviceAddress(address: address.description, deviceId: claimed.deviceId)
                else { throw ClientError.malformedResponse("a KeyPackage of \(address) #\(claimed.deviceId) does not name that device") }
                packages.append(package)
            }
        }
        let record = try await commit(to: id) { group in
            // Devices the winning commit of a lost race already added are not added twice.
            let present = Set(group.tree.occupiedLeaves.compactMap { group.tree.leaf($0)?.signatureKey })
            return try group.commit(adding: packages.filter { !present.contains($0.leafNode.signatureKey) }, wireFormat: Self.handshakeWireFormat)
        }
        try await sendGroupContent(.groupName(record.name), to: id)
        try await sendInfoKey(to: id)
        return try store.group(id) ?? record
    }

    /// Removes every device of each account from the group.
    public func removeMembers(_ accounts: [AccountAddress], from id: GroupId) async throws -> GroupRecord {
        let names = Set(accounts.map(\.description))
        return try await commit(to: id) { group in
            let leaves = Self.leaves(of: group) { names.contains($0.address) }
            guard !leaves.isEmpty else { throw ClientError.notAMember(accounts.map(\.description).joined(separator: ", ")) }
            return try group.commit(removing: leaves, wireFormat: Self.handshakeWireFormat)
        }
    }

    /// Leaves the group: a commit that removes every leaf of this account but this device's own (MLS does
    /// not let a member commit its own removal), then a proposal to remove this device, which the next
    /// commit of another member carries out. This device keeps the history and reads nothing more.
    public func leaveGroup(_ id: GroupId) async throws {
        let own = ownAddress.description, me = account.device.deviceId
        let ownOthers: (DeviceAddress) -> Bool = { $0.address == own && $0.deviceId != me }
        let current = try await withLeafCheck { try loadGroup(id, validator: $0) }.group
        // Its other devices, removed first, are not added back meanwhile (§17.8).
        leavingGroups.insert(id)
        defer { leavingGroups.remove(id) }
        if !Self.leaves(of: current, where: ownOthers).isEmpty {
            _ = try await commit(to: id) { group in try group.commit(removing: Self.leaves(of: group, where: ownOthers), wireFormat: Self.handshakeWireFormat) }
        }
        try await sendGroupMessage(to: id) { group in try group.propose(.remove(leafIndex: group.myLeaf), wireFormat: Self.handshakeWireFormat) }
        guard var record = try store.group(id) else { return }
        record.active = false
        for event in try saveGroup(record, notices: [groupNotice("You left the group.", in: id)], change: .ended) { emit(event) }
    }

    /// The leaves whose credential names a device `matching` says yes to.
    static func leaves(of group: Group, where matching: (DeviceAddress) -> Bool) -> [UInt32] {
        group.tree.occupiedLeaves.filter { leaf in
            guard let device = group.tree.leaf(leaf).flatMap({ GroupCredential.device(in: $0.credential) }) else { return false }
            return matching(device)
        }
    }

    /// Gives this device's leaf fresh keys: an empty commit with a path (post-compromise security). It also
    /// carries out the proposals received in the epoch (a member's request to leave).
    public func updateOwnLeaf(in id: GroupId) async throws -> GroupRecord {
        try await commit(to: id) { group in try group.commit(wireFormat: Self.handshakeWireFormat) }
    }

    /// Renames the group: the name goes to every member in the current epoch.
    public func renameGroup(_ id: GroupId, to name: String) async throws -> GroupRecord {
        let name = PeerText.forName(name)
        try await sendGroupContent(.groupName(name), to: id)
        guard var record = try store.group(id) else { throw ClientError.unknownGroup(id.hex) }
        record.name = name
        let notice = groupNotice("You renamed the group to \u{201C}\(name)\u{201D}.", in: id)
        for event in try saveGroup(record, notices: [notice], change: .renamed(name)) { emit(event) }
        return record
    }

    /// Commits and proposals travel as MLS PrivateMessages, encrypted under the epoch's secret tree: the
    /// relay that orders and stores them reads neither who made them nor what they add and remove
    /// (PROTOCOL.md §17.4). Only an external commit, which a device that lost its state makes, is a
    /// PublicMessage (it has no key of the epoch), and it is sealed (§17.9).
    static let handshakeWireFormat = WireFormat.privateMessage

    /// Makes a commit on the group's current epoch and has the relay order it. Refused because another
    /// commit took the epoch first, this device fetches its mailbox (processing the winner), and `make`
    /// builds the commit again on the new epoch. The new state is saved once the relay has accepted the
    /// commit; the Welcome (if any) then goes to the devices it adds. `notDelivering`: devices the commit
    /// removes that left their account's list (the relay refuses them as recipients, §17.8).
    func commit(to id: GroupId, notDelivering: Set<DeviceAddress> = [],
                _ make: @escaping (inout Group) throws -> Group.CommitOutput) async throws -> GroupRecord {
        for _ in 0..<Self.groupRetries {
            await takeCommitTurn(in: id)
            var holdingTurn = true
            defer { if holdingTurn { endCommitTurn(in: id) } }
            let (record, group, next, output) = try await withLeafCheck { validator in
                let (record, group) = try loadGroup(id, validator: validator)
                var next = group
                let output = try make(&next)
                return (record, group, next, output)
            }
            let infoKey = Self.infoKey(after: next, before: group, held: record.infoKey)
            let rejoin = try rejoinFields(of: output, next: next, key: infoKey)
            let send = GroupSend(epoch: group.epoch, message: Base64Bytes(output.message.tlsEncoded),
                                 recipients: recipients(group).filter { !notDelivering.contains(DeviceAddress(address: $0.address, deviceId: $0.deviceId)) },
                                 nextVerifier: Self.verifier(next), groupInfo: rejoin.groupInfo, rejoiners: rejoin.rejoiners,
                                 welcome: Self.welcome(output, from: recipients(group), to: recipients(next)))
            // A PrivateMessage commit took a handshake key of this epoch: the state that has spent it is saved
            // first, so that a commit made again in this epoch never encrypts under that key again.
            if let spent = output.stateWithCommitKeySpent {
                try store.saveGroup(Self.record(of: spent, id: id, name: record.name, infoKey: record.infoKey))
            }
            let relay = self.relay, secret = Self.sendSecret(group)
            groupCommitsInFlight[id] = output.message.tlsEncoded
            let refusal: ClientError?
            do {
                try await relay.commit(send, toGroup: id.hex, secret: secret)
                refusal = nil
            } catch {
                refusal = error
            }
            groupCommitsInFlight[id] = nil
            if let refusal {
                holdingTurn = false
                endCommitTurn(in: id)
                if try await caughtUp(after: refusal, in: id) { continue }
                throw refusal
            }
            let saved = Self.record(of: next, id: id, name: record.name, infoKey: infoKey)
            let change = membershipChange(from: record, to: saved)
            for event in try saveGroup(saved, notices: change?.notices ?? [], change: change?.change) { emit(event) }
            return saved
        }
        throw ClientError.timedOut("the group kept changing; the change was not made, try again")
    }

    /// Whether the relay took `post`; false when another commit had taken the epoch (this device then has
    /// caught up with the mailbox, and the caller builds its message again on the new epoch). Also false when
    /// a recipient device had left its account's list and its leaf is now removed (§17.8).
    private func accepted(in id: GroupId, _ post: () async throws(ClientError) -> Void) async throws -> Bool {
        do {
            try await post()
            return true
        } catch {
            if try await caughtUp(after: error, in: id) { return false }
            throw error
        }
    }

    /// After the relay refused a group post: whether this device has caught up so that the post can be
    /// made again (another commit had taken the epoch: the mailbox is fetched, which processes it; or a
    /// recipient device had left its account's list and its leaf is now removed, §17.8).
    private func caughtUp(after refusal: ClientError, in id: GroupId) async throws -> Bool {
        if case .relay(status: 404, _, _) = refusal, try await removeUnlistedLeaves(from: id) { return true }
        guard case .epochConflict = refusal else { return false }
        try await receivePending()
        return true
    }

    // MARK: Sending

    /// Sends `text` (a reply to `replyTo` if given) to every device of the group but this one; see
    /// `send(_:toGroup:)` (Engine+GroupContents.swift).
    public func send(text: String, toGroup id: GroupId, replyTo: [UInt8]? = nil) async throws -> MessageRecord {
        try await send(.message(text: text, replyTo: replyTo, attachment: nil), toGroup: id)
    }

    func sendGroupContent(_ body: Content.Body, to id: GroupId) async throws {
        let content = Content(messageId: Content.newMessageId(), sentAt: clock.nowMilliseconds(), conversation: .group(id), body: body)
        try await sendGroupMessage(to: id) { group in try group.encrypt(content.encoded, padding: 32) }
    }

    /// Encrypts (or proposes) with `make`, saves the advanced state with `filing` (a message, pending; an
    /// action this device applies to its copy) in one transaction, and posts it under the epoch's secret.
    /// Refused for a stale epoch, it catches up and makes the message again in the new epoch.
    func sendGroupMessage(to id: GroupId, filing: [GroupFiling] = [], _ make: @escaping (inout Group) throws -> MLSMessage) async throws {
        var unfiled = filing    // filed with the first attempt's state: a retry encrypts again, it does not file again
        for _ in 0..<Self.groupRetries {
            let (record, group, next, message) = try await withLeafCheck { validator in
                let (record, group) = try loadGroup(id, validator: validator)
                var next = group
                let message = try make(&next)
                return (record, group, next, message)
            }
            try store.saveGroup(Self.record(of: next, id: id, name: record.name, infoKey: record.infoKey), with: unfiled)
            unfiled = []
            let send = GroupSend(epoch: group.epoch, message: Base64Bytes(message.tlsEncoded), recipients: recipients(group))
            let relay = self.relay, secret = Self.sendSecret(group)
            // Alone in the group (one device, this one): there is nobody to send to.
            if send.recipients.count > 1, try await !accepted(in: id, { () async throws(ClientError) in try await relay.send(send, toGroup: id.hex, secret: secret) }) { continue }
            for case .message(let recording) in filing {
                if let stored = try store.message(sentBy: ownAddress, clientMessageId: recording.clientMessageId) {
                    try store.updateState(of: stored.id, to: .sent)
                }
            }
            return
        }
        throw ClientError.timedOut("the group kept changing; nothing was sent, try again")
    }

    // MARK: Receiving

    /// Processes the group entries of one mailbox page, in order: a Welcome joins a group (with the keys of
    /// the KeyPackage it names); a commit moves the group's state to the next epoch; an application message
    /// is filed in the group's conversation, in the transaction that saves the state that decrypted it.
    /// A message this device cannot use (a replay, one of an epoch already left, one under another group's
    /// id, or one for a group it is not in) changes nothing.
    func receiveGroupEntries(_ entries: [GroupDelivery], receivedAt: UInt64) async throws -> [EngineEvent] {
        var events: [EngineEvent] = []
        for entry in entries {
            guard let id = GroupId(hex: entry.groupId) else { continue }
            let message: MLSMessage
            do {
                guard let opened = try groupMessage(of: entry, in: id) else { continue }
                message = opened
            } catch {
                if let event = try recordGroupProblem(error, in: id, epoch: entry.epoch) { events.append(event) }
                continue
            }
            if case .welcome(let welcome) = message.body {
                events += try await join(welcome, id: id)
                continue
            }
            do {
                try Self.checkGroupRules(message, kind: entry.kind)
                events += try await process(message, in: id)
            } catch let error as MLSError {
                if case .generationUnavailable = error { continue }   // a replay: its key was used and deleted
                if case .credentialRejected = error, let event = try noticeRefusedLeaves(of: message, in: id) {
                    events.append(event)
                    continue
                }
                if let event = try recordGroupProblem(error, in: id, epoch: entry.epoch) { events.append(event) }
                events += try await recoverIfStuck(after: error, entry: entry, message: message, in: id)
            } catch let lost as OwnCommitLost {
                events += try await recoverIfStuck(after: .protocolViolation(lost.description), entry: entry, message: message, in: id)
            } catch ClientError.unknownGroup {
                try await receiveWhileLeaving(message, kind: entry.kind, in: id)
            }
        }
        return events
    }

    private func join(_ welcome: Welcome, id: GroupId) async throws -> [EngineEvent] {
        if let existing = try store.group(id), existing.active { return [] }
        guard let keys = try welcome.secrets.lazy.compactMap({ try self.store.keyPackageKeys(reference: $0.newMember) }).first else { return [] }
        let package = try KeyPackage(tlsEncoded: keys.keyPackage)
        let signer = try groupSignatureKey
        let group = try await withLeafCheck { validator in
            try Group.join(welcome: welcome, keyPackage: package, initPrivateKey: SecretBytes(keys.initPrivateKey),
                           encryptionPrivateKey: SecretBytes(keys.encryptionPrivateKey), signatureKey: signer, credentialValidator: validator)
        }
        guard group.context.groupID == id.bytes else { return [] }
        let record = Self.record(of: group, id: id, name: "", infoKey: nil)   // it follows from the adder (Engine+GroupInfoKey.swift)
        return try saveGroup(record, notices: [groupNotice("You were added to the group.", in: id)], change: .joined, usedKeyPackage: keys.reference)
    }

    private func process(_ message: MLSMessage, in id: GroupId) async throws -> [EngineEvent] {
        // Framing names the group: one under another id never reaches that group's state.
        switch message.body {
        case .publicMessage(let m): guard m.content.groupID == id.bytes else { return [] }
        case .privateMessage(let m): guard m.groupID == id.bytes else { return [] }
        default: return []
        }
        let outcome = try await withLeafCheck { validator -> (GroupRecord, Group, Group, Group.Processed)? in
            let (record, group) = try loadGroup(id, validator: validator)
            if try isOwnCopy(message, in: group, id: id) { return nil }
            var next = group
            let processed = try next.process(message)
            return (record, group, next, processed)
        }
        guard case let (record, group, next, processed)? = outcome else { return [] }
        var saved = Self.record(of: next, id: id, name: record.name, infoKey: Self.infoKey(after: next, before: group, held: record.infoKey))
        switch processed {
        case .application(let data, let leaf):
            // A late message of an epoch this device has left names its sender in that epoch's tree.
            let epoch = if case .privateMessage(let m) = message.body { m.epoch } else { group.epoch }
            guard let sender = next.credential(ofLeaf: leaf, inEpoch: epoch).flatMap({ GroupCredential.device(in: $0) }),
                  let content = try? Content(decoding: data), content.conversation == ConversationId.group(id) else {
                throw MLSError.protocolViolation("an application message that is not a Parley content of this group")
            }
            let fromSelf = sender.address == ownAddress.description
            switch content.body {
            case .groupName(let name):
                saved.name = PeerText.forName(name)
                guard saved.name != record.name else { break }
                // A joiner learns the name after the Welcome: that is no rename.
                guard !record.name.isEmpty else { return try saveGroup(saved, notices: [], change: .renamed(saved.name)) }
                let who = fromSelf ? "You" : sender.address
                let notice = groupNotice("\(who) renamed the group to \u{201C}\(saved.name)\u{201D}.", in: id)
                return try saveGroup(saved, notices: [notice], change: .renamed(saved.name))
            case .groupInfoKey(let epoch, let key):
                Self.adopt(infoKey: epoch, key, into: &saved)
                try store.saveGroup(saved)
                return []
            default:
                // Messages, receipts, typing, actions, timers: Engine+GroupContents.swift.
                return try fileGroupContent(content, from: sender, in: id, saving: saved)
            }
        case .removed:
            return try saveGroup(saved, notices: [groupNotice("You are no longer in the group.", in: id)], change: .ended)
        case .commit:
            if let change = membershipChange(from: record, to: saved) {
                return try saveGroup(saved, notices: change.notices, change: change.change)
            }
        case .proposal(.remove(let leaf), .member(let sender)) where leaf == sender:
            groupsWithLeavers.insert(id)   // a member asks to leave: committed after the drain (Engine+GroupLeavers.swift)
        case .proposal:
            break
        }
        try store.saveGroup(saved)
        return []
    }

    /// A group message that could not be processed is said in the group's conversation (never a silent
    /// drop); the state stays as it was.
    private func recordGroupProblem(_ error: MLSError, in id: GroupId, epoch: UInt64) throws -> EngineEvent? {
        guard let record = try store.group(id), record.active, epoch >= record.epoch else { return nil }
        let now = clock.nowMilliseconds()
        let reason = error.description
        try store.insertMessages([MessageRecord(conversation: .group(id), direction: .incoming, sender: DeviceAddress(address: "", deviceId: 0),
                                                clientMessageId: Content.newMessageId(), sentAt: now, receivedAt: now,
                                                text: "A group message could not be read: \(reason)", state: .failed)])
        return .undecryptable(from: nil, reason: reason)
    }

    // MARK: Reads

    public nonisolated func groups() throws -> [GroupRecord] { try store.groups() }

    public nonisolated func group(_ id: GroupId) throws -> GroupRecord {
        guard let record = try store.group(id) else { throw ClientError.unknownGroup(id.hex) }
        return record
    }
}

/// A Parley leaf's credential (PROTOCOL.md §16.2): `0x01 ‖ bytes16(account address) ‖ deviceId u32`.
enum GroupCredential {
    static func identity(_ device: DeviceAddress) -> [UInt8] {
        var w = ByteWriter(capacity: 64)
        w.u8(1)
        w.bytes16(Array(device.address.utf8))
        w.u32(device.deviceId)
        return w.bytes
    }

    static func device(in credential: Credential) -> DeviceAddress? {
        guard case .basic(let identity) = credential else { return nil }
        var r = ByteReader(identity, structure: "credential")
        guard (try? r.u8()) == 1, let address = try? r.bytes16(), let deviceId = try? r.u32(), (try? r.finish()) != nil,
              let text = String(validating: address, as: UTF8.self), (try? AccountAddress(text)) != nil else { return nil }
        return DeviceAddress(address: text, deviceId: deviceId)
    }
}

/// The MLS library's credential callback for Parley: a leaf is accepted only if the device list this
/// device holds for the credential's account has that device with the leaf's signature key. Accounts it
/// refused are remembered, so the engine can fetch their lists and try once more.
final class LeafCheck: @unchecked Sendable {
    private let lock = Lock()
    private let lists: [String: SignedDeviceList]
    private var refused: Set<String> = []
    private var refusedLeaves: Set<DeviceAddress> = []

    init(lists: [String: SignedDeviceList]) { self.lists = lists }

    var validator: CredentialValidator { { [self] credential, key in check(credential, key) } }

    var refusedAccounts: [String] { lock.withLock { refused.sorted() } }
    /// The devices whose leaves were refused (credentials that name one).
    var refusedDevices: [DeviceAddress] { lock.withLock { refusedLeaves.sorted { ($0.address, $0.deviceId) < ($1.address, $1.deviceId) } } }

    private func check(_ credential: Credential, _ signatureKey: [UInt8]) -> Bool {
        guard let device = GroupCredential.device(in: credential) else { return false }
        if let entry = lists[device.address]?.device(device.deviceId), constantTimeEquals(entry.identityKey.bytes, signatureKey) { return true }
        lock.withLock {
            refused.insert(device.address)
            refusedLeaves.insert(device)
        }
        return false
    }
}
