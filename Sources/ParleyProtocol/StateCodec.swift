import ParleyCrypto

// Binary encodings of local state (sessions, prekeys, accounts) for the encrypted store. These are not
// wire formats: they never leave the device unencrypted, but they are versioned all the same, so a store
// written by one version of Parley is read correctly — or refused clearly — by the next.

private let stateVersion: UInt8 = 1
/// Stored ratchet sessions: version 2 keeps the sending ratchet key's public half after its private half;
/// version 1 (which did not) is still read.
private let sessionStateVersion: UInt8 = 2

extension RatchetSession {
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 544 + skipped.count * 68)
        w.u8(sessionStateVersion)
        w.bytes16(associatedData)
        w.raw(localIdentityKey.bytes)
        w.raw(remoteIdentityKey.bytes)
        w.bool(pendingPreKey != nil)
        if let p = pendingPreKey {
            w.raw(p.identityKey.bytes); w.raw(p.ephemeralKey.bytes)
            w.u32(p.signedPreKeyId); w.u32(p.oneTimePreKeyId); w.u32(p.pqPreKeyId); w.u8(p.pqKind.rawValue)
            w.raw(p.kemCiphertext)
        }
        w.secret(rootKey)
        w.secret(sendingRatchetKey.privateKey)
        w.raw(sendingRatchetKey.publicKey.bytes)
        w.bool(remoteRatchetKey != nil); if let k = remoteRatchetKey { w.raw(k.bytes) }
        w.bool(sendingChainKey != nil); if let k = sendingChainKey { w.secret(k) }
        w.bool(receivingChainKey != nil); if let k = receivingChainKey { w.secret(k) }
        w.u32(sendCount); w.u32(receiveCount); w.u32(previousSendCount)
        let entries = skipped.orderedEntries
        w.u32(UInt32(entries.count))
        for (slot, key) in entries { w.raw(slot.ratchetKey.bytes); w.u32(slot.number); w.secret(key) }
        w.u8(UInt8(retiredRemoteRatchetKeys.count))
        for k in retiredRemoteRatchetKeys { w.raw(k.bytes) }
        w.bool(initiationKey != nil); if let k = initiationKey { w.raw(k.bytes) }
        return w.bytes
    }

    public init(serialized bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "stored session")
        let version = try r.u8()
        guard version == 1 || version == sessionStateVersion else { throw .unsupportedVersion(structure: "stored session", version: version) }
        let ad = try r.bytes16()
        let local = try SignedDeviceList.ed25519(try r.raw(32))
        let remote = try SignedDeviceList.ed25519(try r.raw(32))
        var pending: PreKeyHeader?
        if try r.bool() {
            let ik = try SignedDeviceList.ed25519(try r.raw(32))
            let ek = try PreKeyBundle.x25519(try r.raw(32))
            let spk = try r.u32(), opk = try r.u32(), pq = try r.u32()
            guard let kind = PQPreKeyKind(rawValue: try r.u8()) else { throw .malformed("stored session: PQ kind") }
            pending = PreKeyHeader(identityKey: ik, ephemeralKey: ek, signedPreKeyId: spk, oneTimePreKeyId: opk,
                                   pqPreKeyId: pq, pqKind: kind, kemCiphertext: try r.raw(MLKEM1024KEM.ciphertextLength))
        }
        let root = try r.secret(32)
        let ratchetSecret = try r.secret(32)
        let ratchetPublic = version == 1 ? nil : try PreKeyBundle.x25519(try r.raw(32))
        let ratchet = try ProtocolError.wrap { () throws(CryptoError) in
            if let ratchetPublic { try X25519.KeyPair(storedPrivateKey: ratchetSecret, publicKey: ratchetPublic) }
            else { try X25519.KeyPair(privateKey: ratchetSecret) }
        }
        self.init(restoring: ad, localIdentityKey: local, remoteIdentityKey: remote, rootKey: root, sendingRatchetKey: ratchet)
        pendingPreKey = pending
        remoteRatchetKey = try r.bool() ? try PreKeyBundle.x25519(try r.raw(32)) : nil
        sendingChainKey = try r.bool() ? try r.secret(32) : nil
        receivingChainKey = try r.bool() ? try r.secret(32) : nil
        sendCount = try r.u32(); receiveCount = try r.u32(); previousSendCount = try r.u32()
        let skippedCount = Int(try r.u32())
        guard skippedCount <= ProtocolConstants.maxStoredSkippedKeys else { throw .malformed("stored session: too many skipped keys") }
        for _ in 0..<skippedCount {
            let key = try PreKeyBundle.x25519(try r.raw(32))
            let number = try r.u32()
            skipped.store(try r.secret(32), ratchetKey: key, number: number)
        }
        let retired = Int(try r.u8())
        for _ in 0..<retired { retiredRemoteRatchetKeys.append(try PreKeyBundle.x25519(try r.raw(32))) }
        initiationKey = try r.bool() ? try PreKeyBundle.x25519(try r.raw(32)) : nil
        try r.finish()
    }
}

extension PeerDeviceSessions {
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 1024)
        w.u8(stateVersion)
        w.bool(active != nil)
        if let active { w.bytes32(active.serialized()) }
        w.u8(UInt8(inactive.count))
        for session in inactive { w.bytes32(session.serialized()) }
        return w.bytes
    }

    public init(serialized bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "stored sessions")
        guard try r.u8() == stateVersion else { throw .unsupportedVersion(structure: "stored sessions", version: bytes.first ?? 0) }
        self.init()
        if try r.bool() { active = try RatchetSession(serialized: try r.bytes32()) }
        for _ in 0..<Int(try r.u8()) { inactive.append(try RatchetSession(serialized: try r.bytes32())) }
        try r.finish()
    }
}

extension LocalPreKeys {
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 256 + oneTimePQPreKeys.count * 68)
        w.u8(stateVersion)
        w.u32(nextId); w.u32(currentSignedPreKeyId); w.u32(currentLastResortPQPreKeyId)
        for table in [signedPreKeys, oneTimePreKeys] {
            w.u32(UInt32(table.count))
            for (id, key) in table.sorted(by: { $0.key < $1.key }) { w.u32(id); w.secret(key.privateKey) }
        }
        for table in [lastResortPQPreKeys, oneTimePQPreKeys] {
            w.u32(UInt32(table.count))
            for (id, key) in table.sorted(by: { $0.key < $1.key }) { w.u32(id); w.secret(key.seed) }
        }
        return w.bytes
    }

    public init(serialized bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "stored prekeys")
        guard try r.u8() == stateVersion else { throw .unsupportedVersion(structure: "stored prekeys", version: bytes.first ?? 0) }
        self.init()
        nextId = try r.u32(); currentSignedPreKeyId = try r.u32(); currentLastResortPQPreKeyId = try r.u32()
        signedPreKeys = try Self.readX25519Table(&r)
        oneTimePreKeys = try Self.readX25519Table(&r)
        lastResortPQPreKeys = try Self.readKEMTable(&r)
        oneTimePQPreKeys = try Self.readKEMTable(&r)
        try r.finish()
    }

    private static func readX25519Table(_ r: inout ByteReader) throws(ProtocolError) -> [UInt32: X25519.KeyPair] {
        var table: [UInt32: X25519.KeyPair] = [:]
        for _ in 0..<Int(try r.u32()) {
            let id = try r.u32()
            let secret = try r.secret(32)
            table[id] = try ProtocolError.wrap { () throws(CryptoError) in try X25519.KeyPair(privateKey: secret) }
        }
        return table
    }

    private static func readKEMTable(_ r: inout ByteReader) throws(ProtocolError) -> [UInt32: MLKEM1024KEM.KeyPair] {
        var table: [UInt32: MLKEM1024KEM.KeyPair] = [:]
        for _ in 0..<Int(try r.u32()) {
            let id = try r.u32()
            let seed = try r.secret(MLKEM1024KEM.seedLength)
            table[id] = try ProtocolError.wrap { () throws(CryptoError) in try MLKEM1024KEM.KeyPair(seed: seed) }
        }
        return table
    }
}

extension KnownAccount {
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.u8(stateVersion)
        w.raw(accountKey.bytes)
        w.bool(deviceList != nil)
        if let deviceList { w.bytes32(deviceList.encoded) }
        return w.bytes
    }

    public init(serialized bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "stored account")
        guard try r.u8() == stateVersion else { throw .unsupportedVersion(structure: "stored account", version: bytes.first ?? 0) }
        let key = try SignedDeviceList.ed25519(try r.raw(32))
        let list = try r.bool() ? try SignedDeviceList(verifying: try r.bytes32()) : nil
        try r.finish()
        self.init(accountKey: key, deviceList: list)
    }
}

extension LocalAccount {
    public func serialized() -> [UInt8] {
        var w = ByteWriter(capacity: 512)
        w.u8(stateVersion)
        w.bytes16(Array(address.utf8))
        w.secret(accountKey.seed)
        w.u32(device.deviceId)
        w.secret(device.keyPair.seed)
        w.bytes32(deviceList.encoded)
        w.u64(certificate.expiresAt)
        return w.bytes
    }

    public init(serialized bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "stored local account")
        guard try r.u8() == stateVersion else { throw .unsupportedVersion(structure: "stored local account", version: bytes.first ?? 0) }
        guard let address = String(validating: try r.bytes16(), as: UTF8.self) else { throw .malformed("stored local account: address") }
        let accountSeed = try r.secret(32)
        let deviceId = try r.u32()
        let deviceSeed = try r.secret(32)
        let list = try SignedDeviceList(verifying: try r.bytes32())
        let expiry = try r.u64()
        try r.finish()
        let accountKey = try ProtocolError.wrap { () throws(CryptoError) in try Ed25519.KeyPair(seed: accountSeed) }
        let deviceKey = try ProtocolError.wrap { () throws(CryptoError) in try Ed25519.KeyPair(seed: deviceSeed) }
        self.init(address: address, accountKey: accountKey, device: DeviceIdentity(deviceId: deviceId, keyPair: deviceKey),
                  deviceList: list, certificateExpiry: expiry)
    }
}
