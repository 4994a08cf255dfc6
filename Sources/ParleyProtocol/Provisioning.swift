import Foundation
import ParleyCrypto

/// Linking a new device (PROTOCOL.md §15). The new device shows a `LinkCode`; an existing device of the
/// account signs a device list that adds the code's device key, and seals a `ProvisioningPayload` to the
/// code's ephemeral key. The code travels out of band (the user reads or scans it), which is what
/// authenticates the exchange: only the holder of the code's ephemeral key can open the payload, and only
/// a device that was shown the code learns its slot and keys.
public struct LinkCode: Equatable, Sendable {
    /// The relay (`host[:port]`) holding the provisioning slot — the account's own relay.
    public let relay: String
    /// The provisioning slot id (16 bytes).
    public let slot: [UInt8]
    public let ephemeralKey: X25519.PublicKey
    /// The new device's identity key, which the existing device puts into the signed device list.
    public let deviceKey: Ed25519.PublicKey

    public static let prefix = "parley-link:"

    public init(relay: String, slot: [UInt8], ephemeralKey: X25519.PublicKey, deviceKey: Ed25519.PublicKey) {
        self.relay = relay
        self.slot = slot
        self.ephemeralKey = ephemeralKey
        self.deviceKey = deviceKey
    }

    /// `version ‖ bytes16(relay) ‖ slot(16) ‖ E(32) ‖ DIK(32)`.
    public var encoded: [UInt8] {
        var w = ByteWriter(capacity: 100)
        w.u8(ProtocolConstants.version)
        w.bytes16(Array(relay.utf8))
        w.raw(slot)
        w.raw(ephemeralKey.bytes)
        w.raw(deviceKey.bytes)
        return w.bytes
    }

    /// `parley-link:` followed by the encoding in unpadded base64url.
    public var text: String {
        Self.prefix + Data(encoded).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    public var slotId: String { Hex.encode(slot) }

    public init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "LinkCode")
        try r.version()
        guard let relay = String(validating: try r.bytes16(), as: UTF8.self), !relay.isEmpty else { throw .malformed("LinkCode: relay") }
        self.relay = relay
        slot = try r.raw(16)
        ephemeralKey = try PreKeyBundle.x25519(try r.raw(32))
        let deviceKeyBytes = try r.raw(32)
        deviceKey = try ProtocolError.wrap { () throws(CryptoError) in try Ed25519.PublicKey(deviceKeyBytes) }
        try r.finish()
    }

    /// Parses what the user pasted: surrounding white space and line breaks inside are ignored.
    public init(text: String) throws(ProtocolError) {
        var body = text.filter { !$0.isWhitespace }
        guard body.hasPrefix(Self.prefix) else { throw .malformed("a link code starts with \(Self.prefix)") }
        body.removeFirst(Self.prefix.count)
        var base64 = body.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        while base64.count % 4 != 0 { base64 += "=" }
        guard let data = Data(base64Encoded: base64) else { throw .malformed("the link code is damaged (not base64url)") }
        try self.init(decoding: [UInt8](data))
    }
}

/// What the existing device sends: the account (address and account key), the new device's id and the
/// signed list that names it, and optionally a pointer to an attachment holding contacts and history.
public struct ProvisioningPayload: Sendable {
    public let address: String
    public let accountKey: Ed25519.KeyPair
    public let deviceId: UInt32
    public let deviceList: SignedDeviceList
    public let transfer: AttachmentPointer?

    public init(address: String, accountKey: Ed25519.KeyPair, deviceId: UInt32, deviceList: SignedDeviceList,
                transfer: AttachmentPointer?) {
        self.address = address
        self.accountKey = accountKey
        self.deviceId = deviceId
        self.deviceList = deviceList
        self.transfer = transfer
    }

    /// `version ‖ bytes16(address) ‖ AIK seed(32) ‖ deviceId u32 ‖ bytes32(SignedDeviceList) ‖ flags u8 ‖ [AttachmentPointer]`.
    func encoded() -> [UInt8] {
        var w = ByteWriter(capacity: 512)
        w.u8(ProtocolConstants.version)
        w.bytes16(Array(address.utf8))
        w.secret(accountKey.seed)
        w.u32(deviceId)
        w.bytes32(deviceList.encoded)
        w.u8(transfer == nil ? 0 : 1)
        transfer?.encode(into: &w)
        return w.bytes
    }

    init(decoding bytes: [UInt8]) throws(ProtocolError) {
        var r = ByteReader(bytes, structure: "ProvisioningPayload")
        try r.version()
        guard let address = String(validating: try r.bytes16(), as: UTF8.self) else { throw .malformed("ProvisioningPayload: address") }
        self.address = address
        let seed = try r.secret(Ed25519.seedLength)
        accountKey = try ProtocolError.wrap { () throws(CryptoError) in try Ed25519.KeyPair(seed: seed) }
        deviceId = try r.u32()
        deviceList = try SignedDeviceList(verifying: try r.bytes32())
        let flags = try r.u8()
        guard flags <= 1 else { throw .malformed("ProvisioningPayload: flags") }
        transfer = flags == 1 ? try AttachmentPointer(from: &r) : nil
        try r.finish()
    }
}

/// Sealing the payload to the link code (PROTOCOL.md §15):
/// `message = version ‖ E'.pub(32) ‖ XChaCha20-Poly1305(k, n, payload, AD = version ‖ E'.pub ‖ slot ‖ DIK)`,
/// `k ‖ n = HKDF-SHA256(salt = E'.pub ‖ E.pub, IKM = X25519(E', E), info = "Parley_Provisioning_v1", 56)`.
public enum Provisioning {
    static let info = Array("Parley_Provisioning_v1".utf8)

    public static func seal(_ payload: ProvisioningPayload, to code: LinkCode,
                            random: any RandomSource = SystemRandom()) throws(ProtocolError) -> [UInt8] {
        let ephemeral = X25519.KeyPair(random: random)
        let shared = try ProtocolError.wrap { () throws(CryptoError) in
            try X25519.sharedSecret(privateKey: ephemeral.privateKey, publicKey: code.ephemeralKey)
        }
        let keyAndNonce = HKDFSHA256.deriveKey(inputKeyMaterial: shared, salt: ephemeral.publicKey.bytes + code.ephemeralKey.bytes,
                                               info: info, length: 56)
        let header = [ProtocolConstants.version] + ephemeral.publicKey.bytes
        var plain = payload.encoded()
        defer { wipe(&plain) }
        return header + XChaCha20Poly1305.seal(plain, associatedData: header + code.slot + code.deviceKey.bytes, keyAndNonce: keyAndNonce)
    }

    /// Opens the message with the new device's ephemeral key and checks that it really provisions this
    /// device: the list verifies under the account key it carries and names `code.deviceKey` under the
    /// payload's device id, and the address is on the code's relay.
    public static func open(_ message: [UInt8], ephemeral: X25519.KeyPair, code: LinkCode) throws(ProtocolError) -> ProvisioningPayload {
        var r = ByteReader(message, structure: "ProvisioningMessage")
        try r.version()
        let theirs = try PreKeyBundle.x25519(try r.raw(32))
        let shared = try ProtocolError.wrap { () throws(CryptoError) in
            try X25519.sharedSecret(privateKey: ephemeral.privateKey, publicKey: theirs)
        }
        let keyAndNonce = HKDFSHA256.deriveKey(inputKeyMaterial: shared, salt: theirs.bytes + ephemeral.publicKey.bytes,
                                               info: info, length: 56)
        let header = Array(message[0..<33])
        var plain: [UInt8]
        do {
            plain = try XChaCha20Poly1305.open(r.rest(), associatedData: header + code.slot + code.deviceKey.bytes, keyAndNonce: keyAndNonce)
        } catch { throw .decryptionFailed }
        defer { wipe(&plain) }
        let payload = try ProvisioningPayload(decoding: plain)
        guard payload.deviceList.accountKey == payload.accountKey.publicKey else {
            throw .badSignature("the device list is not signed by the account key sent with it")
        }
        guard payload.deviceList.device(payload.deviceId)?.identityKey == code.deviceKey else {
            throw .malformed("the device list does not name this device")
        }
        guard payload.address.split(separator: "@", maxSplits: 1).last.map(String.init) == code.relay else {
            throw .malformed("the account \(payload.address) is not on the relay \(code.relay)")
        }
        return payload
    }
}
