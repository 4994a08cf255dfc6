import ParleyProtocol

extension Engine {
    /// Whether `address` is an account on its relay (its relay publishes a device list signed by its
    /// account key). Nothing is stored: looking someone up does not make them a contact.
    public func isRegistered(_ address: AccountAddress) async throws -> Bool {
        do {
            _ = try await publishedDeviceList(of: address)
            return true
        } catch ClientError.relay(status: 404, _, _) {
            return false
        }
    }
}
