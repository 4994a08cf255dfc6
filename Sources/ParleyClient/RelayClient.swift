import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

/// The relay's HTTP API as async calls. Stateless apart from the bearer token the caller passes.
public struct RelayClient: RelayTransport {
    public let endpoint: RelayEndpoint
    private let http: RelayConnections
    private let timeout: TimeAmount

    public init(endpoint: RelayEndpoint, timeout: TimeAmount = .seconds(30)) throws(ClientError) {
        self.endpoint = endpoint
        self.timeout = timeout
        if let caFile = endpoint.caFile {
            let certificates: [NIOSSLCertificate]
            do { certificates = try NIOSSLCertificate.fromPEMFile(caFile) } catch {
                throw .network("cannot read CA file \(caFile): \(error)")
            }
            http = try Self.connections.connections(to: endpoint.baseURL, caFile: caFile, certificates: certificates)
        } else {
            http = try Self.connections.connections(to: endpoint.baseURL, caFile: nil, certificates: [])
        }
    }

    /// One set of kept-alive connections per relay and trust configuration, for the life of the process:
    /// RelayClient values are made and dropped freely (one per contact lookup, for instance).
    private static let connections = ConnectionTable()

    public func transport(to endpoint: RelayEndpoint) throws(ClientError) -> any RelayTransport {
        try RelayClient(endpoint: endpoint, timeout: timeout)
    }

    public func listen(token: @escaping @Sendable () async throws -> String, onWake: @escaping @Sendable () async -> Void,
                       onState: @escaping @Sendable (PushListener.State) async -> Void) async {
        await PushListener(endpoint: endpoint, token: token, onWake: onWake, onState: onState).run()
    }

    // MARK: Endpoints

    public func health() async throws(ClientError) -> HealthResponse { try await call(.GET, "/v1/health") }
    public func register(_ request: RegisterRequest) async throws(ClientError) -> AccountResponse { try await call(.POST, "/v1/accounts", body: request) }
    public func account(_ address: String) async throws(ClientError) -> AccountResponse { try await call(.GET, "/v1/accounts/" + escape(address)) }
    /// Publishes a newer signed device list for `address` (authorised by the account key's signature).
    public func publishDeviceList(_ update: DeviceListUpdate, address: String) async throws(ClientError) {
        try await callNoContent(.PUT, "/v1/accounts/\(escape(address))/devices", body: update)
    }
    /// Moves `address` to a new account key, vouched for by the old key's statement (PROTOCOL.md §3.5).
    public func changeAccountKey(_ request: AccountKeyChangeRequest, address: String) async throws(ClientError) {
        try await callNoContent(.PUT, "/v1/accounts/\(escape(address))/key", body: request)
    }
    public func challenge(_ request: ChallengeRequest) async throws(ClientError) -> ChallengeResponse { try await call(.POST, "/v1/auth/challenge", body: request) }
    public func session(_ request: SessionRequest) async throws(ClientError) -> SessionResponse { try await call(.POST, "/v1/auth/session", body: request) }
    public func uploadPreKeys(_ upload: PreKeyUpload, token: String) async throws(ClientError) { try await callNoContent(.PUT, "/v1/keys", body: upload, token: token) }
    public func preKeyCount(token: String) async throws(ClientError) -> PreKeyCount { try await call(.GET, "/v1/keys/count", token: token) }
    public func bundle(address: String, deviceId: UInt32) async throws(ClientError) -> BundleResponse {
        try await call(.GET, "/v1/keys/\(escape(address))/\(deviceId)")
    }
    /// Sealed with the recipient's delivery access key (`accessKey`), or with this device's `token`: for
    /// copies to this account's own other devices, and to an account on the same relay whose key this
    /// device does not hold (PROTOCOL.md §13.1). With neither, the recipient's budget for strangers pays.
    /// A relay short of space (507) keeps nothing: the message stays in the outbox, which is what the error says.
    public func send(_ request: SendRequest, to address: String, token: String? = nil, accessKey: [UInt8]? = nil) async throws(ClientError) {
        let headers = accessKey.map { [(DeliveryAccess.header, Data($0).base64EncodedString())] } ?? []
        do {
            _ = try await raw(.POST, "/v1/messages/" + escape(address), body: try encode(request), token: token, expect: [200, 204], headers: headers)
        } catch {
            throw error.asSendFailure
        }
    }
    /// Registers the verifier of this account's delivery access key.
    public func setDeliveryAccess(_ update: DeliveryAccessUpdate, token: String) async throws(ClientError) {
        try await callNoContent(.PUT, "/v1/delivery-access", body: update, token: token)
    }
    /// The oldest queued envelopes; with `after`, only those with larger ids (the page after one in hand).
    public func fetch(limit: Int = 100, after: String? = nil, token: String) async throws(ClientError) -> FetchResponse {
        try await call(.GET, "/v1/mailbox?limit=\(limit)" + (after.map { "&after=" + escapeQuery($0) } ?? ""), token: token)
    }
    public func acknowledge(_ ids: [String], token: String) async throws(ClientError) {
        try await callNoContent(.POST, "/v1/mailbox/ack", body: AckRequest(ids: ids), token: token)
    }
    /// Acknowledges, and gets the next page of at most `fetch` envelopes (with ids above `after`) in the same
    /// request; nil when the relay answers 204 (one from before pages came with acknowledgements).
    public func acknowledge(_ ids: [String], fetch limit: Int, after: String? = nil, token: String) async throws(ClientError) -> FetchResponse? {
        let path = "/v1/mailbox/ack?fetch=\(limit)" + (after.map { "&after=" + escapeQuery($0) } ?? "")
        let answer = try await raw(.POST, path, body: try encode(AckRequest(ids: ids)), token: token, expect: [200, 204])
        return answer.readableBytes == 0 ? nil : try decode(answer) as FetchResponse
    }
    public func createAttachment(size: Int, token: String) async throws(ClientError) -> AttachmentSlot {
        try await call(.POST, "/v1/attachments", body: AttachmentSlotRequest(size: size), token: token)
    }
    /// Fills the slot with its upload secret (no device token: the relay keeps no uploader with a blob).
    public func uploadAttachment(id: String, bytes: [UInt8], uploadSecret: String) async throws(ClientError) {
        _ = try await raw(.PUT, "/v1/attachments/" + escape(id), body: ByteBuffer(bytes: bytes), token: nil, expect: [204],
                          headers: [(RelayAPI.uploadSecretHeader, uploadSecret)])
    }
    public func createProvisioning() async throws(ClientError) -> ProvisioningSlot {
        try await call(.POST, "/v1/provisioning")
    }
    public func fillProvisioning(id: String, message: ProvisioningMessage, token: String) async throws(ClientError) {
        try await callNoContent(.PUT, "/v1/provisioning/" + escape(id), body: message, token: token)
    }
    /// The message once the existing device has left it, nil while the slot waits.
    public func collectProvisioning(id: String) async throws(ClientError) -> ProvisioningMessage? {
        let buffer = try await raw(.GET, "/v1/provisioning/" + escape(id), body: nil, token: nil, expect: [200, 204])
        guard buffer.readableBytes > 0 else { return nil }
        do { return try JSONDecoder().decode(ProvisioningMessage.self, from: Data(buffer.readableBytesView)) } catch {
            throw .malformedResponse("provisioning message")
        }
    }
    /// The blob, which must be at most `maxBytes` long (the pointer says how long it is; a relay that sends
    /// more is cut off rather than held in memory).
    public func downloadAttachment(id: String, maxBytes: Int) async throws(ClientError) -> [UInt8] {
        [UInt8](try await raw(.GET, "/v1/attachments/" + escape(id), body: nil, token: nil, expect: [200], limit: maxBytes).readableBytesView)
    }

    // MARK: Groups (PROTOCOL.md §17)

    public func uploadKeyPackages(_ upload: KeyPackageUpload, token: String) async throws(ClientError) {
        try await callNoContent(.PUT, "/v1/key-packages", body: upload, token: token)
    }
    public func keyPackageCount(token: String) async throws(ClientError) -> KeyPackageCount {
        try await call(.GET, "/v1/key-packages/count", token: token)
    }
    public func claimKeyPackages(of address: String) async throws(ClientError) -> KeyPackageClaim {
        try await call(.POST, "/v1/key-packages/\(escape(address))/claim")
    }
    public func createGroup(_ creation: GroupCreation, token: String) async throws(ClientError) -> GroupEpoch {
        try await call(.POST, "/v1/groups", body: creation, token: token)
    }
    public func commit(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) {
        try await groupCall("/v1/groups/\(escape(groupId))/commits", send, secret: secret)
    }
    public func send(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) {
        try await groupCall("/v1/groups/\(escape(groupId))/messages", send, secret: secret)
    }
    public func groupInfo(of groupId: String, token: String) async throws(ClientError) -> GroupInfoAnswer {
        try await call(.GET, "/v1/groups/\(escape(groupId))/group-info", token: token)
    }
    public func externalCommit(_ send: GroupSend, toGroup groupId: String, token: String) async throws(ClientError) {
        do {
            _ = try await raw(.POST, "/v1/groups/\(escape(groupId))/external-commits", body: try encode(send), token: token, expect: [200, 204])
        } catch {
            throw error.asSendFailure
        }
    }
    public func fetchWithGroups(limit: Int = 100, after: String? = nil, token: String) async throws(ClientError) -> FetchResponseV2 {
        let path = "/v1/mailbox?version=2&limit=\(limit)" + (after.map { "&after=" + escapeQuery($0) } ?? "")
        return try pageWithGroups(try await raw(.GET, path, body: nil, token: token, expect: [200]))
    }
    /// A relay from before groups answers the acknowledgement without a page (204), or with a version-1 page:
    /// the page is then asked for, or read, as version 1 (envelopes only).
    public func acknowledgeWithGroups(_ ids: [String], fetch limit: Int, after: String? = nil, token: String) async throws(ClientError) -> FetchResponseV2 {
        let path = "/v1/mailbox/ack?version=2&fetch=\(limit)" + (after.map { "&after=" + escapeQuery($0) } ?? "")
        let answer = try await raw(.POST, path, body: try encode(AckRequest(ids: ids)), token: token, expect: [200, 204])
        if answer.readableBytes == 0 { return try await fetchWithGroups(limit: limit, after: after, token: token) }
        return try pageWithGroups(answer)
    }

    /// A version-2 page, or a version-1 one (a relay from before groups ignores `version`) as its envelopes.
    private func pageWithGroups(_ buffer: ByteBuffer) throws(ClientError) -> FetchResponseV2 {
        if let page = buffer.withUnsafeReadableBytes({ FetchResponseV2(fastJSON: $0) }) { return page }
        if let page = try? JSONDecoder().decode(FetchResponseV2.self, from: Data(buffer.readableBytesView)) { return page }
        let old: FetchResponse = try decode(buffer)
        return FetchResponseV2(messages: old.messages.map { MailboxEntry(id: $0.id, receivedAt: $0.receivedAt, envelope: $0.envelope, group: nil) },
                               more: old.more, preKeysLow: old.preKeysLow, keyPackagesLow: false)
    }

    /// A group send or commit carries the epoch's send secret, never the device token (PROTOCOL.md §17.3).
    private func groupCall(_ path: String, _ send: GroupSend, secret: [UInt8]) async throws(ClientError) {
        let headers = [(RelayAPI.groupSecretHeader, Data(secret).base64EncodedString())]
        do {
            _ = try await raw(.POST, path, body: try encode(send), token: nil, expect: [200, 204], headers: headers)
        } catch {
            throw error.asSendFailure
        }
    }

    // MARK: Plumbing

    /// Characters left as they are in a path segment (built once: every send escapes an address).
    private static let segmentAllowed = CharacterSet.urlPathAllowed.subtracting(CharacterSet(charactersIn: "/"))

    private func escapeQuery(_ value: String) -> String {
        value.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
    }

    private func escape(_ segment: String) -> String {
        segment.addingPercentEncoding(withAllowedCharacters: Self.segmentAllowed) ?? segment
    }

    private func call<R: Decodable>(_ method: HTTPMethod, _ path: String, token: String? = nil) async throws(ClientError) -> R {
        try decode(try await raw(method, path, body: nil, token: token, expect: [200, 201]))
    }

    private func call<B: Encodable, R: Decodable>(_ method: HTTPMethod, _ path: String, body: B, token: String? = nil) async throws(ClientError) -> R {
        try decode(try await raw(method, path, body: try encode(body), token: token, expect: [200, 201]))
    }

    private func callNoContent<B: Encodable>(_ method: HTTPMethod, _ path: String, body: B, token: String? = nil) async throws(ClientError) {
        _ = try await raw(method, path, body: try encode(body), token: token, expect: [200, 204])
    }

    private func encode<B: Encodable>(_ body: B) throws(ClientError) -> ByteBuffer {
        if let hot = body as? any HotJSON { return ByteBuffer(bytes: hot.jsonBytes()) }
        do { return ByteBuffer(bytes: try JSONEncoder().encode(body)) } catch { throw .malformedResponse("cannot encode request: \(error)") }
    }

    /// `R` must be the response type itself (not an Optional of it) for the HotJSON path to apply.
    private func decode<R: Decodable>(_ buffer: ByteBuffer) throws(ClientError) -> R {
        if let hot = R.self as? any HotJSON.Type,
           let value = buffer.withUnsafeReadableBytes({ hot.init(fastJSON: $0) }) as? R { return value }
        do { return try JSONDecoder().decode(R.self, from: Data(buffer.readableBytesView)) } catch {
            throw .malformedResponse("\(R.self): \(error)")
        }
    }

    /// The most a JSON answer may hold: a mailbox page of 100 envelopes of up to ~240 KiB each (the relay's
    /// default cap is 96 KiB), with room to spare; a hostile relay cannot make the client hold more.
    static let jsonAnswerLimit = 32 << 20

    private func raw(_ method: HTTPMethod, _ path: String, body: ByteBuffer?, token: String?, expect: Set<Int>,
                     limit: Int = RelayClient.jsonAnswerLimit, headers extra: [(String, String)] = []) async throws(ClientError) -> ByteBuffer {
        var headers = extra
        if body != nil {
            headers.append(("Content-Type", path.hasPrefix("/v1/attachments/") ? "application/octet-stream" : "application/json"))
        }
        if let token { headers.append(("Authorization", "Bearer " + token)) }
        let response: RelayConnections.Response
        do {
            response = try await http.execute(method, path, headers: headers, body: body, timeout: timeout, limit: limit)
        } catch {
            throw .network(Self.describe(error) + (endpoint.baseURL.hasPrefix("http://") && Self.mayBeTLS(error) ? Self.tlsHint : ""))
        }
        guard expect.contains(response.status) else {
            throw ClientError(relayStatus: response.status, body: [UInt8](response.body.readableBytesView))
        }
        return response.body
    }

    /// Said when a plain request got no HTTP answer: a relay serving TLS on that port drops it (and logs
    /// an upgrade error), which looks like any other closed connection.
    static let tlsHint = " (the relay may serve TLS: pass --tls, with --ca-file for a private CA)"

    /// Whether the connection was made and then ended, or answered with something that is not HTTP: what
    /// a TLS server does with a plain request. Refusals and timeouts are not.
    private static func mayBeTLS(_ error: any Error) -> Bool {
        guard let failure = error as? RelayConnections.Failure else { return !(error is CancellationError) }
        return failure == .closed
    }

    private static func describe(_ error: any Error) -> String {
        if error is CancellationError { return "cancelled" }
        if let failure = error as? RelayConnections.Failure { return failure.description }
        return String(describing: error)
    }
}

/// The process-wide table behind `RelayClient.connections`, keyed by the relay's URL and the CA file's path
/// and contents (a replaced CA file gets new connections). A failed connection attempt is not retried: a
/// relay that is down answers "connection refused" at once, so `parley send` keeps the message in the
/// outbox and `parley receive` exits 3 without a 30-second hang.
private final class ConnectionTable: @unchecked Sendable {
    private var table: [String: RelayConnections] = [:]
    private let lock = ParleyCrypto.Lock()

    func connections(to baseURL: String, caFile: String?, certificates: [NIOSSLCertificate]) throws(ClientError) -> RelayConnections {
        let key = baseURL + "\n" + (caFile.map { $0 + "\n" + (FileManager.default.contents(atPath: $0)?.base64EncodedString() ?? "") } ?? "")
        if let existing = lock.withLock({ table[key] }) { return existing }
        guard let target = ConnectTarget(url: baseURL) else { throw .network("not a relay URL: \(baseURL)") }
        var context: NIOSSLContext?
        if target.secure {
            var tls = TLSConfiguration.makeClientConfiguration()
            if caFile != nil { tls.additionalTrustRoots = [.certificates(certificates)] }
            do { context = try NIOSSLContext(configuration: tls) } catch { throw .network("cannot set up TLS: \(error)") }
        }
        let made = RelayConnections(target: target, context: context)
        return lock.withLock {
            if let existing = table[key] { return existing }
            table[key] = made
            return made
        }
    }
}
