import Testing
import Foundation
import ParleyCrypto
@testable import ParleyProtocol

// PROTOCOL.md §10: every value below is computed from explicit private keys (no DRBG), so an outside
// implementation can reproduce it. The expected values live in Tests/vectors/protocol-v1.json; running
// with PARLEY_WRITE_VECTORS=1 rewrites that file from this implementation, keeping its KEM ciphertext (and
// the test then fails, so a rewrite is always a deliberate, reviewed change).

/// Hands out the given byte strings in order; any other request is a test bug.
final class QueuedRandom: RandomSource, @unchecked Sendable {
    private var queue: [[UInt8]]
    private let lock = Lock()
    init(_ queue: [[UInt8]]) { self.queue = queue }
    func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        let next = lock.withLock { queue.isEmpty ? nil : queue.removeFirst() }
        guard let next, next.count == buffer.count else { fatalError("QueuedRandom: unexpected request of \(buffer.count) bytes") }
        buffer.copyBytes(from: next)
    }
}

func hex(_ bytes: [UInt8]) -> String { bytes.map { String(format: "%02x", $0) }.joined() }
func unhex(_ text: String) -> [UInt8] {
    var out: [UInt8] = []
    var it = text.makeIterator()
    while let a = it.next(), let b = it.next() { out.append(UInt8(String([a, b]), radix: 16)!) }
    return out
}

/// Fixed inputs: a private key is SHA-256 of its name, so the vector file stays readable.
func fixedKey(_ name: String, _ count: Int = 32) -> [UInt8] {
    count == 32 ? SHA256.hash(Array(name.utf8)) : SHA512.hash(Array(name.utf8)).prefix(count).map { $0 }
}

/// Computes every vector value from the fixed inputs.
func computeVectors(kemCiphertext: [UInt8]?) throws -> [String: String] {
    var v: [String: String] = [:]
    let aliceIK = try Ed25519.KeyPair(seed: SecretBytes(fixedKey("alice identity seed")))
    let bobIK = try Ed25519.KeyPair(seed: SecretBytes(fixedKey("bob identity seed")))
    let alice = DeviceIdentity(deviceId: 1, keyPair: aliceIK)
    let bob = DeviceIdentity(deviceId: 7, keyPair: bobIK)
    v["alice_identity_seed"] = hex(fixedKey("alice identity seed"))
    v["alice_identity_public"] = hex(aliceIK.publicKey.bytes)
    v["alice_identity_x25519_public"] = hex(try aliceIK.publicKey.toX25519().bytes)
    v["bob_identity_seed"] = hex(fixedKey("bob identity seed"))
    v["bob_identity_public"] = hex(bobIK.publicKey.bytes)

    // Bob's prekeys: SPK id 1, last-resort PQ id 2, OPK id 3, one-time PQ id 4 (LocalPreKeys allocates in this order).
    let pqSeed = fixedKey("bob pq one-time prekey seed", 64)
    let prekeyRandom = QueuedRandom([fixedKey("bob signed prekey"), fixedKey("bob pq last-resort seed", 64),
                                     fixedKey("bob one-time prekey"), pqSeed])
    let bobKeys = LocalPreKeys.generate(oneTime: 1, random: prekeyRandom)
    v["bob_signed_prekey_private"] = hex(fixedKey("bob signed prekey"))
    v["bob_one_time_prekey_private"] = hex(fixedKey("bob one-time prekey"))
    v["bob_pq_one_time_prekey_seed"] = hex(pqSeed)
    let bundle = bobKeys.bundle(identity: bob, oneTimePreKeyId: 3, oneTimePQPreKeyId: 4)
    v["bob_bundle"] = hex(bundle.encoded)

    // PQXDH: the KEM ciphertext is random by nature; the file stores one, Bob decapsulates it.
    let ciphertext: [UInt8]
    if let kemCiphertext { ciphertext = kemCiphertext } else { ciphertext = try bundle.pqPreKey.encapsulate().ciphertext }
    v["kem_ciphertext"] = hex(ciphertext)
    let bobPQ = try MLKEM1024KEM.KeyPair(seed: SecretBytes(pqSeed))
    let ss = try bobPQ.decapsulate(ciphertext)
    v["kem_shared_secret"] = hex(ss.unprotectedBytes)
    let ephemeral = try X25519.KeyPair(privateKey: SecretBytes(fixedKey("alice ephemeral")))
    v["alice_ephemeral_private"] = hex(fixedKey("alice ephemeral"))
    let header = PreKeyHeader(identityKey: aliceIK.publicKey, ephemeralKey: ephemeral.publicKey, signedPreKeyId: 1,
                              oneTimePreKeyId: 3, pqPreKeyId: 4, pqKind: .oneTime, kemCiphertext: ciphertext)
    let response = try PQXDH.respond(identity: bob, preKeys: bobKeys, header: header)
    let aliceSK = try PQXDH.deriveSharedKey([
        (alice.agreementKey.privateKey, bundle.signedPreKey),
        (ephemeral.privateKey, try bobIK.publicKey.toX25519()),
        (ephemeral.privateKey, bundle.signedPreKey),
        (ephemeral.privateKey, bundle.oneTimePreKey!),
    ], kemSecret: ss)
    #expect(aliceSK.constantTimeEquals(response.sharedKey))
    v["pqxdh_shared_key"] = hex(response.sharedKey.unprotectedBytes)
    v["pqxdh_associated_data"] = hex(response.associatedData)

    // Double Ratchet: Alice's first ratchet key, her first message, Bob's reply (his new ratchet key).
    let initiation = PQXDH.Initiation(sharedKey: response.sharedKey, associatedData: response.associatedData, header: header)
    var aliceSession = try RatchetSession.initiator(initiation, localIdentity: aliceIK.publicKey, bundle: bundle,
                                                    random: QueuedRandom([fixedKey("alice ratchet 1")]))
    v["alice_ratchet_1_private"] = hex(fixedKey("alice ratchet 1"))
    try addMessageKeys(of: aliceSession, message: 1, to: &v)
    let m1Padded = Padding.pad(Array("Hello Bob, this is Parley.".utf8))
    let m1 = try aliceSession.encrypt(m1Padded)
    v["message_1_plaintext"] = hex(Array("Hello Bob, this is Parley.".utf8))
    v["message_1_padded"] = hex(m1Padded)
    v["message_1_header"] = hex(m1.header.encoded)
    v["message_1_ratchet"] = hex(m1.encoded)
    v["message_1_prekey"] = hex(PreKeyMessage(preKey: header, message: m1).encoded)
    var bobSession = RatchetSession.responder(response, localIdentity: bobIK.publicKey, remoteIdentity: aliceIK.publicKey)
    _ = try bobSession.decrypt(m1, random: QueuedRandom([fixedKey("bob ratchet 1")]))
    v["bob_ratchet_1_private"] = hex(fixedKey("bob ratchet 1"))
    try addMessageKeys(of: bobSession, message: 2, to: &v)
    let m2Padded = Padding.pad(Array("Hi Alice.".utf8))
    let m2 = try bobSession.encrypt(m2Padded)
    v["message_2_plaintext"] = hex(Array("Hi Alice.".utf8))
    v["message_2_padded"] = hex(m2Padded)
    v["message_2_header"] = hex(m2.header.encoded)
    v["message_2_ratchet"] = hex(m2.encoded)
    v["root_key_after_message_2_bob"] = hex(bobSession.exportSecretsForTesting().rootKey)

    // Device list and sender certificate signed by Bob's account key; a sealed envelope to Alice.
    let bobAccount = try Ed25519.KeyPair(seed: SecretBytes(fixedKey("bob account seed")))
    v["bob_account_seed"] = hex(fixedKey("bob account seed"))
    let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 7, identityKey: bobIK.publicKey, createdAt: 1_767_225_600_000)],
                                     version: 1, accountKey: bobAccount)
    v["bob_device_list"] = hex(list.encoded)
    let certificate = SenderCertificate.issue(address: "bob@example.org", accountKey: bobAccount, deviceId: 7,
                                              deviceKey: bobIK.publicKey, expiresAt: 1_893_456_000_000)
    v["bob_sender_certificate"] = hex(certificate.encoded)
    let envelope = try SealedSender.seal(SealedContent(certificate: certificate, message: .ratchet(m2)), to: aliceIK.publicKey,
                                         random: QueuedRandom([fixedKey("sealed ephemeral")]))
    v["sealed_ephemeral_private"] = hex(fixedKey("sealed ephemeral"))
    v["sealed_envelope_message_2"] = hex(envelope)

    // Safety number (§14) of Alice's and Bob's accounts, and the scannable form as Alice's device shows it.
    let aliceAccount = try Ed25519.KeyPair(seed: SecretBytes(fixedKey("alice account seed")))
    v["alice_account_seed"] = hex(fixedKey("alice account seed"))
    let aliceHash = SafetyNumber.partyHash(key: SafetyNumber.accountKey(aliceAccount.publicKey), id: SafetyNumber.accountId("alice@example.org"))
    let bobHash = SafetyNumber.partyHash(key: SafetyNumber.accountKey(bobAccount.publicKey), id: SafetyNumber.accountId("bob@example.org"))
    v["safety_number"] = hex(Array(SafetyNumber.displayable(localKey: SafetyNumber.accountKey(aliceAccount.publicKey),
                                                            localId: SafetyNumber.accountId("alice@example.org"),
                                                            remoteKey: SafetyNumber.accountKey(bobAccount.publicKey),
                                                            remoteId: SafetyNumber.accountId("bob@example.org")).utf8))
    v["safety_number_scannable_alice"] = hex(SafetyNumber.scannable(version: SafetyNumber.scannableVersion, localHash: aliceHash,
                                                                    remoteHash: bobHash))

    // Linking Bob's second device (§15): its link code, and the provisioning message Bob's device 7 leaves in the slot.
    let newDevice = try Ed25519.KeyPair(seed: SecretBytes(fixedKey("bob device 8 identity seed")))
    let linkEphemeral = try X25519.KeyPair(privateKey: SecretBytes(fixedKey("link ephemeral")))
    v["bob_device_8_identity_seed"] = hex(fixedKey("bob device 8 identity seed"))
    v["link_ephemeral_private"] = hex(fixedKey("link ephemeral"))
    let code = linkCodeVector(ephemeral: linkEphemeral, deviceKey: newDevice.publicKey)
    v["link_code"] = hex(code.encoded)
    v["link_code_text"] = hex(Array(code.text.utf8))
    let list2 = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 7, identityKey: bobIK.publicKey, createdAt: 1_767_225_600_000),
                                                DeviceEntry(deviceId: 8, identityKey: newDevice.publicKey, createdAt: 1_767_312_000_000)],
                                      version: 2, accountKey: bobAccount)
    v["bob_device_list_2"] = hex(list2.encoded)
    let transfer = AttachmentPointer(id: hex(fixedKey("link transfer id")), key: fixedKey("link transfer key"), size: 1000,
                                     digest: fixedKey("link transfer blob"), fileName: "link-transfer",
                                     contentType: "application/x-parley-link")
    let payload = ProvisioningPayload(address: "bob@example.org", accountKey: bobAccount, deviceId: 8, deviceList: list2,
                                      transfer: transfer)
    v["provisioning_payload"] = hex(payload.encoded())
    v["provisioning_ephemeral_private"] = hex(fixedKey("provisioning ephemeral"))
    v["provisioning_message"] = hex(try Provisioning.seal(payload, to: code, random: QueuedRandom([fixedKey("provisioning ephemeral")])))
    return v
}

/// The link code of the vectors: relay `example.org`, slot bytes 0x00…0x0f.
func linkCodeVector(ephemeral: X25519.KeyPair, deviceKey: Ed25519.PublicKey) -> LinkCode {
    LinkCode(relay: "example.org", slot: Array(0..<16), ephemeralKey: ephemeral.publicKey, deviceKey: deviceKey)
}

/// §5 for the next message `session` sends: its sending chain key, the message key KDF_CK makes of it, and
/// the AEAD key and nonce HKDF expands that into.
func addMessageKeys(of session: RatchetSession, message number: Int, to v: inout [String: String]) throws {
    let chainKey = try #require(session.exportSecretsForTesting().sendingChainKey)
    let messageKey = RatchetSession.kdfChain(SecretBytes(chainKey)).messageKey
    let keyAndNonce = RatchetSession.expandMessageKey(messageKey).unprotectedBytes
    v["message_\(number)_chain_key"] = hex(chainKey)
    v["message_\(number)_message_key"] = hex(messageKey.unprotectedBytes)
    v["message_\(number)_aead_key"] = hex(Array(keyAndNonce[0..<32]))
    v["message_\(number)_aead_nonce"] = hex(Array(keyAndNonce[32..<56]))
}

private let vectorFile = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
    .appendingPathComponent("../vectors/protocol-v1.json").standardized

@Test func protocolVectorsMatchTheCommittedFile() throws {
    if ProcessInfo.processInfo.environment["PARLEY_WRITE_VECTORS"] == "1" {
        // The KEM ciphertext of an existing file is kept, so that adding vectors leaves every existing value
        // byte-identical (outside implementations check against them); delete the file for a fresh one.
        let existing = (try? Data(contentsOf: vectorFile)).flatMap { try? JSONSerialization.jsonObject(with: $0) as? [String: String] }
        let vectors = try computeVectors(kemCiphertext: existing?["kem_ciphertext"].map(unhex))
        let data = try JSONSerialization.data(withJSONObject: vectors, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: vectorFile)
        Issue.record("vectors rewritten to \(vectorFile.path); review and commit them, then run again without PARLEY_WRITE_VECTORS")
        return
    }
    let stored = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: vectorFile)) as? [String: String],
                              "missing \(vectorFile.path)")
    let computed = try computeVectors(kemCiphertext: unhex(try #require(stored["kem_ciphertext"])))
    #expect(Set(computed.keys) == Set(stored.keys))
    for (name, value) in computed.sorted(by: { $0.key < $1.key }) {
        #expect(stored[name] == value, "vector \(name)")
    }
}

@Test func storedEnvelopeOpensAndDecrypts() throws {
    let stored = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: vectorFile)) as? [String: String])
    let alice = DeviceIdentity(deviceId: 1, keyPair: try Ed25519.KeyPair(seed: SecretBytes(unhex(stored["alice_identity_seed"]!))))
    let content = try SealedSender.open(unhex(stored["sealed_envelope_message_2"]!), identity: alice)
    #expect(content.certificate.address == "bob@example.org")
    try content.certificate.verify(now: 1_800_000_000_000)
    guard case .ratchet(let message) = content.message else { Issue.record("expected a ratchet message"); return }
    #expect(hex(message.encoded) == stored["message_2_ratchet"])
}

@Test func storedProvisioningMessageOpensWithTheLinkCode() throws {
    let stored = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: vectorFile)) as? [String: String])
    func value(_ name: String) throws -> [UInt8] { unhex(try #require(stored[name], "missing \(name)")) }
    let ephemeral = try X25519.KeyPair(privateKey: SecretBytes(try value("link_ephemeral_private")))
    let newDevice = try Ed25519.KeyPair(seed: SecretBytes(try value("bob_device_8_identity_seed")))
    let code = try LinkCode(text: String(decoding: try value("link_code_text"), as: UTF8.self))
    #expect(code == linkCodeVector(ephemeral: ephemeral, deviceKey: newDevice.publicKey))
    let payload = try Provisioning.open(try value("provisioning_message"), ephemeral: ephemeral, code: code)
    #expect(payload.address == "bob@example.org" && payload.deviceId == 8)
    #expect(hex(payload.deviceList.encoded) == stored["bob_device_list_2"])
}

@Test func protocolDocumentQuotesTheVectorFile() throws {
    let stored = try #require(JSONSerialization.jsonObject(with: Data(contentsOf: vectorFile)) as? [String: String])
    let document = try String(contentsOf: vectorFile.deletingLastPathComponent().appendingPathComponent("../../PROTOCOL.md").standardized,
                              encoding: .utf8)
    let quoted = document.split(separator: "\n").compactMap { line -> (String, String)? in
        let parts = line.split(separator: " = ")
        guard parts.count == 2, stored[String(parts[0])] != nil else { return nil }
        return (String(parts[0]), String(parts[1]))
    }
    #expect(quoted.count >= 5)
    for (name, value) in quoted { #expect(stored[name] == value, "PROTOCOL.md quotes \(name) differently from the vector file") }
}
