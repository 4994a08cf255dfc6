import ParleyCrypto
import ParleyProtocol

/// Delivery access keys (PROTOCOL.md §13.1): this account's own, the ones contacts gave it, and which key
/// each contact has been given. Kept as encrypted settings.
extension EncryptedStore {
    private static let ownKey = "delivery-access-key"
    private static func contactKey(_ address: AccountAddress) -> String { "delivery-access:" + address.description }
    private static func sharedKey(_ address: AccountAddress) -> String { "delivery-access-shared:" + address.description }

    /// This account's key, nil on a device that has not been given it yet.
    public func deliveryAccessKey() throws(StoreError) -> [UInt8]? { try hexSetting(Self.ownKey) }
    public func setDeliveryAccessKey(_ key: [UInt8]) throws(StoreError) { try setSetting(Self.ownKey, Hex.encode(key)) }

    /// The key `address` gave this account, which its relay asks for before it takes a sealed envelope.
    public func deliveryAccessKey(of address: AccountAddress) throws(StoreError) -> [UInt8]? { try hexSetting(Self.contactKey(address)) }
    /// Sets or (nil: the relay refused it) forgets the key of `address`.
    public func setDeliveryAccessKey(_ key: [UInt8]?, of address: AccountAddress) throws(StoreError) {
        try setSetting(Self.contactKey(address), key.map(Hex.encode))
    }

    /// The key of this account last sent to `address`.
    public func deliveryAccessKeyShared(with address: AccountAddress) throws(StoreError) -> [UInt8]? { try hexSetting(Self.sharedKey(address)) }
    public func setDeliveryAccessKeyShared(_ key: [UInt8], with address: AccountAddress) throws(StoreError) {
        try setSetting(Self.sharedKey(address), Hex.encode(key))
    }

    private func hexSetting(_ name: String) throws(StoreError) -> [UInt8]? {
        guard let text = try setting(name) else { return nil }
        guard let bytes = Hex.decode(text) else { throw .malformedRecord(table: "settings", detail: name) }
        return bytes
    }
}
