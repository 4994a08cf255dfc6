import Foundation
import Hummingbird
import HTTPTypes
import HummingbirdWebSocket
import NIOCore
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ServiceLifecycle

/// The HTTP face of `RelayCore`: every route decodes, rate-limits, authenticates where needed, calls the
/// core and encodes. Errors become `ErrorBody` JSON with the status of their `RelayError`.
struct RelayRoutes: Sendable {
    let core: RelayCore
    let ipLimiter: RateLimiter
    let accountLimiter: RateLimiter
    /// Per recipient account: sealed sends without its delivery access key and without a token.
    let strangerLimiter: RateLimiter
    let attachments: AttachmentFiles
    let bundleLimits: BundleLimits

    /// Every route, as (method, path) — the OpenAPI test compares this list with openapi/relay.yaml.
    static let endpoints: [(String, String)] = [
        ("GET", "/v1/health"),
        ("POST", "/v1/accounts"), ("GET", "/v1/accounts/{address}"), ("PUT", "/v1/accounts/{address}/devices"), ("PUT", "/v1/accounts/{address}/key"),
        ("PUT", "/v1/delivery-access"),
        ("POST", "/v1/auth/challenge"), ("POST", "/v1/auth/session"),
        ("PUT", "/v1/keys"), ("GET", "/v1/keys/count"), ("GET", "/v1/keys/{address}/{deviceId}"),
        ("POST", "/v1/messages/{address}"), ("GET", "/v1/mailbox"), ("POST", "/v1/mailbox/ack"),
        ("POST", "/v1/attachments"), ("PUT", "/v1/attachments/{id}"), ("GET", "/v1/attachments/{id}"),
        ("POST", "/v1/provisioning"), ("PUT", "/v1/provisioning/{id}"), ("GET", "/v1/provisioning/{id}"),
        ("GET", "/v1/push"),
        ("PUT", "/v1/key-packages"), ("GET", "/v1/key-packages/count"), ("POST", "/v1/key-packages/{address}/claim"),
        ("POST", "/v1/groups"), ("POST", "/v1/groups/{groupId}/commits"), ("POST", "/v1/groups/{groupId}/messages"),
        ("GET", "/v1/groups/{groupId}/group-info"), ("POST", "/v1/groups/{groupId}/external-commits"),
    ]

    func register(on router: Router<RelayRequestContext>) {
        router.middlewares.add(ErrorMiddleware(space: core.space))
        router.middlewares.add(IPRateLimitMiddleware(limiter: ipLimiter, metrics: core.metrics))
        let v1 = router.group("v1")

        v1.get("health") { _, context in
            // Degraded, with the reason, while under the free-space reserve or soon after a storage fault;
            // still a 200: the relay is up, and fetching and acknowledging work.
            let reason = await core.space.hasRoom(reusable: { try await core.storage.reusableBytes() }, logger: context.logger)
                ? core.space.recentFault()?.rawValue : "storage_low"
            return try json(HealthResponse(status: reason == nil ? "ok" : "degraded", name: core.configuration.name, version: "1", reason: reason))
        }
        v1.post("accounts") { request, context in
            try await core.requireRoom(logger: context.logger)
            let account = try await core.register(try await body(request, RegisterRequest.self))
            core.metrics.registrations.increment()
            return try json(account, status: .created)
        }
        v1.get("accounts/:address") { _, context in
            try json(try await core.account(try pathParameter(context, "address")))
        }
        v1.put("accounts/:address/devices") { request, context in
            // Authorised by the account key's signature on a strictly newer list, not by a device token:
            // a restored device has a new key the relay does not know yet.
            // The account's budget is charged only for an update that verified: a stranger's refused
            // requests must not use it up and keep the owner from publishing a list that revokes a device.
            let address = try core.parseLocalAddress(try pathParameter(context, "address"))
            try await core.updateDeviceList(try await body(request, DeviceListUpdate.self), for: address) {
                guard await accountLimiter.allow("devices:" + address) else { throw refused(by: "device_list") }
            }
            return Response(status: .noContent)
        }
        v1.put("accounts/:address/key") { request, context in
            // Authorised by the old account key's statement naming the new key, and a newer list signed by
            // the new key; charged to the account's budget as a device list is, once it verified.
            let address = try core.parseLocalAddress(try pathParameter(context, "address"))
            try await core.changeAccountKey(try await body(request, AccountKeyChangeRequest.self), for: address) {
                guard await accountLimiter.allow("devices:" + address) else { throw refused(by: "device_list") }
            }
            return Response(status: .noContent)
        }
        v1.put("delivery-access") { request, _ in
            let device = try await authenticate(request)
            try await core.setDeliveryAccess(try await body(request, DeliveryAccessUpdate.self), by: device)
            return Response(status: .noContent)
        }
        v1.post("auth/challenge") { request, _ in
            try json(try await core.challenge(try await body(request, ChallengeRequest.self)))
        }
        v1.post("auth/session") { request, _ in
            try json(try await core.session(try await body(request, SessionRequest.self)))
        }
        v1.put("keys") { request, context in
            let device = try await authenticate(request)
            try await core.requireRoom(logger: context.logger)
            try await core.uploadPreKeys(try await body(request, PreKeyUpload.self, limit: 1 << 20), by: device)
            return Response(status: .noContent)
        }
        v1.get("keys/count") { request, _ in
            try json(try await core.preKeyCount(for: try await authenticate(request)))
        }
        v1.get("keys/:address/:deviceId") { _, context in
            guard let deviceId = RelayCore.canonicalNumber(try pathParameter(context, "deviceId")).flatMap(UInt32.init) else {
                throw RelayError.badRequest("device id must be a number")
            }
            // Unauthenticated (a sender need not reveal itself), and each fetch takes a one-time prekey: so
            // limited per target account and per IP, far below the general limits; past the target device's
            // own budget the bundle comes without one-time prekeys instead of a refusal (BundleLimits).
            // Limited by the canonical address: spellings of one account (the host's letter case) share a budget.
            let address = try core.parseLocalAddress(try pathParameter(context, "address"))
            guard await accountLimiter.allow("bundle:" + address) else { throw refused(by: "bundle_account") }
            guard await bundleLimits.allow(ip: context.clientIP) else { throw refused(by: "bundle_ip") }
            let oneTime = await bundleLimits.mayTakeOneTimeKeys(of: DeviceAddress(address: address, deviceId: deviceId))
            if !oneTime { core.metrics.refused(by: "bundle_device") }   // served, without one-time prekeys
            return try json(try await core.bundle(address: address, deviceId: deviceId, takingOneTimeKeys: oneTime))
        }
        v1.post("messages/:address") { request, context in
            // Sealed sender: with the recipient's delivery access key (which only its contacts hold) the relay
            // never learns who sent this. Without it the sender shows its device token and is charged for the
            // send, or, with neither, it comes out of the recipient's small budget for strangers (PROTOCOL.md
            // §13.1). Copies to the sender's own other devices carry the device's token as well.
            let address = try core.parseLocalAddress(try pathParameter(context, "address"))
            try await core.requireRoom(logger: context.logger)
            let sender = request.headers[.authorization] == nil ? nil : try await authenticate(request)
            let accessKey = try request.headers[Self.accessKeyField].map { text in
                guard let key = Data(base64Encoded: text) else { throw RelayError.badRequest("\(DeliveryAccess.header) is not base64") }
                return [UInt8](key)
            }
            let send = try await body(request, SendRequest.self, limit: core.configuration.maxRequestBytes)
            // Charged once the request is well formed and admitted, one token per message, to the canonical
            // address (so neither garbage nor another spelling of the account spends or dodges its budget).
            let messages = try RelayCore.messageCount(of: send, limit: core.configuration.maxMessagesPerSend)
            let (admission, read) = try await core.admit(to: address, sender: sender, accessKey: accessKey)
            if admission == .stranger, core.configuration.strangerRate.perSecond <= 0 {
                throw RelayError.unauthorized("sending to \(address) needs its delivery access key or a device token")
            }
            // The sender's budget (or the strangers') first: a flood it refuses does not spend the recipient's.
            switch admission {
            case .authenticated(let from):
                guard await accountLimiter.allow("from:" + from, cost: Double(messages)) else { throw refused(by: "sender") }
            case .stranger:
                guard await strangerLimiter.allow(address, cost: Double(messages)) else { throw refused(by: "strangers") }
            case .ownAccount, .accessKey, .unrestricted:
                break
            }
            guard await accountLimiter.allow("send:" + address, cost: Double(messages)) else { throw refused(by: "recipient") }
            try await core.send(send, to: address, sender: sender, read: read)
            core.metrics.envelopesStored.increment(by: send.messages.count)
            return Response(status: .noContent)
        }
        v1.get("mailbox") { request, _ in
            let limit = request.uri.queryParameters.get("limit").flatMap(Int.init) ?? 100
            let after = try RelayCore.afterParameter(request.uri.queryParameters.get("after"))
            if let token = try await knownToken(request) {
                if try Self.wantsGroups(request) { return try json(try await core.fetchWithGroups(token: token, limit: limit, after: after)) }
                return try json(try await core.fetch(token: token, limit: limit, after: after))
            }
            let device = try await authenticate(request)
            if try Self.wantsGroups(request) { return try json(try await core.fetchWithGroups(for: device, limit: limit, after: after)) }
            return try json(try await core.fetch(for: device, limit: limit, after: after))
        }
        v1.post("mailbox/ack") { request, _ in
            // ?fetch=N: the answer carries the next page, as GET /v1/mailbox?limit=N would.
            let fetch = request.uri.queryParameters.get("fetch").map { Int($0) ?? 100 }
            let after = try RelayCore.afterParameter(request.uri.queryParameters.get("after"))
            if let fetch, let token = try await knownToken(request) {
                let acknowledged = try await body(request, AckRequest.self)
                if try Self.wantsGroups(request) {
                    return try json(try await core.acknowledgeWithGroups(acknowledged, token: token, fetch: fetch, after: after))
                }
                return try json(try await core.acknowledge(acknowledged, token: token, fetch: fetch, after: after))
            }
            let device = try await authenticate(request)
            if try Self.wantsGroups(request), let fetch {
                return try json(try await core.acknowledgeWithGroups(try await body(request, AckRequest.self), for: device, fetch: fetch, after: after))
            }
            guard let page = try await core.acknowledge(try await body(request, AckRequest.self), for: device, fetch: fetch, after: after) else {
                return Response(status: .noContent)
            }
            return try json(page)
        }
        v1.post("attachments") { request, context in
            // Authenticated for the account's quota only: the slot itself is not tied to the account.
            let device = try await authenticate(request)
            let slot = try await body(request, AttachmentSlotRequest.self)
            return try json(try await attachments.createSlot(slot, account: device.address, logger: context.logger), status: .created)
        }
        v1.put("attachments/:id") { request, context in
            // Filled with the slot's upload secret, not a device token: the relay learns no uploader here.
            let secret = request.headers[HTTPField.Name(RelayAPI.uploadSecretHeader)!]
            try await attachments.upload(id: try context.parameters.require("id"), from: request.body, secret: secret, logger: context.logger)
            return Response(status: .noContent)
        }
        v1.get("attachments/:id") { _, context in
            try await attachments.download(id: try context.parameters.require("id"))
        }
        // Linking a new device: it opens a slot and polls it; an existing device of the account fills it.
        v1.post("provisioning") { request, _ in
            // The slot takes no body; an oversized one is refused as on every other route, not drained.
            var request = request
            do { _ = try await request.collectBody(upTo: 1024) } catch {
                throw RelayError.payloadTooLarge("this request takes no body")
            }
            return try json(try await core.createProvisioning(), status: .created)
        }
        v1.put("provisioning/:id") { request, context in
            let device = try await authenticate(request)
            try await core.requireRoom(logger: context.logger)
            let message = try await body(request, ProvisioningMessage.self, limit: core.configuration.maxProvisioningBytes * 2)
            try await core.fillProvisioning(id: try context.parameters.require("id"), with: message, by: device)
            return Response(status: .noContent)
        }
        v1.get("provisioning/:id") { _, context in
            guard let message = try await core.takeProvisioning(id: try context.parameters.require("id")) else {
                return Response(status: .noContent)
            }
            return try json(message)
        }
        // MLS delivery (PROTOCOL.md §17).
        v1.put("key-packages") { request, context in
            let device = try await authenticate(request)
            try await core.requireRoom(logger: context.logger)
            try await core.uploadKeyPackages(try await body(request, KeyPackageUpload.self, limit: 4 << 20), by: device)
            return Response(status: .noContent)
        }
        v1.get("key-packages/count") { request, _ in
            try json(try await core.keyPackageCount(for: try await authenticate(request)))
        }
        v1.post("key-packages/:address/claim") { request, context in
            // Unauthenticated, as prekey bundles are, and limited the same way: per target account and per IP.
            var request = request
            do { _ = try await request.collectBody(upTo: 1024) } catch {
                throw RelayError.payloadTooLarge("this request takes no body")
            }
            let address = try core.parseLocalAddress(try pathParameter(context, "address"))
            guard await accountLimiter.allow("keypackages:" + address) else { throw refused(by: "key_package_account") }
            guard await bundleLimits.allow(ip: context.clientIP) else { throw refused(by: "bundle_ip") }
            return try json(try await core.claimKeyPackages(of: address))
        }
        v1.post("groups") { request, context in
            _ = try await authenticate(request)
            try await core.requireRoom(logger: context.logger)
            return try json(try await core.createGroup(try await body(request, GroupCreation.self)), status: .created)
        }
        v1.post("groups/:groupId/commits") { request, context in
            try await groupSend(request, context, commit: true)
        }
        v1.post("groups/:groupId/messages") { request, context in
            try await groupSend(request, context, commit: false)
        }
        // Rejoining (PROTOCOL.md §17.9): the device token, as the rejoiner is known by its device.
        v1.get("groups/:groupId/group-info") { request, context in
            let device = try await authenticate(request)
            return try json(try await core.groupInfo(try pathParameter(context, "groupId"), for: device))
        }
        v1.post("groups/:groupId/external-commits") { request, context in
            let device = try await authenticate(request)
            let groupId = try pathParameter(context, "groupId")
            _ = try RelayCore.parseGroupId(groupId)
            try await core.requireRoom(logger: context.logger)
            let send = try await body(request, GroupSend.self, limit: groupSendBodyLimit(commit: true))
            guard await accountLimiter.allow("group:" + groupId) else { throw refused(by: "group") }
            core.metrics.envelopesStored.increment(by: try await core.externalCommit(groupId, send, by: device))
            return Response(status: .noContent)
        }
        // Only a plain GET gets here (a WebSocket upgrade is answered by `registerPush`'s router): say that
        // the route wants an upgrade instead of the framework's 404.
        v1.get("push") { request, _ -> Response in
            _ = try await authenticate(request)
            var response = try json(ErrorBody(error: "upgrade_required", message: "GET /v1/push is a WebSocket upgrade"), status: .upgradeRequired)
            response.headers[.upgrade] = "websocket"
            return response
        }
    }

    /// The push channel: after authentication, the relay writes the text `wake` whenever mail arrives for
    /// this device, and nothing else. A newer connection for the device closes this one with 4409.
    func registerPush(on router: Router<RelayRequestContext>, connectionIds: ConnectionCounter) {
        router.ws("v1/push") { request, _ in
            do {
                _ = try await authenticate(request)
                return .upgrade([:])
            } catch {
                return .dontUpgrade
            }
        } onUpgrade: { inbound, outbound, context in
            context.requestContext.releaseWebSocketReference()
            guard let device = try? await authenticate(context.request) else { return }
            let id = connectionIds.next()
            // Wake-ups coalesce (one pending is enough); an end is kept however many wake-ups follow it.
            let (events, continuation) = AsyncStream.makeStream(of: PushEnd?.self, bufferingPolicy: .bufferingNewest(1))
            // (Set once the end is signalled, so later wake-ups cannot push it out of the one-element buffer.)
            let ended = OnceFlag()
            await core.broker.subscribe(device, id: id, wake: { if !ended.isSet { continuation.yield(nil) } },
                                        end: { reason in ended.setIfUnset(); continuation.yield(reason) })
            core.metrics.pushConnections.increment()
            defer { core.metrics.pushConnections.decrement() }
            // Drain the inbound side so pings and the client's close are handled. The stream ends when the
            // client goes, with or without an error (otherwise the loop below would wait forever).
            let reader = Task {
                defer { continuation.finish() }
                for try await _ in inbound {}
            }
            defer { reader.cancel() }
            // On SIGTERM/SIGINT stop waiting for mail: the graceful shutdown waits for this handler, and a
            // client that never answers the close frame kept the relay running forever.
            try await withGracefulShutdownHandler {
                try await outbound.write(.text(RelayAPI.wakeToken))
                for await end in events {
                    switch end {
                    case nil:
                        try await outbound.write(.text(RelayAPI.wakeToken))
                        continue
                    case .displaced:
                        try? await outbound.close(.unknown(RelayAPI.closeConnectedElsewhere), reason: "connected elsewhere")
                    case .revoked:
                        try? await outbound.close(.unknown(RelayAPI.closeRevoked), reason: "device revoked")
                    }
                    break
                }
            } onGracefulShutdown: {
                continuation.finish()
            }
            await core.broker.unsubscribe(device, id: id)
        }
    }

    // MARK: Helpers

    /// A path parameter, percent-decoded: the router does not decode, and clients encode what RFC 3986 lets
    /// them (OpenAPI clients the `@` and `:` of an address, ParleyClient the `[` `]` of an IPv6 relay name).
    private func pathParameter(_ context: RelayRequestContext, _ name: String) throws -> String {
        guard let value = try context.parameters.require(name).removingPercentEncoding else {
            throw RelayError.badRequest("malformed percent-encoding in the path")
        }
        return value
    }

    /// The refusal of the rate limiter named `limiter`, counted (by that name only).
    private func refused(by limiter: String) -> RelayError {
        core.metrics.refused(by: limiter)
        return .rateLimited
    }

    private static let accessKeyField = HTTPField.Name(DeliveryAccess.header)!
    private static let groupSecretField = HTTPField.Name(RelayAPI.groupSecretHeader)!

    /// `?version=2` asks for group messages among the 1:1 envelopes; absent or 1, the version-1 page.
    private static func wantsGroups(_ request: Request) throws -> Bool {
        switch request.uri.queryParameters.get("version") {
        case nil, "1": false
        case "2": true
        default: throw RelayError.badRequest("'version' must be 1 or 2")
        }
    }

    /// A group send's JSON: the message and a commit's GroupInfo in base64, and two lists of devices.
    /// Base64 takes 4/3 of the bytes, JSON escapes a little more: twice each part's cap, plus the recipient
    /// lists (a commit's recipients, its Welcome's and its rejoiners).
    private func groupSendBodyLimit(commit: Bool) -> Int {
        let configuration = core.configuration
        guard commit else { return configuration.maxEnvelopeBytes * 2 + configuration.maxGroupRecipients * 128 + 4096 }
        return (configuration.maxGroupHandshakeBytes * 2 + configuration.maxGroupInfoBytes) * 2 + configuration.maxGroupRecipients * 3 * 128 + 8192
    }

    /// A group message or commit: authorised by the epoch's secret (no device token: the sender stays
    /// unknown), limited per IP (the middleware) and per group.
    private func groupSend(_ request: Request, _ context: RelayRequestContext, commit: Bool) async throws -> Response {
        let groupId = try pathParameter(context, "groupId")
        _ = try RelayCore.parseGroupId(groupId)
        try await core.requireRoom(logger: context.logger)
        let secret = try request.headers[Self.groupSecretField].map { text in
            guard let bytes = Data(base64Encoded: text) else { throw RelayError.badRequest("\(RelayAPI.groupSecretHeader) is not base64") }
            return [UInt8](bytes)
        }
        let send = try await body(request, GroupSend.self, limit: groupSendBodyLimit(commit: commit))
        guard await accountLimiter.allow("group:" + groupId) else { throw refused(by: "group") }
        let stored = try await core.sendToGroup(groupId, send, secret: secret, commit: commit)
        core.metrics.envelopesStored.increment(by: stored)
        return Response(status: .noContent)
    }

    /// The request's bearer token when this node knows its account (`RelayCore.knownOwner(ofToken:)`), the
    /// account's rate limit charged: the storage then checks the token with the request's own read. Nil
    /// otherwise: the request takes `authenticate` (which makes the account known for the next one).
    private func knownToken(_ request: Request) async throws -> String? {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else { return nil }
        let token = String(header.dropFirst("Bearer ".count))
        guard let owner = core.knownOwner(ofToken: token) else { return nil }
        guard await accountLimiter.allow("account:" + owner) else { throw refused(by: "account") }
        return token
    }

    private func authenticate(_ request: Request) async throws -> DeviceAddress {
        guard let header = request.headers[.authorization], header.hasPrefix("Bearer ") else {
            throw RelayError.unauthorized("missing bearer token")
        }
        let device = try await core.authenticate(token: String(header.dropFirst("Bearer ".count)))
        guard await accountLimiter.allow("account:" + device.address) else { throw refused(by: "account") }
        return device
    }

    private func body<T: Decodable>(_ request: Request, _ type: T.Type, limit: Int = 64 * 1024) async throws -> T {
        var request = request
        let buffer: ByteBuffer
        do { buffer = try await request.collectBody(upTo: limit) } catch {
            throw RelayError.payloadTooLarge("the request body exceeds \(limit) bytes")
        }
        if let hot = T.self as? any HotJSON.Type,
           let value = buffer.withUnsafeReadableBytes({ hot.init(fastJSON: $0) }) as? T { return value }
        do { return try JSONDecoder().decode(T.self, from: Data(buffer.readableBytesView)) } catch {
            throw RelayError.badRequest("malformed JSON: \(Self.describe(error))")
        }
    }

    private static func describe(_ error: any Error) -> String {
        switch error as? DecodingError {
        case .keyNotFound(let key, _): "missing field '\(key.stringValue)'"
        case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c):
            c.codingPath.isEmpty ? c.debugDescription : "field '\(c.codingPath.map(\.stringValue).joined(separator: "."))': \(c.debugDescription)"
        default: "not valid JSON"
        }
    }
}

func json<T: Encodable>(_ value: T, status: HTTPResponse.Status = .ok) throws -> Response {
    if let hot = value as? any HotJSON {
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: hot.jsonBytes())))
    }
    let data = try JSONEncoder().encode(value)
    return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
}

/// Gives each push connection an id, so a displaced connection's cleanup cannot remove its successor.
final class ConnectionCounter: @unchecked Sendable {
    private var value: UInt64 = 0
    private let lock = Lock()
    func next() -> UInt64 { lock.withLock { value += 1; return value } }
}

/// Turns `RelayError` (and anything unexpected) into a JSON error response. A storage fault (a full disk,
/// too many open files…) gets its own status, code and log line; only what is left is a 500.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext
    let space: StorageSpace

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        do {
            return try await next(request, context)
        } catch let error as RelayError {
            if case .deviceMismatch(let missing, let extra, let stale) = error {
                return try json(DeviceMismatch(missingDevices: missing, extraDevices: extra, staleDevices: stale), status: error.status)
            }
            if case .epochConflict(let epoch) = error {
                return try json(EpochConflict(error: error.code, message: error.message, epoch: epoch), status: error.status)
            }
            return try Self.answer(error)
        } catch let error as HTTPError {
            return try json(ErrorBody(error: "http", message: error.body ?? "\(error.status)"), status: error.status)
        } catch {
            if let fault = StorageFault.of(error) {
                space.record(fault, logger: context.logger)
                return try Self.answer(.storage(fault))
            }
            context.logger.error("unexpected error: \(String(describing: type(of: error)))")
            return try json(ErrorBody(error: "internal", message: "internal error"), status: .internalServerError)
        }
    }

    private static func answer(_ error: RelayError) throws -> Response {
        var response = try json(ErrorBody(error: error.code, message: error.message), status: error.status)
        if case .storage(let fault) = error { response.headers[.retryAfter] = String(fault.retryAfterSeconds) }
        return response
    }
}

struct IPRateLimitMiddleware: RouterMiddleware {
    typealias Context = RelayRequestContext
    let limiter: RateLimiter
    let metrics: RelayMetrics
    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        guard await limiter.allow(context.clientIP) else {
            metrics.refused(by: "ip")
            throw RelayError.rateLimited
        }
        return try await next(request, context)
    }
}
