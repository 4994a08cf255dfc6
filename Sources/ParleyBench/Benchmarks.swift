import CSodium
import ParleyCrypto
import ParleyProtocol

/// Two devices, Bob's prekeys and a bundle of his with a one-time X25519 and a one-time ML-KEM prekey,
/// so PQXDH runs its full form (DH1–DH4 + KEM).
struct Fixture {
    let alice = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
    let aliceAccount = Ed25519.KeyPair()
    let bob = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
    let bobPreKeys: LocalPreKeys
    let bundle: PreKeyBundle
    let plaintext: [UInt8]

    init() {
        var keys = LocalPreKeys()
        keys.rotateSignedPreKey()
        keys.rotateLastResortPQPreKey()
        let opk = keys.generateOneTimePreKeys(1)[0]
        let pqopk = keys.generateOneTimePQPreKeys(1)[0]
        bobPreKeys = keys
        bundle = keys.bundle(identity: bob, oneTimePreKeyId: opk, oneTimePQPreKeyId: pqopk)
        plaintext = SystemRandom().bytes(256)
    }

    /// Alice's and Bob's sessions right after PQXDH; Bob has not received yet.
    func startSession() -> (alice: RatchetSession, bob: RatchetSession) {
        let initiation = try! PQXDH.initiate(identity: alice, bundle: bundle)
        let a = try! RatchetSession.initiator(initiation, localIdentity: alice.publicKey, bundle: bundle)
        let response = try! PQXDH.respond(identity: bob, preKeys: bobPreKeys, header: initiation.header)
        let b = RatchetSession.responder(response, localIdentity: bob.publicKey, remoteIdentity: alice.publicKey)
        return (a, b)
    }
}

@inline(__always) func firstByte(_ s: SecretBytes) -> UInt8 { s.withUnsafeBytes { $0[0] } }

struct Benchmarks {
    var measure: Measure
    let fixture = Fixture()
    /// Which benchmarks to run (all when empty), for profiling one of them.
    let only: Set<String>
    private(set) var ratios: [String: Double] = [:]

    init(budgetSeconds: Double, only: Set<String>) {
        measure = Measure(budgetSeconds: budgetSeconds)
        self.only = only
    }

    private func wanted(_ name: String) -> Bool { only.isEmpty || only.contains(name) }

    /// Measures `parley` and `primitives` in alternating batches and prints one line.
    private mutating func compare(_ name: String, description: String, primitives: [String], target: Double? = nil,
                                  parley: () -> UInt8, baseline: () -> UInt8) {
        let (p, b) = measure.paired(parley, baseline)
        let ratio = p.nanoseconds / b.nanoseconds
        ratios[name] = ratio
        var line = JSONLine(name: name)
        line.add("value", .number(p.nanoseconds))
        line.add("unit", .string("ns/op"))
        line.add("ratio", .number(ratio))
        line.add("primitives_value", .number(b.nanoseconds))
        if let target {
            line.add("target_ratio", .number(target))
            line.add("ok", .bool(ratio <= target))
        }
        line.add("description", .string(description))
        line.add("primitives", .strings(primitives))
        line.add("iterations", .int(p.iterations))
        line.add("batches", .int(p.batches))
        line.add("preempted_batches", .int(p.preemptedBatches + b.preemptedBatches))
        print(line.text)
    }

    private mutating func single(_ name: String, _ description: String, _ op: () -> UInt8) {
        let r = measure.run(op)
        var line = JSONLine(name: name)
        line.add("value", .number(r.nanoseconds))
        line.add("unit", .string("ns/op"))
        line.add("description", .string(description))
        line.add("iterations", .int(r.iterations))
        line.add("batches", .int(r.batches))
        line.add("preempted_batches", .int(r.preemptedBatches))
        print(line.text)
    }

    // MARK: Chain message

    /// A 256-byte plaintext encrypted by Alice and decrypted by Bob on a chain both already have (no DH
    /// step, no skipped keys). Primitives, per side (PROTOCOL.md §5):
    ///   KDF_CK        2 × HMAC-SHA256 (key 32 B, message 1 B)
    ///   message keys  HKDF(0^32, mk, INFO_MESSAGE, 56) = 1 extract + 2 expand = 3 × HMAC-SHA256
    ///   AEAD          XChaCha20-Poly1305 of 256 B (+16 B tag), AD = AD(66) ‖ header(41) = 107 B
    mutating func chainMessage() {
        guard wanted("chain_message") else { return }
        var (alice, bob) = fixture.startSession()
        let plaintext = fixture.plaintext
        _ = try! bob.decrypt(try! alice.encrypt(plaintext))   // Bob's DH step; from here on one chain
        precondition(try! bob.decrypt(try! alice.encrypt(plaintext)) == plaintext)

        let s = Scratch()
        let ckA = s.bytes(32), ckB = s.bytes(32, fill: 0)
        ckB.update(from: ckA, count: 32)
        let mk = s.bytes(32), kn = s.bytes(56), prk = s.bytes(32), t = s.bytes(32)
        let zero = s.bytes(32, fill: 0), info = s.bytes(ProtocolConstants.infoMessage)
        let one = s.bytes([0x01]), two = s.bytes([0x02])
        let pt = s.bytes(fixture.plaintext), ct = s.bytes(256 + 16), out = s.bytes(256), ad = s.bytes(66 + 41)
        let infoLength = ProtocolConstants.infoMessage.count
        func messageKeys(_ ck: Bytes) {
            Raw.hmac(mk, key: ck, 32, one, 1)
            Raw.hmac(ck, key: ck, 32, two, 1)
            Raw.hkdf(kn, 56, salt: zero, 32, ikm: mk, 32, info: info, infoLength, prk: prk, t: t)
        }

        compare("chain_message",
                description: "RatchetSession.encrypt + decrypt of a 256-byte plaintext on an existing chain",
                primitives: ["sender: 2x HMAC-SHA256 (KDF_CK, key 32 B, msg 1 B)",
                             "sender: 3x HMAC-SHA256 (HKDF extract + 2 expand -> 56 B key||nonce)",
                             "sender: XChaCha20-Poly1305 encrypt 256 B, AD 107 B",
                             "receiver: 2x HMAC-SHA256 (KDF_CK) + 3x HMAC-SHA256 (HKDF)",
                             "receiver: XChaCha20-Poly1305 decrypt 272 B, AD 107 B"],
                target: 1.5,
                parley: {
                    let m = try! alice.encrypt(plaintext)
                    return try! bob.decrypt(m)[0] ^ m.ciphertext[0]
                },
                baseline: {
                    messageKeys(ckA)
                    Raw.seal(ct, pt, 256, ad: ad, 107, keyAndNonce: kn)
                    messageKeys(ckB)
                    Raw.open(out, ct, 256 + 16, ad: ad, 107, keyAndNonce: kn)
                    return out[0] ^ ct[0]
                })
    }

    // MARK: DH ratchet step

    /// Ping-pong: each operation is one 256-byte message, encrypted on an existing sending chain and
    /// decrypted by a peer whose decryption performs a DH ratchet step (PROTOCOL.md §5.3). Primitives:
    ///   sender        5 × HMAC-SHA256, XChaCha20-Poly1305 encrypt 256 B
    ///   ratchet step  X25519; KDF_RK = HKDF(rk, dh, INFO_ROOT, 64) = 3 × HMAC-SHA256;
    ///                 new key pair (32 random bytes + X25519 base); X25519; KDF_RK (3 × HMAC-SHA256)
    ///   receiver      5 × HMAC-SHA256, XChaCha20-Poly1305 decrypt 272 B
    mutating func ratchetStep() {
        guard wanted("dh_ratchet_step") else { return }
        var (alice, bob) = fixture.startSession()
        let plaintext = fixture.plaintext
        var aliceSends = true
        func leg() -> UInt8 {
            defer { aliceSends.toggle() }
            if aliceSends {
                let m = try! alice.encrypt(plaintext)
                return try! bob.decrypt(m)[0] ^ m.ciphertext[0]
            } else {
                let m = try! bob.encrypt(plaintext)
                return try! alice.decrypt(m)[0] ^ m.ciphertext[0]
            }
        }
        // Every leg must ratchet: the receiver's sending ratchet key changes each time.
        for _ in 0..<4 {
            let receiverBefore = (aliceSends ? bob : alice).exportSecretsForTesting().sendingRatchetPublicKey
            _ = leg()
            precondition((aliceSends ? alice : bob).exportSecretsForTesting().sendingRatchetPublicKey != receiverBefore)
        }

        // The baseline is a real Double Ratchet on raw buffers, so the AEAD tag check proves it derives
        // the same kind of keys in the same way.
        let s = Scratch()
        struct Party { let rk, sk, pk, cks, ckr: Bytes }
        func party() -> Party { Party(rk: s.bytes(32), sk: s.bytes(32), pk: s.bytes(32), cks: s.bytes(32), ckr: s.bytes(32)) }
        let a = party(), b = party()
        let mk = s.bytes(32), kn = s.bytes(56), prk = s.bytes(32), t = s.bytes(32), dh = s.bytes(32), rkOut = s.bytes(64)
        let zero = s.bytes(32, fill: 0), one = s.bytes([0x01]), two = s.bytes([0x02])
        let infoMessage = s.bytes(ProtocolConstants.infoMessage), infoRoot = s.bytes(ProtocolConstants.infoRoot)
        let pt = s.bytes(fixture.plaintext), ct = s.bytes(256 + 16), out = s.bytes(256), ad = s.bytes(66 + 41)
        func messageKeys(_ ck: Bytes) {
            Raw.hmac(mk, key: ck, 32, one, 1)
            Raw.hmac(ck, key: ck, 32, two, 1)
            Raw.hkdf(kn, 56, salt: zero, 32, ikm: mk, 32, info: infoMessage, ProtocolConstants.infoMessage.count, prk: prk, t: t)
        }
        func kdfRoot(_ rk: Bytes, _ ck: Bytes) {
            Raw.hkdf(rkOut, 64, salt: rk, 32, ikm: dh, 32, info: infoRoot, ProtocolConstants.infoRoot.count, prk: prk, t: t)
            rk.update(from: rkOut, count: 32)
            ck.update(from: rkOut + 32, count: 32)
        }
        // §5.2: Bob's first ratchet key is "his signed prekey"; Alice derives her first sending chain.
        b.rk.update(from: a.rk, count: 32)
        Raw.keyPair(a.sk, a.pk)
        Raw.keyPair(b.sk, b.pk)
        Raw.x25519(dh, a.sk, b.pk)
        kdfRoot(a.rk, a.cks)
        var aSends = true
        compare("dh_ratchet_step",
                description: "one 256-byte message whose decryption performs a DH ratchet step (sender encrypt + receiver decrypt, ping-pong)",
                primitives: ["sender: 5x HMAC-SHA256 (KDF_CK + HKDF) + XChaCha20-Poly1305 encrypt 256 B",
                             "step: 2x X25519, 1x X25519 key pair (randombytes 32 B + scalarmult_base)",
                             "step: 2x KDF_RK = 6x HMAC-SHA256 (HKDF -> 64 B)",
                             "receiver: 5x HMAC-SHA256 + XChaCha20-Poly1305 decrypt 272 B"],
                parley: leg,
                baseline: {
                    let (sender, receiver) = aSends ? (a, b) : (b, a)
                    aSends.toggle()
                    messageKeys(sender.cks)
                    Raw.seal(ct, pt, 256, ad: ad, 107, keyAndNonce: kn)
                    Raw.x25519(dh, receiver.sk, sender.pk)
                    kdfRoot(receiver.rk, receiver.ckr)
                    Raw.keyPair(receiver.sk, receiver.pk)
                    Raw.x25519(dh, receiver.sk, sender.pk)
                    kdfRoot(receiver.rk, receiver.cks)
                    messageKeys(receiver.ckr)
                    Raw.open(out, ct, 256 + 16, ad: ad, 107, keyAndNonce: kn)
                    return out[0] ^ ct[0]
                })
    }

    // MARK: PQXDH

    /// Full session start with a one-time prekey and a one-time PQ prekey (PROTOCOL.md §4, §5.2):
    /// PQXDH.initiate + RatchetSession.initiator, PQXDH.respond + RatchetSession.responder. Primitives:
    ///   initiator  2 × Ed25519 verify (Encode(SPK) 33 B, Encode(PQPK) 1569 B); X25519 key pair (EK);
    ///              Ed25519→X25519 public key (IK_B); ML-KEM-1024 encapsulate; 4 × X25519;
    ///              HKDF(0^32, 192 B, INFO_PQXDH, 32) = 2 × HMAC-SHA256;
    ///              ratchet init: X25519 key pair, X25519, KDF_RK (3 × HMAC-SHA256)
    ///   responder  Ed25519→X25519 public key (IK_A); ML-KEM-1024 decapsulate; 4 × X25519; 2 × HMAC-SHA256
    /// ML-KEM is called through ParleyCrypto.MLKEM1024KEM, a thin wrapper over swift-crypto (the bench does
    /// not link swift-crypto itself); its cost is counted as primitive on both sides of the ratio.
    mutating func pqxdh() {
        guard wanted("pqxdh_session_start") else { return }
        let f = fixture
        let bundle = f.bundle
        let s = Scratch()
        let spk = f.bobPreKeys.signedPreKeys[bundle.signedPreKeyId]!
        let opk = f.bobPreKeys.oneTimePreKeys[bundle.oneTimePreKeyId]!
        let pq = f.bobPreKeys.oneTimePQPreKeys[bundle.pqPreKeyId]!
        let aIK = s.bytes(f.alice.publicKey.bytes), bIK = s.bytes(f.bob.publicKey.bytes)
        let aX = s.bytes(f.alice.agreementKey.privateKey.unprotectedBytes)
        let bX = s.bytes(f.bob.agreementKey.privateKey.unprotectedBytes)
        let spkPriv = s.bytes(spk.privateKey.unprotectedBytes), spkPub = s.bytes(spk.publicKey.bytes)
        let opkPriv = s.bytes(opk.privateKey.unprotectedBytes), opkPub = s.bytes(opk.publicKey.bytes)
        let spkEncoded = KeyEncoding.encode(bundle.signedPreKey), pqEncoded = KeyEncoding.encode(bundle.pqPreKey)
        let spkMessage = s.bytes(spkEncoded), pqMessage = s.bytes(pqEncoded)
        let spkSig = s.bytes(bundle.signedPreKeySignature), pqSig = s.bytes(bundle.pqPreKeySignature)
        let ek = s.bytes(32), ekPub = s.bytes(32), rk = s.bytes(32), rkPub = s.bytes(32), dh = s.bytes(32)
        let bIKx = s.bytes(32), aIKx = s.bytes(32)
        let ikmA = s.bytes(192, fill: 0xFF), ikmB = s.bytes(192, fill: 0xFF)
        let skA = s.bytes(32), skB = s.bytes(32), rootOut = s.bytes(64), prk = s.bytes(32), t = s.bytes(32)
        let zero = s.bytes(32, fill: 0)
        let infoPQXDH = s.bytes(ProtocolConstants.infoPQXDH), infoRoot = s.bytes(ProtocolConstants.infoRoot)
        func copySecret(_ secret: SecretBytes, to p: Bytes) {
            secret.withUnsafeBytes { p.update(from: $0.baseAddress!.assumingMemoryBound(to: UInt8.self), count: 32) }
        }

        compare("pqxdh_session_start",
                description: "PQXDH.initiate + RatchetSession.initiator + PQXDH.respond + RatchetSession.responder (with OPK and one-time PQ prekey)",
                primitives: ["initiator: 2x Ed25519 verify (33 B, 1569 B)",
                             "initiator: X25519 key pair (EK), Ed25519->X25519 public key (IK_B)",
                             "initiator: ML-KEM-1024 encapsulate",
                             "initiator: 4x X25519, HKDF 192 B IKM -> 32 B (2x HMAC-SHA256)",
                             "initiator ratchet init: X25519 key pair, 1x X25519, KDF_RK (3x HMAC-SHA256)",
                             "responder: Ed25519->X25519 public key (IK_A), ML-KEM-1024 decapsulate",
                             "responder: 4x X25519, HKDF 192 B IKM -> 32 B (2x HMAC-SHA256)"],
                parley: {
                    let initiation = try! PQXDH.initiate(identity: f.alice, bundle: bundle)
                    let a = try! RatchetSession.initiator(initiation, localIdentity: f.alice.publicKey, bundle: bundle)
                    let response = try! PQXDH.respond(identity: f.bob, preKeys: f.bobPreKeys, header: initiation.header)
                    let b = RatchetSession.responder(response, localIdentity: f.bob.publicKey, remoteIdentity: f.alice.publicKey)
                    return firstByte(initiation.sharedKey) ^ firstByte(response.sharedKey) ^ (a.canSend ? 1 : 0) ^ (b.canSend ? 2 : 0)
                },
                baseline: {
                    // Alice
                    precondition(crypto_sign_verify_detached(spkSig, spkMessage, UInt64(spkEncoded.count), bIK) == 0)
                    precondition(crypto_sign_verify_detached(pqSig, pqMessage, UInt64(pqEncoded.count), bIK) == 0)
                    Raw.keyPair(ek, ekPub)
                    precondition(crypto_sign_ed25519_pk_to_curve25519(bIKx, bIK) == 0)
                    let (ciphertext, ssA) = try! bundle.pqPreKey.encapsulate()
                    Raw.x25519(ikmA + 32, aX, spkPub)
                    Raw.x25519(ikmA + 64, ek, bIKx)
                    Raw.x25519(ikmA + 96, ek, spkPub)
                    Raw.x25519(ikmA + 128, ek, opkPub)
                    copySecret(ssA, to: ikmA + 160)
                    Raw.hkdf(skA, 32, salt: zero, 32, ikm: ikmA, 192, info: infoPQXDH, ProtocolConstants.infoPQXDH.count, prk: prk, t: t)
                    Raw.keyPair(rk, rkPub)
                    Raw.x25519(dh, rk, spkPub)
                    Raw.hkdf(rootOut, 64, salt: skA, 32, ikm: dh, 32, info: infoRoot, ProtocolConstants.infoRoot.count, prk: prk, t: t)
                    // Bob
                    precondition(crypto_sign_ed25519_pk_to_curve25519(aIKx, aIK) == 0)
                    let ssB = try! pq.decapsulate(ciphertext)
                    Raw.x25519(ikmB + 32, spkPriv, aIKx)
                    Raw.x25519(ikmB + 64, bX, ekPub)
                    Raw.x25519(ikmB + 96, spkPriv, ekPub)
                    Raw.x25519(ikmB + 128, opkPriv, ekPub)
                    copySecret(ssB, to: ikmB + 160)
                    Raw.hkdf(skB, 32, salt: zero, 32, ikm: ikmB, 192, info: infoPQXDH, ProtocolConstants.infoPQXDH.count, prk: prk, t: t)
                    precondition(sodium_memcmp(skA, skB, 32) == 0, "baseline PQXDH keys differ")
                    return skA[0] ^ rootOut[0]
                })
    }

    // MARK: Sealed sender

    /// SealedSender.seal + SealedSender.open of a realistic inner content: Alice's sender certificate and a
    /// RatchetMessage carrying a 256-byte message padded to 320 B (PROTOCOL.md §6.3, §7). The certificate
    /// checks after opening belong to the session manager and are not part of this operation. Primitives:
    ///   seal  Ed25519→X25519 public key (recipient); X25519 key pair (E); X25519;
    ///         HKDF(E.pub ‖ X(IK_R), s, INFO_SEALED, 56) = 3 × HMAC-SHA256; XChaCha20-Poly1305 encrypt, AD 33 B
    ///   open  X25519; 3 × HMAC-SHA256; XChaCha20-Poly1305 decrypt
    mutating func sealedSender() {
        guard wanted("sealed_message") else { return }
        let f = fixture
        var (alice, _) = f.startSession()
        let message = try! alice.encrypt(Padding.pad(f.plaintext))
        let certificate = SenderCertificate.issue(address: "alice@parley.example", accountKey: f.aliceAccount, deviceId: 1,
                                                  deviceKey: f.alice.publicKey, expiresAt: 4_102_444_800_000)
        let content = SealedContent(certificate: certificate, message: .ratchet(message))
        let sample = try! SealedSender.seal(content, to: f.bob.publicKey)
        precondition(try! SealedSender.open(sample, identity: f.bob) == content)
        let innerLength = sample.count - 33 - 16

        let s = Scratch()
        let bIK = s.bytes(f.bob.publicKey.bytes), bX = s.bytes(f.bob.agreementKey.privateKey.unprotectedBytes)
        let bXPub = s.bytes(f.bob.agreementKey.publicKey.bytes)
        let recipient = s.bytes(32), ephemeral = s.bytes(32), header = s.bytes(33, fill: 0x01)
        let shared = s.bytes(32), salt = s.bytes(64), kn = s.bytes(56), prk = s.bytes(32), t = s.bytes(32)
        let info = s.bytes(ProtocolConstants.infoSealed), infoLength = ProtocolConstants.infoSealed.count
        let inner = s.bytes(innerLength), ct = s.bytes(innerLength + 16), out = s.bytes(innerLength)

        compare("sealed_message",
                description: "SealedSender.seal + open; inner = sender certificate + RatchetMessage of 256 B padded to 320 B (AEAD plaintext \(innerLength) B)",
                primitives: ["seal: Ed25519->X25519 public key (recipient), X25519 key pair (E), 1x X25519",
                             "seal: HKDF 64 B salt -> 56 B (3x HMAC-SHA256)",
                             "seal: XChaCha20-Poly1305 encrypt \(innerLength) B, AD 33 B",
                             "open: 1x X25519, HKDF (3x HMAC-SHA256)",
                             "open: XChaCha20-Poly1305 decrypt \(innerLength + 16) B, AD 33 B"],
                target: 1.3,
                parley: {
                    let envelope = try! SealedSender.seal(content, to: f.bob.publicKey)
                    let opened = try! SealedSender.open(envelope, identity: f.bob)
                    return envelope[1] ^ UInt8(truncatingIfNeeded: opened.certificate.deviceId)
                },
                baseline: {
                    precondition(crypto_sign_ed25519_pk_to_curve25519(recipient, bIK) == 0)
                    Raw.keyPair(ephemeral, header + 1)
                    Raw.x25519(shared, ephemeral, recipient)
                    salt.update(from: header + 1, count: 32)
                    (salt + 32).update(from: recipient, count: 32)
                    Raw.hkdf(kn, 56, salt: salt, 64, ikm: shared, 32, info: info, infoLength, prk: prk, t: t)
                    Raw.seal(ct, inner, innerLength, ad: header, 33, keyAndNonce: kn)

                    Raw.x25519(shared, bX, header + 1)
                    salt.update(from: header + 1, count: 32)
                    (salt + 32).update(from: bXPub, count: 32)
                    Raw.hkdf(kn, 56, salt: salt, 64, ikm: shared, 32, info: info, infoLength, prk: prk, t: t)
                    Raw.open(out, ct, innerLength + 16, ad: header, 33, keyAndNonce: kn)
                    return out[0] ^ ct[0]
                })
    }

    // MARK: Single primitives

    mutating func primitives() {
        guard wanted("primitives") else { return }
        let s = Scratch()
        let sk = s.bytes(32), pk = s.bytes(32), out = s.bytes(64)
        crypto_scalarmult_curve25519_base(pk, sk)
        let seed = s.bytes(32), edPk = s.bytes(32), edSk = s.bytes(64), sig = s.bytes(64), msg = s.bytes(256)
        crypto_sign_seed_keypair(edPk, edSk, seed)
        crypto_sign_detached(sig, nil, msg, 64, edSk)
        let key = s.bytes(32), kn = s.bytes(56), ct = s.bytes(256 + 16), pt = s.bytes(256)
        Raw.seal(ct, msg, 256, ad: msg, 0, keyAndNonce: kn)
        let pq = MLKEM1024KEM.KeyPair()
        let (ciphertext, _) = try! pq.publicKey.encapsulate()

        single("x25519", "crypto_scalarmult_curve25519") { Raw.x25519(out, sk, pk); return out[0] }
        single("x25519_base", "crypto_scalarmult_curve25519_base (public key of a new pair)") {
            crypto_scalarmult_curve25519_base(out, sk); return out[0]
        }
        single("randombytes_32", "randombytes_buf, 32 B") { randombytes_buf(out, 32); return out[0] }
        single("ed25519_pk_to_x25519", "crypto_sign_ed25519_pk_to_curve25519") {
            precondition(crypto_sign_ed25519_pk_to_curve25519(out, edPk) == 0); return out[0]
        }
        single("ed25519_sign_64B", "crypto_sign_detached, 64 B message") {
            crypto_sign_detached(out, nil, msg, 64, edSk); return out[0]
        }
        single("ed25519_verify_64B", "crypto_sign_verify_detached, 64 B message") {
            crypto_sign_verify_detached(sig, msg, 64, edPk) == 0 ? 1 : 0
        }
        single("hmac_sha256_32B", "crypto_auth_hmacsha256 init/update/final, key 32 B, message 32 B") {
            Raw.hmac(out, key: key, 32, msg, 32); return out[0]
        }
        single("xchacha20poly1305_encrypt_256B", "crypto_aead_xchacha20poly1305_ietf_encrypt, 256 B, no AD") {
            Raw.seal(ct, msg, 256, ad: msg, 0, keyAndNonce: kn); return ct[0]
        }
        single("xchacha20poly1305_decrypt_256B", "crypto_aead_xchacha20poly1305_ietf_decrypt, 256 B + tag, no AD") {
            Raw.open(pt, ct, 256 + 16, ad: msg, 0, keyAndNonce: kn); return pt[0]
        }
        single("mlkem1024_encapsulate", "ML-KEM-1024 encapsulate (swift-crypto via ParleyCrypto.MLKEM1024KEM)") {
            let (c, ss) = try! pq.publicKey.encapsulate(); return c[0] ^ firstByte(ss)
        }
        single("mlkem1024_decapsulate", "ML-KEM-1024 decapsulate (swift-crypto via ParleyCrypto.MLKEM1024KEM)") {
            firstByte(try! pq.decapsulate(ciphertext))
        }
    }
}
