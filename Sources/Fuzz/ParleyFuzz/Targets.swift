import Foundation
import ParleyCrypto
@testable import ParleyHeadless
@testable import ParleyProtocol
@testable import ParleyRelayAPI
@testable import ParleyStore
@testable import ParleyTUI

/// The decoders of bytes from outside, one entry per family. A target decodes; where the format is
/// canonical (every field read, `finish()` at the end) it also checks that encoding what was decoded gives
/// the input back. A trap, a failed check, or an allocation over libFuzzer's -malloc_limit_mb is a finding.
enum FuzzTarget {
    nonisolated(unsafe) static var selected: (@Sendable ([UInt8]) -> Void)?

    static let all: [String: @Sendable ([UInt8]) -> Void] = [
        "envelope": envelope,
        "sealed-content": sealedContent,
        "sender-certificate": senderCertificate,
        "ratchet-messages": ratchetMessages,
        "device-list": deviceList,
        "prekey-bundle": preKeyBundle,
        "provisioning": provisioning,
        "attachment-pointer": attachmentPointer,
        "content": content,
        "relay-json": relayJSON,
        "json-rpc": jsonRPC,
        "config": config,
        "theme": theme,
        "store-records": storeRecords,
    ].merging(mls) { first, _ in first }

    /// The device identity envelopes and provisioning messages are opened with: Bob's from the protocol
    /// vectors (Tests/vectors/protocol-v1.json), so that the vectors' sealed envelope opens.
    static let identity = DeviceIdentity(
        deviceId: 1,
        keyPair: try! Ed25519.KeyPair(seed: SecretBytes(Hex.decode("44e0da66d39e9d13e47dbf9c8435a967adc5b9d0cdbe0e18102deff6e0e74eab")!)))

    // MARK: Protocol (PROTOCOL.md §6, §7, §12, §15)

    static func envelope(_ bytes: [UInt8]) {
        _ = try? SealedSender.open(bytes, identity: identity)
    }

    /// What an opened envelope holds: padded, then certificate and ratchet-layer message.
    static func sealedContent(_ bytes: [UInt8]) {
        // unpad takes any number of padding blocks; pad writes the fewest.
        if let unpadded = try? Padding.unpad(bytes) {
            let repadded = Padding.pad(unpadded)
            require(repadded.count <= bytes.count && repadded == Array(bytes.prefix(repadded.count)), "padding round trip")
        }
        guard let content = try? SealedContent(decoding: bytes) else { return }
        require(content.encoded == bytes, "SealedContent round trip")
    }

    static func senderCertificate(_ bytes: [UInt8]) {
        guard let certificate = try? SenderCertificate(decoding: bytes) else { return }
        require(certificate.encoded == bytes, "SenderCertificate round trip")
        _ = try? certificate.verify(now: 0)
    }

    static func ratchetMessages(_ bytes: [UInt8]) {
        if let message = try? RatchetMessage(decoding: bytes) { require(message.encoded == bytes, "RatchetMessage round trip") }
        if let message = try? PreKeyMessage(decoding: bytes) { require(message.encoded == bytes, "PreKeyMessage round trip") }
    }

    static func deviceList(_ bytes: [UInt8]) {
        guard let list = try? SignedDeviceList(verifying: bytes) else { return }
        require(list.encoded == bytes, "SignedDeviceList round trip")
    }

    static func preKeyBundle(_ bytes: [UInt8]) {
        guard let bundle = try? PreKeyBundle(decoding: bytes) else { return }
        require(bundle.encoded == bytes, "PreKeyBundle round trip")
        _ = try? bundle.verifySignatures()
    }

    /// First byte: 0 a provisioning payload (after opening), 1 a link code's bytes, 2 a link code's text,
    /// 3 a sealed provisioning message for a fixed link code.
    static func provisioning(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        switch selector % 4 {
        case 0: _ = try? ProvisioningPayload(decoding: rest)
        case 1:
            guard let code = try? LinkCode(decoding: rest) else { return }
            require(code.encoded == rest, "LinkCode round trip")
            require((try? LinkCode(text: code.text)) == code, "LinkCode text round trip")
        case 2: _ = try? LinkCode(text: String(decoding: rest, as: UTF8.self))
        default:
            let code = LinkCode(relay: "relay.example", slot: [UInt8](repeating: 7, count: 16),
                                ephemeralKey: identity.agreementKey.publicKey, deviceKey: identity.publicKey)
            _ = try? Provisioning.open(rest, ephemeral: identity.agreementKey, code: code)
        }
    }

    static func attachmentPointer(_ bytes: [UInt8]) {
        var reader = ByteReader(bytes, structure: "fuzz")
        guard let pointer = try? AttachmentPointer(from: &reader), (try? reader.finish()) != nil else { return }
        var writer = ByteWriter()
        pointer.encode(into: &writer)
        require(writer.bytes == bytes, "AttachmentPointer round trip")
        // What the receiver checks before it downloads: the size the pointer claims.
        _ = AttachmentCipher.sealedSize(of: Int(clamping: pointer.size))
        _ = try? AttachmentCipher.open(Array(bytes.prefix(64)), pointer: pointer)
    }

    static func content(_ bytes: [UInt8]) {
        guard let content = try? Content(decoding: bytes) else { return }
        require(content.encoded == bytes, "Content round trip")
    }

    // MARK: The relay's JSON bodies

    /// First byte picks the type; the rest is the body. For the types with a hand-written fast path, the
    /// fast path and JSONDecoder must agree whenever the fast path accepts.
    static func relayJSON(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let body = Array(bytes.dropFirst())
        let data = Data(body)
        let decoder = JSONDecoder()
        switch selector % 16 {
        case 0: agree(SendRequest.self, body)
        case 1: agree(FetchResponse.self, body)
        case 2: agree(AckRequest.self, body)
        case 3: _ = try? decoder.decode(RegisterRequest.self, from: data)
        case 4: _ = try? decoder.decode(DeviceListUpdate.self, from: data)
        case 5: _ = try? decoder.decode(ChallengeRequest.self, from: data)
        case 6: _ = try? decoder.decode(SessionRequest.self, from: data)
        case 7: _ = try? decoder.decode(PreKeyUpload.self, from: data)
        case 8: _ = try? decoder.decode(AttachmentSlotRequest.self, from: data)
        case 9: _ = try? decoder.decode(ProvisioningMessage.self, from: data)
        case 10: _ = try? decoder.decode(AccountResponse.self, from: data)
        case 11: _ = try? decoder.decode(BundleResponse.self, from: data)
        case 12: _ = try? decoder.decode(DeviceMismatch.self, from: data)
        case 13: _ = try? decoder.decode(SessionResponse.self, from: data)
        case 14: _ = try? decoder.decode(ErrorBody.self, from: data)
        default: _ = try? decoder.decode(AttachmentSlot.self, from: data)
        }
    }

    static func agree<T: HotJSON>(_ type: T.Type, _ body: [UInt8]) {
        let fast = body.withUnsafeBytes { T(fastJSON: $0) }
        guard let fast else { return }
        let slow: T
        do { slow = try JSONDecoder().decode(T.self, from: Data(body)) } catch {
            require(false, "\(T.self): the fast path accepted what JSONDecoder refuses (\(error))")
            return
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        require((try? encoder.encode(fast)) == (try? encoder.encode(slow)), "\(T.self): the fast path and JSONDecoder disagree")
        // And what the fast writer writes, the fast reader reads back.
        let written = fast.jsonBytes()
        require(written.withUnsafeBytes { T(fastJSON: $0) } != nil, "\(T.self): the fast path cannot read its own output")
    }

    // MARK: The daemon's JSON-RPC lines

    static func jsonRPC(_ bytes: [UInt8]) {
        let line = String(decoding: bytes, as: UTF8.self)
        let answer: String
        switch RPCRequest.parse(line) {
        case .success(let request):
            answer = RPCLine.result(id: request.id ?? .null, .object(request.params))
            require(request.method == JSONValue.parse(line)?["method"]?.stringValue, "method read back")
        case .failure(let failure):
            answer = RPCLine.error(id: failure.id, failure.error)
        }
        require(!answer.contains("\n"), "an answer is one line")
        require(JSONValue.parse(answer) != nil, "an answer is JSON")
    }

    // MARK: The chat window's files

    static func config(_ bytes: [UInt8]) {
        _ = try? Config.parse(String(decoding: bytes, as: UTF8.self))
    }

    static func theme(_ bytes: [UInt8]) {
        _ = try? Theme.parse(String(decoding: bytes, as: UTF8.self), name: "fuzz")
    }

    // MARK: The store's record encodings (read back after decryption; a damaged store must not trap)

    static func storeRecords(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        switch selector % 10 {
        case 0:
            let record = try? RecordCodec.decodeMessage(rest, id: 1, state: .received)
            let text = RecordCodec.text(of: rest)
            if let record { require(text == record.text, "text(of:) agrees with decodeMessage") }
        case 1: _ = try? RecordCodec.decodeReceived(rest)
        case 2: _ = try? RecordCodec.decodeOutgoing(rest)
        case 3: _ = try? Contact(serialized: rest)
        case 4: _ = try? KnownAccount(serialized: rest)
        case 5: _ = try? RatchetSession(serialized: rest)
        case 6: _ = try? PeerDeviceSessions(serialized: rest)
        case 7: _ = try? LocalPreKeys(serialized: rest)
        case 8: _ = try? LocalAccount(serialized: rest)
        default: _ = RecordCodec.textRange(of: rest)
        }
    }
}
