import Foundation
import ParleyProtocol
import ParleyRelayAPI

/// What the engine needs from a relay: its HTTP API as calls, the push channel, and a way to reach other
/// relays (contacts' relays). `RelayClient` speaks HTTP; tests put the relay core in the same process
/// (ParleyTestSupport's in-process relay), so the engine's logic runs against the real relay rules without
/// spawning the relay binary. Errors are the ones `RelayClient` throws for the same answers.
public protocol RelayTransport: Sendable {
    /// Where the relay lives. Other relays this device reaches are held to its choices (TLS, `--insecure`,
    /// the CA file): see `RelayEndpoint.init(peer:home:)`.
    var endpoint: RelayEndpoint { get }
    /// The transport to another relay, at `endpoint`, made the way this one was.
    func transport(to endpoint: RelayEndpoint) throws(ClientError) -> any RelayTransport
    /// Holds the push channel open until the task is cancelled: `onWake` on every wake-up and after every
    /// (re)connect, `onState` on every change of the connection.
    func listen(token: @escaping @Sendable () async throws -> String, onWake: @escaping @Sendable () async -> Void,
                onState: @escaping @Sendable (PushListener.State) async -> Void) async

    func health() async throws(ClientError) -> HealthResponse
    func register(_ request: RegisterRequest) async throws(ClientError) -> AccountResponse
    func account(_ address: String) async throws(ClientError) -> AccountResponse
    /// Publishes a newer signed device list for `address` (authorised by the account key's signature).
    func publishDeviceList(_ update: DeviceListUpdate, address: String) async throws(ClientError)
    /// Moves `address` to a new account key: the old key's statement naming it, and a newer list it signed.
    func changeAccountKey(_ request: AccountKeyChangeRequest, address: String) async throws(ClientError)
    func challenge(_ request: ChallengeRequest) async throws(ClientError) -> ChallengeResponse
    func session(_ request: SessionRequest) async throws(ClientError) -> SessionResponse
    func uploadPreKeys(_ upload: PreKeyUpload, token: String) async throws(ClientError)
    func preKeyCount(token: String) async throws(ClientError) -> PreKeyCount
    func bundle(address: String, deviceId: UInt32) async throws(ClientError) -> BundleResponse
    /// Sealed with the recipient's delivery access key (`accessKey`), or with this device's `token`
    /// (PROTOCOL.md §13.1). A relay short of space throws `relayOutOfSpace` and keeps nothing.
    func send(_ request: SendRequest, to address: String, token: String?, accessKey: [UInt8]?) async throws(ClientError)
    /// Registers the verifier of this account's delivery access key.
    func setDeliveryAccess(_ update: DeliveryAccessUpdate, token: String) async throws(ClientError)
    /// The oldest queued envelopes; with `after`, only those with larger ids (the page after one in hand).
    func fetch(limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponse
    func acknowledge(_ ids: [String], token: String) async throws(ClientError)
    /// Acknowledges, and gets the next page of at most `limit` envelopes (with ids above `after`) in the same
    /// request; nil from a relay that answers without a page (one from before pages came with acknowledgements).
    func acknowledge(_ ids: [String], fetch limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponse?
    func createAttachment(size: Int, token: String) async throws(ClientError) -> AttachmentSlot
    /// Fills the slot with its upload secret (no device token: the relay keeps no uploader with a blob).
    func uploadAttachment(id: String, bytes: [UInt8], uploadSecret: String) async throws(ClientError)
    /// The blob, which must be at most `maxBytes` long.
    func downloadAttachment(id: String, maxBytes: Int) async throws(ClientError) -> [UInt8]
    func createProvisioning() async throws(ClientError) -> ProvisioningSlot
    func fillProvisioning(id: String, message: ProvisioningMessage, token: String) async throws(ClientError)
    /// The message once the existing device has left it, nil while the slot waits.
    func collectProvisioning(id: String) async throws(ClientError) -> ProvisioningMessage?

    // MARK: Groups: the MLS delivery service (PROTOCOL.md §17)

    /// Adds this device's KeyPackages (and replaces its last-resort one, if given).
    func uploadKeyPackages(_ upload: KeyPackageUpload, token: String) async throws(ClientError)
    func keyPackageCount(token: String) async throws(ClientError) -> KeyPackageCount
    /// One KeyPackage for every device of `address`'s current list that has one (no credentials).
    func claimKeyPackages(of address: String) async throws(ClientError) -> KeyPackageClaim
    /// Registers a new group at epoch 0 (the one group request that carries a device token).
    func createGroup(_ creation: GroupCreation, token: String) async throws(ClientError) -> GroupEpoch
    /// A commit from `send.epoch`, authorised by that epoch's send `secret` (no token): `epochConflict` when
    /// another commit took the epoch first.
    func commit(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError)
    /// An application message (or proposal) of `send.epoch`, authorised by that epoch's send `secret`.
    func send(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError)
    /// The mailbox, version 2: 1:1 envelopes and group messages in the order they were stored.
    func fetchWithGroups(limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponseV2
    /// Acknowledges, and gets the next version-2 page of at most `limit` entries (ids above `after`).
    func acknowledgeWithGroups(_ ids: [String], fetch limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponseV2
    /// The GroupInfo the last commit left, for this device if that commit named it a rejoiner (PROTOCOL.md §17.9).
    func groupInfo(of groupId: String, token: String) async throws(ClientError) -> GroupInfoAnswer
    /// An external commit of this device rejoining the group, authorised by its token.
    func externalCommit(_ send: GroupSend, toGroup groupId: String, token: String) async throws(ClientError)
}

extension RelayTransport {
    /// A transport without rejoining (a test double) answers as a relay from before it would.
    public func groupInfo(of groupId: String, token: String) async throws(ClientError) -> GroupInfoAnswer {
        throw ClientError.relay(status: 404, code: "not_found", message: "this relay keeps no GroupInfo")
    }

    public func externalCommit(_ send: GroupSend, toGroup groupId: String, token: String) async throws(ClientError) {
        throw ClientError.relay(status: 404, code: "not_found", message: "this relay takes no external commit")
    }
}

extension RelayTransport {
    public func send(_ request: SendRequest, to address: String, token: String? = nil) async throws(ClientError) {
        try await send(request, to: address, token: token, accessKey: nil)
    }

    public func fetch(limit: Int = 100, token: String) async throws(ClientError) -> FetchResponse {
        try await fetch(limit: limit, after: nil, token: token)
    }

    public func acknowledge(_ ids: [String], fetch limit: Int, token: String) async throws(ClientError) -> FetchResponse? {
        try await acknowledge(ids, fetch: limit, after: nil, token: token)
    }

    /// The relay that serves `address`: this one when the address is on `homeRelay` (this account's relay
    /// name), else the contact's relay, reached as `RelayEndpoint.init(peer:home:)` decides.
    public func relay(serving address: AccountAddress, homeRelay: String) throws(ClientError) -> any RelayTransport {
        guard address.relay != homeRelay else { return self }
        return try transport(to: try RelayEndpoint(peer: address.relay, home: endpoint))
    }
}

/// A relay's answer to a refused request, as a `ClientError` (the same for every transport).
extension ClientError {
    public init(relayStatus status: Int, body: [UInt8]) {
        let data = Data(body)
        if status == 409 || status == 410, let mismatch = try? JSONDecoder().decode(DeviceMismatch.self, from: data) {
            self = .deviceMismatch(mismatch)
            return
        }
        if status == 409, let conflict = try? JSONDecoder().decode(EpochConflict.self, from: data), conflict.error == "epoch_conflict" {
            self = .epochConflict(current: conflict.epoch)
            return
        }
        if status == 429 {
            self = .rateLimited
            return
        }
        let parsed = try? JSONDecoder().decode(ErrorBody.self, from: data)
        self = .relay(status: status, code: parsed?.error ?? "http_\(status)", message: parsed?.message ?? "HTTP \(status)")
    }

    /// What a refused send means for the sender: a relay short of space (507) keeps nothing, and the
    /// message stays in the outbox, which is what the error says.
    public var asSendFailure: ClientError {
        if case .relay(status: 507, let code, _) = self { return .relayOutOfSpace(mailboxFull: code == "mailbox_full") }
        return self
    }
}
