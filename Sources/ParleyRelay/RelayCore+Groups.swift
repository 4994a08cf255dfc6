import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

/// The relay as MLS delivery service (PROTOCOL.md §17): a KeyPackage directory per device, groups known
/// only by an opaque id and an epoch, one commit per epoch, and group messages stored once. A group send
/// or commit is authorised by the epoch's send secret, not by a device token: the relay does not learn
/// which member sent it.
extension RelayCore {
    // MARK: KeyPackages

    func uploadKeyPackages(_ upload: KeyPackageUpload, by device: DeviceAddress) async throws {
        guard let account = try await verifiedAccount(device.address), account.deviceList.device(device.deviceId) != nil else {
            throw RelayError.forbidden("device not in the account's list")
        }
        guard upload.keyPackages.count <= 100 else { throw RelayError.badRequest("at most 100 KeyPackages per upload") }
        for package in upload.keyPackages + (upload.lastResort.map { [$0] } ?? []) {
            guard !package.bytes.isEmpty else { throw RelayError.badRequest("a KeyPackage is empty") }
            guard package.bytes.count <= configuration.maxKeyPackageBytes else {
                throw RelayError.payloadTooLarge("a KeyPackage exceeds \(configuration.maxKeyPackageBytes) bytes")
            }
        }
        guard try await storage.storeKeyPackages(upload.keyPackages.map(\.bytes), lastResort: upload.lastResort?.bytes, for: device,
                                                 limit: configuration.maxStoredKeyPackages) else {
            throw RelayError.badRequest("a device holds at most \(configuration.maxStoredKeyPackages) KeyPackages")
        }
    }

    func keyPackageCount(for device: DeviceAddress) async throws -> KeyPackageCount {
        let stock = try await storage.keyPackageCount(for: device)
        return KeyPackageCount(keyPackages: stock.count, lastResort: stock.lastResort, low: stock.count < configuration.keyPackageLowWatermark)
    }

    /// One KeyPackage for each device of the account's current list (consumed; a device's last-resort one
    /// when it has no other left, not consumed). Devices with none are left out.
    func claimKeyPackages(of rawAddress: String) async throws -> KeyPackageClaim {
        let address = try parseLocalAddress(rawAddress)
        guard let account = try await verifiedAccount(address) else { throw RelayError.notFound("no account \(address)") }
        var claimed: [ClaimedKeyPackage] = []
        var low: [DeviceAddress] = []
        for entry in account.deviceList.devices {
            let device = DeviceAddress(address: address, deviceId: entry.deviceId)
            guard let package = try await storage.claimKeyPackage(for: device) else { continue }
            claimed.append(ClaimedKeyPackage(deviceId: entry.deviceId, keyPackage: Base64Bytes(package.package), lastResort: package.lastResort))
            if try await storage.keyPackageCount(for: device).count < configuration.keyPackageLowWatermark { low.append(device) }
        }
        // As for prekeys: a device left low is woken at once, and the mailbox page it then fetches (version 2)
        // says `keyPackagesLow`, so it uploads more before the last-resort package is all that is left.
        if !low.isEmpty { await broker.wake(low) }
        return KeyPackageClaim(keyPackages: claimed)
    }

    // MARK: Groups

    /// A group id as the API writes it: 32 bytes in lowercase hex.
    static func parseGroupId(_ text: String) throws -> [UInt8] {
        guard text.utf8.count == 2 * RelayAPI.groupIdLength, text.utf8.allSatisfy({ (0x30...0x39).contains($0) || (0x61...0x66).contains($0) }),
              let bytes = Hex.decode(text) else {
            throw RelayError.badRequest("a group id is \(RelayAPI.groupIdLength) bytes in lowercase hex")
        }
        return bytes
    }

    private static func checkVerifier(_ verifier: Base64Bytes) throws {
        guard verifier.bytes.count == SHA256.outputLength else { throw RelayError.badRequest("a verifier is \(SHA256.outputLength) bytes") }
    }

    func createGroup(_ creation: GroupCreation) async throws -> GroupEpoch {
        let groupId = try Self.parseGroupId(creation.groupId)
        try Self.checkVerifier(creation.verifier)
        guard try await storage.createGroup(groupId, verifier: creation.verifier.bytes) else {
            throw RelayError.conflict("the group id is taken")
        }
        return GroupEpoch(groupId: creation.groupId, epoch: 0)
    }

    /// Stores a group message (or, with `commit`, a commit ending the epoch) once, with an entry in each
    /// recipient device's mailbox. Authorised by `secret`, the epoch's send secret, checked in constant time
    /// against the verifier the group's creation or the epoch's commit registered.
    /// Returns the devices woken.
    func sendToGroup(_ rawGroupId: String, _ send: GroupSend, secret: [UInt8]?, commit: Bool) async throws -> Int {
        try await storeInGroup(rawGroupId, send, commit: commit, authorisedBy: .secret(secret))
    }

    /// What authorises a write to a group: the epoch's send secret (a member's send or commit), or the device
    /// token of a device the stored GroupInfo names as a rejoiner (an external commit, PROTOCOL.md §17.9).
    enum GroupAuthorisation {
        case secret([UInt8]?)
        case rejoiner(DeviceAddress)
    }

    func storeInGroup(_ rawGroupId: String, _ send: GroupSend, commit: Bool, authorisedBy authorisation: GroupAuthorisation) async throws -> Int {
        let groupId = try Self.parseGroupId(rawGroupId)
        if commit {
            guard let next = send.nextVerifier else { throw RelayError.badRequest("a commit carries the next epoch's verifier") }
            try Self.checkVerifier(next)
        } else {
            guard send.nextVerifier == nil else { throw RelayError.badRequest("only a commit carries a next verifier") }
            guard !send.recipients.isEmpty else { throw RelayError.badRequest("no recipients") }
        }
        let rejoin = try rejoinRecord(of: send, commit: commit)
        guard !send.message.bytes.isEmpty else { throw RelayError.badRequest("the message is empty") }
        if commit {
            guard send.message.bytes.count <= configuration.maxGroupHandshakeBytes else {
                throw RelayError.payloadTooLarge("a commit exceeds \(configuration.maxGroupHandshakeBytes) bytes")
            }
        } else {
            guard send.welcome == nil else { throw RelayError.badRequest("only a commit carries a Welcome") }
            guard send.message.bytes.count <= configuration.maxEnvelopeBytes else {
                throw RelayError.payloadTooLarge("a group message exceeds \(configuration.maxEnvelopeBytes) bytes")
            }
        }
        if let welcome = send.welcome {
            guard !welcome.message.bytes.isEmpty, !welcome.recipients.isEmpty else { throw RelayError.badRequest("a Welcome is empty or for nobody") }
            guard welcome.message.bytes.count <= configuration.maxGroupHandshakeBytes else {
                throw RelayError.payloadTooLarge("a Welcome exceeds \(configuration.maxGroupHandshakeBytes) bytes")
            }
            guard welcome.recipients.count <= configuration.maxGroupRecipients else {
                throw RelayError.badRequest("at most \(configuration.maxGroupRecipients) recipients")
            }
        }
        guard send.recipients.count <= configuration.maxGroupRecipients else {
            throw RelayError.badRequest("at most \(configuration.maxGroupRecipients) recipients")
        }
        if case .secret(let secret) = authorisation, secret?.count != RelayAPI.groupSecretLength {
            throw RelayError.unauthorized("a group send needs the epoch's \(RelayAPI.groupSecretLength)-byte secret in \(RelayAPI.groupSecretHeader)")
        }
        let reader = LocalAddressReader(relayName: configuration.name)
        func devices(_ named: [GroupRecipient]) throws -> [DeviceAddress] {
            var devices: [DeviceAddress] = []
            var seen = Set<DeviceAddress>()
            for recipient in named {
                let device = DeviceAddress(address: try parseLocalAddress(recipient.address, with: reader), deviceId: recipient.deviceId)
                guard seen.insert(device).inserted else { throw RelayError.badRequest("\(device.address)#\(device.deviceId) is named twice") }
                devices.append(device)
            }
            return devices
        }
        let recipients = try devices(send.recipients)
        let welcomed = try send.welcome.map { try devices($0.recipients) } ?? []
        for _ in 0..<Self.listChangeRetries {
            guard let group = try await storage.group(groupId) else { throw RelayError.notFound("no group \(rawGroupId)") }
            guard group.epoch == send.epoch else { throw RelayError.epochConflict(group.epoch) }
            try await authorise(authorisation, send, groupId: groupId, group: group)
            // Every recipient is a device of its account's current list; the lists are passed to the storage,
            // which stores only if they are still these (a device revoked meanwhile gets nothing).
            // The accounts are read in one query (one per account was most of a commit's time at 1,000).
            let addresses = Set((recipients + welcomed).map(\.address)).sorted()
            let stored = try await storage.accounts(addresses)
            var lists: [String: [UInt8]] = [:]
            var known: [String: Set<UInt32>] = [:]
            for address in addresses {
                guard let read = stored[address] else { throw RelayError.notFound("no account \(address)") }
                let account = try verified(read, of: address)
                lists[address] = account.storedList
                known[address] = Set(account.deviceList.devices.map(\.deviceId))
            }
            if let unknown = (recipients + welcomed).first(where: { known[$0.address]?.contains($0.deviceId) != true }) {
                throw RelayError.notFound("no device \(unknown.deviceId) of \(unknown.address)")
            }
            let now = clock.nowMilliseconds()
            var write = GroupMessageWrite(
                groupId: groupId, epoch: send.epoch, nextVerifier: commit ? send.nextVerifier?.bytes : nil, message: send.message.bytes,
                recipients: recipients, deviceLists: lists, now: now, expiresAt: now + configuration.messageTTL,
                mailboxLimit: configuration.maxMailboxMessages, groupInfo: rejoin?.groupInfo, rejoiners: rejoin?.rejoiners)
            write.welcome = send.welcome.map { GroupWelcomeWrite(message: $0.message.bytes, recipients: welcomed) }
            let result = try await storage.storeGroupMessage(write)
            switch result {
            case .stored:
                await broker.wake(recipients + welcomed)
                return recipients.count + welcomed.count
            case .deviceListChanged:
                continue
            case .epochIs(let epoch):
                throw RelayError.epochConflict(epoch)
            case .unknownGroup:
                throw RelayError.notFound("no group \(rawGroupId)")
            case .mailboxFull(let device):
                throw RelayError.mailboxFull("the mailbox of \(device.address)#\(device.deviceId) is full")
            }
        }
        throw RelayError.conflict("the device lists of the recipients keep changing; try again")
    }

    // MARK: Mailbox, version 2

    /// The mailbox with group messages among the 1:1 envelopes (`?version=2`).
    func fetchWithGroups(for device: DeviceAddress, limit: Int, after: Int64 = 0) async throws -> FetchResponseV2 {
        let page = try await storage.fetch(for: device, now: clock.nowMilliseconds(), limit: Self.pageSize(limit), after: after, groups: true)
        return try await responseWithGroups(page, for: device)
    }

    /// Deletes the acknowledged entries (a group message's copy with its last entry) and returns the next
    /// page, version 2.
    func acknowledgeWithGroups(_ request: AckRequest, for device: DeviceAddress, fetch: Int, after: Int64 = 0) async throws -> FetchResponseV2 {
        let ids = try Self.messageIds(of: request)
        let page = try await storage.acknowledge(ids, for: device, thenFetch: Self.pageSize(fetch), after: after, now: clock.nowMilliseconds(),
                                                 groups: true)
        metrics.envelopesDelivered.increment(by: page.acknowledged)
        return try await responseWithGroups(page, for: device)
    }

    func responseWithGroups(_ page: MailboxPage, for device: DeviceAddress) async throws -> FetchResponseV2 {
        let entries = page.messages.map { stored in
            MailboxEntry(id: String(stored.id), receivedAt: stored.receivedAt,
                         envelope: stored.group == nil ? Base64Bytes(stored.envelope) : nil,
                         group: stored.group.map { group in
                             GroupDelivery(groupId: Hex.encode(group.groupId), epoch: group.epoch, kind: group.isCommit ? "commit" : "message",
                                           message: Base64Bytes(group.message))
                         })
        }
        let keyPackages = if let counted = page.keyPackages { counted } else { try await storage.keyPackageCount(for: device).count }
        return FetchResponseV2(messages: entries, more: page.more,
                               preKeysLow: min(page.oneTimePreKeys, page.oneTimePQPreKeys) < configuration.preKeyLowWatermark,
                               keyPackagesLow: keyPackages < configuration.keyPackageLowWatermark)
    }
}
