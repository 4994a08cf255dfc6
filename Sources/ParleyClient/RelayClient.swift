import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ParleyCrypto
import ParleyRelayAPI

/// The relay's HTTP API as async calls. Stateless apart from the bearer token the caller passes.
public struct RelayClient: Sendable {
    public let endpoint: RelayEndpoint
    private let http: HTTPClient
    private let timeout: TimeAmount

    public init(endpoint: RelayEndpoint, timeout: TimeAmount = .seconds(30)) throws(ClientError) {
        self.endpoint = endpoint
        self.timeout = timeout
        if let caFile = endpoint.caFile {
            let certificates: [NIOSSLCertificate]
            do { certificates = try NIOSSLCertificate.fromPEMFile(caFile) } catch {
                throw .network("cannot read CA file \(caFile): \(error)")
            }
            http = Self.clients.client(caFile: caFile, certificates: certificates)
        } else {
            http = Self.clients.client(caFile: nil, certificates: [])
        }
    }

    /// One HTTP client per trust configuration, kept for the life of the process (like `HTTPClient.shared`):
    /// an `HTTPClient` must be shut down before it is released (debug builds trap otherwise), and
    /// RelayClient values are made and dropped freely (one per contact lookup, for instance).
    private static let clients = HTTPClients()

    // MARK: Endpoints

    public func health() async throws(ClientError) -> HealthResponse { try await call(.GET, "/v1/health") }
    public func register(_ request: RegisterRequest) async throws(ClientError) -> AccountResponse { try await call(.POST, "/v1/accounts", body: request) }
    public func account(_ address: String) async throws(ClientError) -> AccountResponse { try await call(.GET, "/v1/accounts/" + escape(address)) }
    /// Publishes a newer signed device list for `address` (authorised by the account key's signature).
    public func publishDeviceList(_ update: DeviceListUpdate, address: String) async throws(ClientError) {
        try await callNoContent(.PUT, "/v1/accounts/\(escape(address))/devices", body: update)
    }
    public func challenge(_ request: ChallengeRequest) async throws(ClientError) -> ChallengeResponse { try await call(.POST, "/v1/auth/challenge", body: request) }
    public func session(_ request: SessionRequest) async throws(ClientError) -> SessionResponse { try await call(.POST, "/v1/auth/session", body: request) }
    public func uploadPreKeys(_ upload: PreKeyUpload, token: String) async throws(ClientError) { try await callNoContent(.PUT, "/v1/keys", body: upload, token: token) }
    public func preKeyCount(token: String) async throws(ClientError) -> PreKeyCount { try await call(.GET, "/v1/keys/count", token: token) }
    public func bundle(address: String, deviceId: UInt32) async throws(ClientError) -> BundleResponse {
        try await call(.GET, "/v1/keys/\(escape(address))/\(deviceId)")
    }
    /// `token`: only for copies to this account's own other devices (see PROTOCOL.md §13).
    public func send(_ request: SendRequest, to address: String, token: String? = nil) async throws(ClientError) {
        try await callNoContent(.POST, "/v1/messages/" + escape(address), body: request, token: token)
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
        return answer.readableBytes == 0 ? nil : try decode(answer)
    }
    public func createAttachment(size: Int, token: String) async throws(ClientError) -> AttachmentSlot {
        try await call(.POST, "/v1/attachments", body: AttachmentSlotRequest(size: size), token: token)
    }
    public func uploadAttachment(id: String, bytes: [UInt8], token: String) async throws(ClientError) {
        _ = try await raw(.PUT, "/v1/attachments/" + id, body: ByteBuffer(bytes: bytes), token: token, expect: [204])
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
    public func downloadAttachment(id: String) async throws(ClientError) -> [UInt8] {
        [UInt8](try await raw(.GET, "/v1/attachments/" + id, body: nil, token: nil, expect: [200]).readableBytesView)
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

    private func decode<R: Decodable>(_ buffer: ByteBuffer) throws(ClientError) -> R {
        if let hot = R.self as? any HotJSON.Type,
           let value = buffer.withUnsafeReadableBytes({ hot.init(fastJSON: $0) }) as? R { return value }
        do { return try JSONDecoder().decode(R.self, from: Data(buffer.readableBytesView)) } catch {
            throw .malformedResponse("\(R.self): \(error)")
        }
    }

    private func raw(_ method: HTTPMethod, _ path: String, body: ByteBuffer?, token: String?, expect: Set<Int>) async throws(ClientError) -> ByteBuffer {
        var request = HTTPClientRequest(url: endpoint.baseURL + path)
        request.method = method
        if let body {
            request.body = .bytes(body)
            request.headers.add(name: "Content-Type", value: path.hasPrefix("/v1/attachments/") ? "application/octet-stream" : "application/json")
        }
        if let token { request.headers.add(name: "Authorization", value: "Bearer " + token) }
        let status: Int
        let buffer: ByteBuffer
        do {
            let response = try await http.execute(request, timeout: timeout)
            status = Int(response.status.code)
            buffer = try await response.body.collect(upTo: 128 << 20)
        } catch {
            throw .network(Self.describe(error))
        }
        guard expect.contains(status) else { throw Self.error(status: status, body: buffer) }
        return buffer
    }

    private static func error(status: Int, body: ByteBuffer) -> ClientError {
        let data = Data(body.readableBytesView)
        if status == 409 || status == 410, let mismatch = try? JSONDecoder().decode(DeviceMismatch.self, from: data) {
            return .deviceMismatch(mismatch)
        }
        if status == 429 { return .rateLimited }
        let parsed = try? JSONDecoder().decode(ErrorBody.self, from: data)
        return .relay(status: status, code: parsed?.error ?? "http_\(status)", message: parsed?.message ?? "HTTP \(status)")
    }

    private static func describe(_ error: any Error) -> String {
        let text = String(describing: error)
        if text.contains("connectionRefused") || text.contains("Connection refused") { return "connection refused" }
        if text.contains("deadlineExceeded") || text.contains("Timeout") { return "timed out" }
        return text
    }
}

/// The process-wide table behind `RelayClient.clients`, keyed by the CA file's path and contents (a
/// replaced CA file gets a new client). Failed connection attempts are not retried until the request's
/// deadline, as `HTTPClient.shared` does: a relay that is down answers "connection refused" at once, so
/// `parley send` keeps the message in the outbox and `parley receive` exits 3 without a 30-second hang.
private final class HTTPClients: @unchecked Sendable {
    private var clients: [String: HTTPClient] = [:]
    private let lock = ParleyCrypto.Lock()

    func client(caFile: String?, certificates: [NIOSSLCertificate]) -> HTTPClient {
        let key = caFile.map { $0 + "\n" + (FileManager.default.contents(atPath: $0)?.base64EncodedString() ?? "") } ?? ""
        return lock.withLock {
            if let existing = clients[key] { return existing }
            var configuration = HTTPClient.Configuration()
            if caFile != nil {
                var tls = TLSConfiguration.makeClientConfiguration()
                tls.additionalTrustRoots = [.certificates(certificates)]
                configuration.tlsConfiguration = tls
            }
            configuration.connectionPool.retryConnectionEstablishment = false
            let client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
            clients[key] = client
            return client
        }
    }
}
