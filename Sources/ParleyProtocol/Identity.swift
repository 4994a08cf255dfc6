import ParleyCrypto

/// This device's identity: its id and Ed25519 key pair, with the X25519 form derived once.
public struct DeviceIdentity: Sendable {
    public let deviceId: UInt32
    public let keyPair: Ed25519.KeyPair
    public let agreementKey: X25519.KeyPair

    public init(deviceId: UInt32, keyPair: Ed25519.KeyPair) {
        self.deviceId = deviceId
        self.keyPair = keyPair
        self.agreementKey = keyPair.toX25519()
    }

    public var publicKey: Ed25519.PublicKey { keyPair.publicKey }
}

/// A peer device as this side knows it: the account address, the device id and its identity key.
public struct DeviceAddress: Hashable, Sendable, CustomStringConvertible {
    public let address: String
    public let deviceId: UInt32
    public init(address: String, deviceId: UInt32) {
        self.address = address
        self.deviceId = deviceId
    }
    public var description: String { "\(address)#\(deviceId)" }
}
