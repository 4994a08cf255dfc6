import ParleyCrypto
import ParleyProtocol

/// One Parley device driven from outside: its identity, prekeys, and at most one session with one peer
/// device (the cross-check talks to a single Python device at a time). Built only on ParleyProtocol's
/// public API: `PQXDH`, `RatchetSession`, `LocalPreKeys`, the wire types and `Padding`.
final class InteropPeer {
    /// Raised to the driver as `{"ok": false, "error": kind, "detail": ...}`.
    struct Failure: Error {
        let kind: String
        let detail: String
    }

    let identity: DeviceIdentity
    private(set) var preKeys: LocalPreKeys
    private let random: any RandomSource

    /// One-time prekey ids (X25519 and ML-KEM) handed out in a bundle, so each is offered once.
    private var offeredOneTime: Set<UInt32> = []
    private var offeredOneTimePQ: Set<UInt32> = []

    /// The sessions with the one peer device, kept as the messenger keeps them (active and inactive), so
    /// that a PreKeyMessage goes through the messenger's own code path (`PeerDeviceSessions.receive`).
    private var sessions = PeerDeviceSessions()
    var session: RatchetSession? { sessions.active }
    /// Stands for the one peer device in errors.
    private static let peerDevice = DeviceAddress(address: "peer", deviceId: 0)
    /// PQXDH's SK for the current session, kept only so `secrets` can show it.
    private var sharedKey: [UInt8]?

    init(deviceId: UInt32, identitySeed: [UInt8]?, oneTime: Int, random: any RandomSource) throws {
        self.random = random
        let keyPair = try identitySeed.map { try Ed25519.KeyPair(seed: SecretBytes($0)) } ?? Ed25519.KeyPair(random: random)
        identity = DeviceIdentity(deviceId: deviceId, keyPair: keyPair)
        preKeys = LocalPreKeys.generate(oneTime: oneTime, random: random)
    }

    // MARK: Bundle

    func bundle(oneTime: Bool, oneTimePQ: Bool) -> PreKeyBundle {
        let opk = oneTime ? preKeys.oneTimePreKeys.keys.sorted().first { !offeredOneTime.contains($0) } : nil
        let pq = oneTimePQ ? preKeys.oneTimePQPreKeys.keys.sorted().first { !offeredOneTimePQ.contains($0) } : nil
        if let opk { offeredOneTime.insert(opk) }
        if let pq { offeredOneTimePQ.insert(pq) }
        return preKeys.bundle(identity: identity, oneTimePreKeyId: opk, oneTimePQPreKeyId: pq)
    }

    // MARK: Session start (initiator)

    func initiate(bundleBytes: [UInt8], content: [UInt8]) throws -> (contentType: UInt8, message: [UInt8]) {
        let bundle = try PreKeyBundle(decoding: bundleBytes)
        let initiation = try PQXDH.initiate(identity: identity, bundle: bundle, random: random)
        let newSession = try RatchetSession.initiator(initiation, localIdentity: identity.publicKey, bundle: bundle, random: random)
        sessions.activate(newSession)
        sharedKey = initiation.sharedKey.unprotectedBytes
        return try encrypt(content)
    }

    // MARK: Messages

    /// A PreKeyMessage (content type 2) until the peer has answered, then RatchetMessages (type 1).
    func encrypt(_ content: [UInt8]) throws -> (contentType: UInt8, message: [UInt8]) {
        guard var current = session else { throw Failure(kind: "noSession", detail: "no session") }
        let message = try current.encrypt(Padding.pad(content))
        sessions.active = current
        if let pending = current.pendingPreKey {
            return (2, PreKeyMessage(preKey: pending, message: message).encoded)
        }
        return (1, message.encoded)
    }

    func decrypt(contentType: UInt8, bytes: [UInt8]) throws -> [UInt8] {
        switch contentType {
        case 1:
            // The active session only, so that its own refusal (a skip beyond the limit, say) is what is reported.
            guard var current = session else { throw Failure(kind: "noSession", detail: "no session") }
            let padded = try current.decrypt(try RatchetMessage(decoding: bytes), random: random)
            let content = try Padding.unpad(padded)
            sessions.active = current
            return content
        case 2:
            return try receivePreKeyMessage(try PreKeyMessage(decoding: bytes))
        default:
            throw Failure(kind: "malformed", detail: "unknown content type \(contentType)")
        }
    }

    /// Sesame, reduced to one peer (PROTOCOL.md §8), by the messenger's own rules: a PreKeyMessage whose
    /// EK_A started a session still held is decrypted there or refused as a replay; otherwise it continues
    /// an existing session or starts a new one, burning its one-time prekeys.
    private func receivePreKeyMessage(_ message: PreKeyMessage) throws -> [UInt8] {
        var next = sessions
        let outcome = try next.receive(message, identity: identity, device: Self.peerDevice, preKeys: { preKeys }, random: random)
        let content = try Padding.unpad(outcome.plaintext)
        sessions = next
        if let remaining = outcome.remainingPreKeys { preKeys = remaining }
        if let response = outcome.response { sharedKey = response.sharedKey.unprotectedBytes }
        return content
    }

    // MARK: Introspection (test only)

    func secrets() -> [String: Any] {
        var out: [String: Any] = ["identity": hex(identity.publicKey.bytes), "has_session": session != nil]
        guard let session else { return out }
        let s = session.exportSecretsForTesting()
        out["sk"] = sharedKey.map(hex) ?? NSNullish.value
        out["ad"] = hex(session.associatedData)
        out["rk"] = hex(s.rootKey)
        out["cks"] = s.sendingChainKey.map(hex) ?? NSNullish.value
        out["ckr"] = s.receivingChainKey.map(hex) ?? NSNullish.value
        out["dhs"] = hex(s.sendingRatchetPublicKey)
        out["dhr"] = s.remoteRatchetPublicKey.map(hex) ?? NSNullish.value
        out["ns"] = Int(s.sendCount)
        out["nr"] = Int(s.receiveCount)
        out["pn"] = Int(s.previousSendCount)
        out["skipped"] = s.skippedKeyCount
        out["pending_prekey"] = session.pendingPreKey != nil
        return out
    }
}

/// Marker for JSON null, resolved by the JSON writer (keeps Foundation out of this file).
enum NSNullish { case value }

func hex(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }

func unhex(_ s: String) -> [UInt8]? { Hex.decode(s) }
