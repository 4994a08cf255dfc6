import ParleyClient
import ParleyProtocol
import ParleyRelayAPI

/// A test transport that passes every call on to `inner`: a conforming double writes only the calls it
/// changes (a failure, a hook between the relay's answer and the engine), and takes these for the rest.
protocol ForwardingTransport: RelayTransport {
    var inner: any RelayTransport { get }
}

extension ForwardingTransport {
    var endpoint: RelayEndpoint { inner.endpoint }
    func transport(to endpoint: RelayEndpoint) throws(ClientError) -> any RelayTransport { try inner.transport(to: endpoint) }
    func listen(token: @escaping @Sendable () async throws -> String, onWake: @escaping @Sendable () async -> Void,
                onState: @escaping @Sendable (PushListener.State) async -> Void) async {
        await inner.listen(token: token, onWake: onWake, onState: onState)
    }
    func health() async throws(ClientError) -> HealthResponse { try await inner.health() }
    func register(_ request: RegisterRequest) async throws(ClientError) -> AccountResponse { try await inner.register(request) }
    func account(_ address: String) async throws(ClientError) -> AccountResponse { try await inner.account(address) }
    func publishDeviceList(_ update: DeviceListUpdate, address: String) async throws(ClientError) { try await inner.publishDeviceList(update, address: address) }
    func changeAccountKey(_ request: AccountKeyChangeRequest, address: String) async throws(ClientError) {
        try await inner.changeAccountKey(request, address: address)
    }
    func challenge(_ request: ChallengeRequest) async throws(ClientError) -> ChallengeResponse { try await inner.challenge(request) }
    func session(_ request: SessionRequest) async throws(ClientError) -> SessionResponse { try await inner.session(request) }
    func uploadPreKeys(_ upload: PreKeyUpload, token: String) async throws(ClientError) { try await inner.uploadPreKeys(upload, token: token) }
    func preKeyCount(token: String) async throws(ClientError) -> PreKeyCount { try await inner.preKeyCount(token: token) }
    func bundle(address: String, deviceId: UInt32) async throws(ClientError) -> BundleResponse { try await inner.bundle(address: address, deviceId: deviceId) }
    func send(_ request: SendRequest, to address: String, token: String?, accessKey: [UInt8]?) async throws(ClientError) {
        try await inner.send(request, to: address, token: token, accessKey: accessKey)
    }
    func setDeliveryAccess(_ update: DeliveryAccessUpdate, token: String) async throws(ClientError) { try await inner.setDeliveryAccess(update, token: token) }
    func fetch(limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponse {
        try await inner.fetch(limit: limit, after: after, token: token)
    }
    func acknowledge(_ ids: [String], token: String) async throws(ClientError) { try await inner.acknowledge(ids, token: token) }
    func acknowledge(_ ids: [String], fetch limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponse? {
        try await inner.acknowledge(ids, fetch: limit, after: after, token: token)
    }
    func createAttachment(size: Int, token: String) async throws(ClientError) -> AttachmentSlot { try await inner.createAttachment(size: size, token: token) }
    func uploadAttachment(id: String, bytes: [UInt8], uploadSecret: String) async throws(ClientError) {
        try await inner.uploadAttachment(id: id, bytes: bytes, uploadSecret: uploadSecret)
    }
    func downloadAttachment(id: String, maxBytes: Int) async throws(ClientError) -> [UInt8] { try await inner.downloadAttachment(id: id, maxBytes: maxBytes) }
    func createProvisioning() async throws(ClientError) -> ProvisioningSlot { try await inner.createProvisioning() }
    func fillProvisioning(id: String, message: ProvisioningMessage, token: String) async throws(ClientError) {
        try await inner.fillProvisioning(id: id, message: message, token: token)
    }
    func collectProvisioning(id: String) async throws(ClientError) -> ProvisioningMessage? { try await inner.collectProvisioning(id: id) }
    func uploadKeyPackages(_ upload: KeyPackageUpload, token: String) async throws(ClientError) { try await inner.uploadKeyPackages(upload, token: token) }
    func keyPackageCount(token: String) async throws(ClientError) -> KeyPackageCount { try await inner.keyPackageCount(token: token) }
    func claimKeyPackages(of address: String) async throws(ClientError) -> KeyPackageClaim { try await inner.claimKeyPackages(of: address) }
    func createGroup(_ creation: GroupCreation, token: String) async throws(ClientError) -> GroupEpoch { try await inner.createGroup(creation, token: token) }
    func commit(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) { try await inner.commit(send, toGroup: groupId, secret: secret) }
    func send(_ send: GroupSend, toGroup groupId: String, secret: [UInt8]) async throws(ClientError) { try await inner.send(send, toGroup: groupId, secret: secret) }
    func fetchWithGroups(limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponseV2 {
        try await inner.fetchWithGroups(limit: limit, after: after, token: token)
    }
    func acknowledgeWithGroups(_ ids: [String], fetch limit: Int, after: String?, token: String) async throws(ClientError) -> FetchResponseV2 {
        try await inner.acknowledgeWithGroups(ids, fetch: limit, after: after, token: token)
    }
    func groupInfo(of groupId: String, token: String) async throws(ClientError) -> GroupInfoAnswer { try await inner.groupInfo(of: groupId, token: token) }
    func externalCommit(_ send: GroupSend, toGroup groupId: String, token: String) async throws(ClientError) {
        try await inner.externalCommit(send, toGroup: groupId, token: token)
    }
}
