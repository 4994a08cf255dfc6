import Foundation
import Logging
import ParleyProtocol
import ParleyRelayAPI

/// The relay's API as calls on `RelayCore`, without HTTP: what each route of `RelayRoutes` does — the
/// bearer token checked, a send admitted by token or delivery access key (PROTOCOL.md §13.1), the free
/// space checked before writes — but no rate limits and no attachments. For a relay in the same process as
/// its clients (ParleyTestSupport's in-process relay), so client logic is tested against the relay's rules.
/// A refusal is thrown as the answer the HTTP route would give (`RelayRefusal`).
public struct RelayCalls: Sendable {
    let core: RelayCore
    private let logger = Logger(label: "parley-relay.in-process")

    public init(core: RelayCore) {
        self.core = core
    }

    public var name: String { core.configuration.name }
    public var broker: any WakeBroker { core.broker }

    public func health() async -> HealthResponse {
        HealthResponse(status: "ok", name: name, version: "1", reason: nil)
    }

    public func register(_ request: RegisterRequest) async throws(RelayRefusal) -> AccountResponse {
        try await answering {
            try await core.requireRoom(logger: logger)
            return try await core.register(request)
        }
    }

    public func account(_ address: String) async throws(RelayRefusal) -> AccountResponse {
        try await answering { try await core.account(address) }
    }

    public func publishDeviceList(_ update: DeviceListUpdate, address: String) async throws(RelayRefusal) {
        try await answering { try await core.updateDeviceList(update, for: address) }
    }

    public func changeAccountKey(_ request: AccountKeyChangeRequest, address: String) async throws(RelayRefusal) {
        try await answering { try await core.changeAccountKey(request, for: address) }
    }

    public func challenge(_ request: ChallengeRequest) async throws(RelayRefusal) -> ChallengeResponse {
        try await answering { try await core.challenge(request) }
    }

    public func session(_ request: SessionRequest) async throws(RelayRefusal) -> SessionResponse {
        try await answering { try await core.session(request) }
    }

    /// The device a token belongs to (the push channel's check).
    public func device(token: String) async throws(RelayRefusal) -> DeviceAddress {
        try await answering { try await core.authenticate(token: token) }
    }

    public func uploadPreKeys(_ upload: PreKeyUpload, token: String) async throws(RelayRefusal) {
        try await answering {
            let device = try await core.authenticate(token: token)
            try await core.requireRoom(logger: logger)
            try await core.uploadPreKeys(upload, by: device)
        }
    }

    public func preKeyCount(token: String) async throws(RelayRefusal) -> PreKeyCount {
        try await answering { try await core.preKeyCount(for: try await core.authenticate(token: token)) }
    }

    public func bundle(address: String, deviceId: UInt32) async throws(RelayRefusal) -> BundleResponse {
        try await answering { try await core.bundle(address: address, deviceId: deviceId, takingOneTimeKeys: true) }
    }

    public func send(_ request: SendRequest, to rawAddress: String, token: String?, accessKey: [UInt8]?) async throws(RelayRefusal) {
        try await answering {
            let address = try core.parseLocalAddress(rawAddress)
            try await core.requireRoom(logger: logger)
            var sender: DeviceAddress?
            if let token { sender = try await core.authenticate(token: token) }
            _ = try RelayCore.messageCount(of: request, limit: core.configuration.maxMessagesPerSend)
            let (admission, read) = try await core.admit(to: address, sender: sender, accessKey: accessKey)
            if admission == .stranger, core.configuration.strangerRate.perSecond <= 0 {
                throw RelayError.unauthorized("sending to \(address) needs its delivery access key or a device token")
            }
            try await core.send(request, to: address, sender: sender, read: read)
        }
    }

    public func setDeliveryAccess(_ update: DeliveryAccessUpdate, token: String) async throws(RelayRefusal) {
        try await answering { try await core.setDeliveryAccess(update, by: try await core.authenticate(token: token)) }
    }

    /// The token is checked in the mailbox's read (`RelayCore.fetch(token:limit:after:)`).
    public func fetch(limit: Int, after: String?, token: String) async throws(RelayRefusal) -> FetchResponse {
        try await answering { try await core.fetch(token: token, limit: limit, after: try RelayCore.afterParameter(after)) }
    }

    /// With `fetch` (a page size), the next page after `after` comes back too, the token checked in the
    /// same read.
    public func acknowledge(_ ids: [String], fetch: Int?, after: String?, token: String) async throws(RelayRefusal) -> FetchResponse? {
        try await answering {
            let afterId = try RelayCore.afterParameter(after)
            if let fetch { return try await core.acknowledge(AckRequest(ids: ids), token: token, fetch: fetch, after: afterId) }
            let device = try await core.authenticate(token: token)
            return try await core.acknowledge(AckRequest(ids: ids), for: device, fetch: nil, after: afterId)
        }
    }

    public func createProvisioning() async throws(RelayRefusal) -> ProvisioningSlot {
        try await answering { try await core.createProvisioning() }
    }

    public func fillProvisioning(id: String, message: ProvisioningMessage, token: String) async throws(RelayRefusal) {
        try await answering {
            let device = try await core.authenticate(token: token)
            try await core.requireRoom(logger: logger)
            try await core.fillProvisioning(id: id, with: message, by: device)
        }
    }

    public func collectProvisioning(id: String) async throws(RelayRefusal) -> ProvisioningMessage? {
        try await answering { try await core.takeProvisioning(id: id) }
    }

    /// Runs `body`, turning what it throws into the answer `ErrorMiddleware` would send.
    private func answering<R>(_ body: () async throws -> R) async throws(RelayRefusal) -> R {
        do { return try await body() } catch {
            throw RelayRefusal(error)
        }
    }
}

/// A refused request: the status and JSON body the relay's HTTP routes answer it with.
public struct RelayRefusal: Error, Sendable {
    public let status: Int
    public let body: [UInt8]

    init(_ error: any Error) {
        let relayError: RelayError
        switch error {
        case let error as RelayError: relayError = error
        case let error where StorageFault.of(error) != nil: relayError = .storage(StorageFault.of(error)!)
        default:
            status = 500
            body = Array(#"{"error":"internal","message":"internal error"}"#.utf8)
            return
        }
        status = Int(relayError.status.code)
        if case .deviceMismatch(let missing, let extra, let stale) = relayError {
            body = Array((try? JSONEncoder().encode(DeviceMismatch(missingDevices: missing, extraDevices: extra, staleDevices: stale))) ?? Data())
        } else if case .epochConflict(let epoch) = relayError {
            body = Array((try? JSONEncoder().encode(EpochConflict(error: relayError.code, message: relayError.message, epoch: epoch))) ?? Data())
        } else {
            body = Array((try? JSONEncoder().encode(ErrorBody(error: relayError.code, message: relayError.message))) ?? Data())
        }
    }
}
