import ParleyCrypto

/// One device of an account, as the account key vouches for it (PROTOCOL.md §3.2).
public struct DeviceEntry: Hashable, Sendable {
    public let deviceId: UInt32
    public let identityKey: Ed25519.PublicKey
    public let createdAt: UInt64

    public init(deviceId: UInt32, identityKey: Ed25519.PublicKey, createdAt: UInt64) {
        self.deviceId = deviceId
        self.identityKey = identityKey
        self.createdAt = createdAt
    }
}

/// The account's device list, signed by the account identity key. Construct one with `sign`, or parse a
/// received one with `init(verifying:)`, which refuses a bad signature or a malformed list.
public struct SignedDeviceList: Hashable, Sendable {
    public let accountKey: Ed25519.PublicKey
    public let version: UInt64
    public let devices: [DeviceEntry]
    public let signature: [UInt8]

    /// Signs a new list. Devices are sorted by id; duplicate ids are a programming error.
    public static func sign(devices: [DeviceEntry], version: UInt64, accountKey: Ed25519.KeyPair) -> SignedDeviceList {
        let sorted = devices.sorted { $0.deviceId < $1.deviceId }
        precondition(Set(sorted.map(\.deviceId)).count == sorted.count, "duplicate device id")
        let body = encodeBody(accountKey: accountKey.publicKey, version: version, devices: sorted)
        let signature = LabelledSignature.sign(body, label: ProtocolConstants.signatureDeviceList, with: accountKey)
        return SignedDeviceList(accountKey: accountKey.publicKey, version: version, devices: sorted, signature: signature)
    }

    private init(accountKey: Ed25519.PublicKey, version: UInt64, devices: [DeviceEntry], signature: [UInt8]) {
        self.accountKey = accountKey
        self.version = version
        self.devices = devices
        self.signature = signature
    }

    /// Parses and verifies `SignedDeviceList` bytes.
    public init(verifying bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "DeviceList")
        try r.version()
        let key = try Self.ed25519(try r.raw(32))
        let version = try r.u64()
        let count = Int(try r.u16())
        // Each entry takes 44 bytes and the signature follows them: a count the input cannot hold is refused
        // before anything is reserved for it.
        guard count <= max(0, r.remaining - Ed25519.signatureLength) / Self.entryLength else {
            throw .malformed("DeviceList: \(count) devices claimed in \(r.remaining) bytes")
        }
        var devices: [DeviceEntry] = []
        devices.reserveCapacity(count)
        for _ in 0..<count {
            let id = try r.u32()
            let dik = try Self.ed25519(try r.raw(32))
            let created = try r.u64()
            if let last = devices.last, last.deviceId >= id {
                throw .malformed("DeviceList: device ids not strictly increasing")
            }
            devices.append(DeviceEntry(deviceId: id, identityKey: dik, createdAt: created))
        }
        let signature = try r.raw(Ed25519.signatureLength)
        try r.finish()
        let body = Self.encodeBody(accountKey: key, version: version, devices: devices)
        guard LabelledSignature.verify(signature, body: body, label: ProtocolConstants.signatureDeviceList, key: key) else {
            throw .badSignature("device list")
        }
        self.init(accountKey: key, version: version, devices: devices, signature: signature)
    }

    public var encoded: [UInt8] {
        Self.encodeBody(accountKey: accountKey, version: version, devices: devices) + signature
    }

    public func device(_ id: UInt32) -> DeviceEntry? { devices.first { $0.deviceId == id } }

    /// Accepts `newer` as the successor of this list: same account key, strictly higher version.
    public func checkSuccessor(_ newer: SignedDeviceList, address: String) throws(ProtocolError) {
        guard newer.accountKey == accountKey else { throw .identityChanged(address: address) }
        guard newer.version > version else { throw .deviceListRollback(known: version, offered: newer.version) }
    }

    /// The bytes of one entry: device id, identity key, creation time.
    static let entryLength = 4 + Ed25519.publicKeyLength + 8

    static func encodeBody(accountKey: Ed25519.PublicKey, version: UInt64, devices: [DeviceEntry]) -> [UInt8] {
        var w = ByteWriter(capacity: 45 + devices.count * 44)
        w.u8(ProtocolConstants.version)
        w.raw(accountKey.bytes)
        w.u64(version)
        w.u16(UInt16(devices.count))
        for d in devices {
            w.u32(d.deviceId)
            w.raw(d.identityKey.bytes)
            w.u64(d.createdAt)
        }
        return w.bytes
    }

    static func ed25519(_ bytes: [UInt8]) throws(ProtocolError) -> Ed25519.PublicKey {
        try ProtocolError.wrap { () throws(CryptoError) in try Ed25519.PublicKey(bytes) }
    }
}
