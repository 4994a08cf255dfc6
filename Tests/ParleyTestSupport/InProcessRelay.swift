import Foundation
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelay
import ParleyRelayAPI

/// Relays in this process, each the real relay core (`RelayCalls` over `RelayCore`) on an in-memory SQLite
/// database with a `LocalWakeBroker`, reached by their endpoint's URL as over a network: a transport asked
/// for a URL no relay serves here (the wrong scheme, say) gets `ClientError.network`, as a refused
/// connection would. Every URL asked for is recorded (`requestedURLs`).
public final class InProcessNetwork: @unchecked Sendable {
    private let lock = Lock()
    private var relays: [String: InProcessRelay] = [:]
    private var requested: [String] = []
    private var nextConnection: UInt64 = 0

    public init() {}

    /// A relay named `name` (`HOST[:PORT]`), served at https://`name` when `tls`, else http://`name` (as
    /// `RelayEndpoint` spells them). `configure` changes its configuration (limits) before it starts.
    @discardableResult
    public func addRelay(_ name: String, tls: Bool = false, clock: any WallClock = SystemWallClock(),
                         configure: (inout RelayConfiguration) -> Void = { _ in }) throws -> InProcessRelay {
        var configuration = RelayConfiguration(name: name, host: "127.0.0.1", port: 0, dataDirectory: NSTemporaryDirectory())
        configuration.removeRateLimits()
        // No free-space reserve: the test machine's disk is not what these tests are about.
        configuration.minFreeSpaceBytes = 0
        configure(&configuration)
        let core = RelayCore(configuration: configuration, storage: try SQLiteRelayStorage.inMemory(), broker: LocalWakeBroker(), clock: clock)
        let endpoint = try RelayEndpoint(relay: name, tls: tls, insecure: true)
        let relay = InProcessRelay(endpoint: endpoint, calls: RelayCalls(core: core), network: self, tap: RelayTap())
        lock.withLock { relays[endpoint.baseURL] = relay }
        return relay
    }

    /// The URLs transports were asked for (by `transport(to:)`), in order.
    public var requestedURLs: [String] { lock.withLock { requested } }

    func relay(at endpoint: RelayEndpoint) throws(ClientError) -> InProcessRelay {
        let found = lock.withLock {
            requested.append(endpoint.baseURL)
            return relays[endpoint.baseURL]
        }
        guard let found else { throw .network("no relay at \(endpoint.baseURL) in this process") }
        return InProcessRelay(endpoint: endpoint, calls: found.calls, network: self, tap: found.tap)
    }

    func connectionId() -> UInt64 { lock.withLock { nextConnection += 1; return nextConnection } }
}

/// What a test sees of, and does to, one in-process relay's traffic: sends refused with a status instead
/// of reaching the relay (a relay busy, 503, or short of space, 507), the requests counted, and a look at
/// the client's store at the moment it acknowledges.
public final class RelayTap: @unchecked Sendable {
    private let lock = Lock()
    private var refusals: [Int] = []
    private var refusing: Int?
    private var counts: [String: Int] = [:]
    private var acknowledging: (@Sendable ([String]) async -> Void)?

    public init() {}

    /// The next `statuses.count` sends are refused with these statuses, in order.
    public func refuseNextSends(_ statuses: [Int]) { lock.withLock { refusals += statuses } }

    /// Every send is refused with `status` until this is called again with nil.
    public func refuseSends(_ status: Int?) { lock.withLock { refusing = status } }

    /// Runs before each acknowledgement reaches the relay, with the ids acknowledged.
    public func beforeAcknowledging(_ look: @escaping @Sendable ([String]) async -> Void) { lock.withLock { acknowledging = look } }

    /// How many requests of a kind were made: "send" (refused ones included), "fetch", "ack" (alone),
    /// "ack+fetch" (an acknowledgement that asks for the next page), "bundle".
    public func count(_ kind: String) -> Int { lock.withLock { counts[kind, default: 0] } }

    func record(_ kind: String) { lock.withLock { counts[kind, default: 0] += 1 } }

    func sendRefusal() -> Int? {
        lock.withLock {
            counts["send", default: 0] += 1
            return refusals.isEmpty ? refusing : refusals.removeFirst()
        }
    }

    func willAcknowledge(_ ids: [String]) async {
        if let look = lock.withLock({ acknowledging }) { await look(ids) }
    }

    private var afterCommit: (@Sendable () async throws -> Void)?

    /// Runs once, right after the next commit the relay accepts and before its sender hears so: what other
    /// devices do in that moment (a commit of their own, say) happens between the commit and whatever its
    /// sender does next.
    public func afterNextAcceptedCommit(_ interlude: @escaping @Sendable () async throws -> Void) { lock.withLock { afterCommit = interlude } }

    func commitAccepted() async throws {
        let interlude = lock.withLock {
            defer { afterCommit = nil }
            return afterCommit
        }
        try await interlude?()
    }
}

/// One relay of an `InProcessNetwork` as a `RelayTransport`: each call goes to the relay core as the
/// matching HTTP route would, and a refusal comes back as the `ClientError` its HTTP answer makes.
/// Attachments are not served (they are files and streams, tested against the relay process).
public struct InProcessRelay: RelayTransport {
    public let endpoint: RelayEndpoint
    public let calls: RelayCalls
    let network: InProcessNetwork
    public let tap: RelayTap

    public var name: String { calls.name }

    public func transport(to endpoint: RelayEndpoint) throws(ClientError) -> any RelayTransport {
        try network.relay(at: endpoint)
    }

    /// The push channel on the relay's wake broker: a wake-up on connecting and on every broker wake, until
    /// the task is cancelled or the relay ends the connection (the device was revoked or connected again).
    public func listen(token: @escaping @Sendable () async throws -> String, onWake: @escaping @Sendable () async -> Void,
                       onState: @escaping @Sendable (PushListener.State) async -> Void) async {
        while !Task.isCancelled {
            await onState(.connecting)
            do {
                let device = try await calls.device(token: try await token())
                let id = network.connectionId()
                let (events, continuation) = AsyncStream.makeStream(of: PushEnd?.self, bufferingPolicy: .bufferingNewest(1))
                await calls.broker.subscribe(device, id: id, wake: { continuation.yield(nil) },
                                             end: { continuation.yield($0); continuation.finish() })
                await onState(.connected)
                await onWake()
                await withTaskCancellationHandler {
                    for await end in events {
                        guard end == nil else { break }
                        await onWake()
                    }
                } onCancel: {
                    continuation.finish()
                }
                await calls.broker.unsubscribe(device, id: id)
                await onState(.disconnected("closed by the relay"))
            } catch {
                await onState(.disconnected(String(describing: error)))
            }
            try? await Task.sleep(for: .milliseconds(100))
        }
    }

    public func health() async throws(ClientError) -> HealthResponse { await calls.health() }

    public func register(_ request: RegisterRequest) async throws(ClientError) -> AccountResponse {
        try await answer { () async throws(RelayRefusal) in try await calls.register(request) }
    }

    public func account(_ address: String) async throws(ClientError) -> AccountResponse {
        try await answer { () async throws(RelayRefusal) in try await calls.account(address) }
    }

    public func publishDeviceList(_ update: DeviceListUpdate, address: String) async throws(ClientError) {
        try await answer { () async throws(RelayRefusal) in try await calls.publishDeviceList(update, address: address) }
    }

    public func changeAccountKey(_ request: AccountKeyChangeRequest, address: String) async throws(ClientError) {
        try await answer { () async throws(RelayRefusal) in try await calls.changeAccountKey(request, address: address) }
    }

    public func challenge(_ request: ChallengeRequest) async throws(ClientError) -> ChallengeResponse {
        try await answer { () async throws(RelayRefusal) in try await calls.challenge(request) }
    }

    public func session(_ request: SessionRequest) async throws(ClientError) -> SessionResponse {
        try await answer { () async throws(RelayRefusal) in try await calls.session(request) }
    }

    public func uploadPreKeys(_ upload: PreKeyUpload, token: String) async throws(ClientError) {
        try await answer { () async throws(RelayRefusal) in try await calls.uploadPreKeys(upload, token: token) }
    }

    public func preKeyCount(token: String) async throws(ClientError) -> PreKeyCount {
        try await answer { () async throws(RelayRefusal) in try await calls.preKeyCount(token: token) }
    }

    public func bundle(address: String, deviceId: UInt32) async throws(ClientError) -> BundleResponse {
        tap.record("bundle")
        return try await answer { () async throws(RelayRefusal) in try await calls.bundle(address: address, deviceId: deviceId) }
    }

    public func send(_ request: SendRequest, to address: String, token: String?, accessKey: [UInt8]?) async throws(ClientError) {
        do throws(ClientError) {
            if let status = tap.sendRefusal() {
                throw ClientError(relayStatus: status, body: Array(#"{"error":"injected","message":"refused by the test"}"#.utf8))
            }
            try await answer { () async throws(RelayRefusal) in
                try await calls.send(request, to: address, token: token, accessKey: accessKey)
            }
        } catch {
            throw error.asSendFailure
        }
    }

    public func setDeliveryAccess(_ update: DeliveryAccessUpdate, token: String) async throws(ClientError) {
        try await answer { () async throws(RelayRefusal) in try await calls.setDeliveryAccess(update, token: token) }
    }

    public func fetch(limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponse {
        tap.record("fetch")
        return try await answer { () async throws(RelayRefusal) in try await calls.fetch(limit: limit, after: after, token: token) }
    }

    public func acknowledge(_ ids: [String], token: String) async throws(ClientError) {
        tap.record("ack")
        await tap.willAcknowledge(ids)
        _ = try await answer { () async throws(RelayRefusal) in try await calls.acknowledge(ids, fetch: nil, after: nil, token: token) }
    }

    public func acknowledge(_ ids: [String], fetch limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponse? {
        tap.record("ack+fetch")
        await tap.willAcknowledge(ids)
        return try await answer { () async throws(RelayRefusal) in try await calls.acknowledge(ids, fetch: limit, after: after, token: token) }
    }

    public func createAttachment(size: Int, token: String) async throws(ClientError) -> AttachmentSlot { throw Self.noAttachments }
    public func uploadAttachment(id: String, bytes: [UInt8], uploadSecret: String) async throws(ClientError) { throw Self.noAttachments }
    public func downloadAttachment(id: String, maxBytes: Int) async throws(ClientError) -> [UInt8] { throw Self.noAttachments }

    public func createProvisioning() async throws(ClientError) -> ProvisioningSlot {
        try await answer { () async throws(RelayRefusal) in try await calls.createProvisioning() }
    }

    public func fillProvisioning(id: String, message: ProvisioningMessage, token: String) async throws(ClientError) {
        try await answer { () async throws(RelayRefusal) in try await calls.fillProvisioning(id: id, message: message, token: token) }
    }

    public func collectProvisioning(id: String) async throws(ClientError) -> ProvisioningMessage? {
        try await answer { () async throws(RelayRefusal) in try await calls.collectProvisioning(id: id) }
    }

    public func uploadKeyPackages(_ upload: KeyPackageUpload, token: String) async throws(ClientError) {
        try await answer { () async throws(RelayRefusal) in try await calls.uploadKeyPackages(upload, token: token) }
    }

    public func keyPackageCount(token: String) async throws(ClientError) -> KeyPackageCount {
        try await answer { () async throws(RelayRefusal) in try await calls.keyPackageCount(token: token) }
    }

    public func claimKeyPackages(of address: String) async throws(ClientError) -> KeyPackageClaim {
        tap.record("claim")
        return try await answer { () async throws(RelayRefusal) in try await calls.claimKeyPackages(of: address) }
    }

    public func createGroup(_ creation: GroupCreation, token: String) async throws(ClientError) -> GroupEpoch {
        try await answer { () async throws(RelayRefusal) in try await calls.createGroup(creation, token: token) }
    }

    public func commit(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) {
        tap.record("commit")
        try await answer { () async throws(RelayRefusal) in try await calls.sendToGroup(groupId, send, secret: secret, commit: true) }
        do { try await tap.commitAccepted() } catch { throw .network("the test's interlude after a commit failed: \(error)") }
    }

    public func send(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) {
        tap.record("group send")
        try await answer { () async throws(RelayRefusal) in try await calls.sendToGroup(groupId, send, secret: secret, commit: false) }
    }

    public func groupInfo(of groupId: String, token: String) async throws(ClientError) -> GroupInfoAnswer {
        tap.record("group info")
        return try await answer { () async throws(RelayRefusal) in try await calls.groupInfo(of: groupId, token: token) }
    }

    public func externalCommit(_ send: GroupSend, toGroup groupId: String, token: String) async throws(ClientError) {
        tap.record("external commit")
        try await answer { () async throws(RelayRefusal) in try await calls.externalCommit(send, toGroup: groupId, token: token) }
    }

    public func fetchWithGroups(limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponseV2 {
        tap.record("fetch")
        return try await answer { () async throws(RelayRefusal) in try await calls.fetchWithGroups(limit: limit, after: after, token: token) }
    }

    public func acknowledgeWithGroups(_ ids: [String], fetch limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponseV2 {
        tap.record("ack+fetch")
        await tap.willAcknowledge(ids)
        return try await answer { () async throws(RelayRefusal) in try await calls.acknowledgeWithGroups(ids, fetch: limit, after: after, token: token) }
    }

    private static let noAttachments = ClientError.relay(status: 501, code: "not_in_process", message: "attachments are not served in process")

    private func answer<R>(_ body: () async throws(RelayRefusal) -> R) async throws(ClientError) -> R {
        do { return try await body() } catch {
            throw ClientError(relayStatus: error.status, body: error.body)
        }
    }
}
