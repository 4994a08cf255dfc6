import ParleyCrypto
import ParleyMLS

/// Group operations of ParleyMLS (issue #21) at 10, 100, 1,000 and 10,000 members, in Parley's preferred
/// suite (3: X25519, ChaCha20-Poly1305, SHA-256, Ed25519). One JSON line per operation and size, in ms.
///
/// The group of each size is made the way a creator makes one: a single commit that adds every other
/// member (with a path). A tree made so holds keys only on the creator's path, and a commit with a path
/// encrypts to the resolution of each copath node, which would be every leaf below it. So before measuring,
/// one member in each of the committer's copath subtrees commits with a path (log2 n commits), as members of
/// a living group do: the committer's copath nodes then hold keys. Every operation starts from a copy of
/// the committer's and of one receiver's state (the library replaces state only after a message validates,
/// so a copy is what a real member pays too). The add is measured without a path (RFC 9420 needs none for
/// Adds alone) and with one.
struct MLSBenchmarks {
    var measure: Measure
    static let sizes = [10, 100, 1_000, 10_000]
    let suite = CipherSuite.x25519ChaCha20Poly1305
    private(set) var ratio: Double?
    /// Results by "operation@members", in ms.
    private(set) var milliseconds: [String: Double] = [:]

    let sizes: [Int]

    init(budgetSeconds: Double, sizes: [Int] = MLSBenchmarks.sizes) {
        measure = Measure(budgetSeconds: budgetSeconds)
        self.sizes = sizes
    }

    struct Client {
        let signatureKey: SignaturePrivateKey
        let initKeys: HPKEKeyPair
        let encryptionKeys: HPKEKeyPair
        let keyPackage: KeyPackage

        init(suite: CipherSuite, index: Int) {
            signatureKey = SignaturePrivateKey()
            initKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
            encryptionKeys = suite.deriveKeyPair(ikm: SecretBytes.random(count: 32))
            var leaf = LeafNode(encryptionKey: encryptionKeys.publicKey, signatureKey: signatureKey.publicKey,
                                credential: .basic(identity: Array("member-\(index)".utf8)), capabilities: Capabilities(cipherSuites: [suite.id]),
                                source: .keyPackage(Lifetime(notBefore: 0, notAfter: .max)), extensions: [])
            try! leaf.sign(suite: suite, key: signatureKey, context: nil)
            var keyPackage = KeyPackage(cipherSuite: suite.id, initKey: initKeys.publicKey, leafNode: leaf, extensions: [])
            keyPackage.sign(suite: suite, key: signatureKey)
            self.keyPackage = keyPackage
        }
    }

    mutating func run() {
        for members in sizes { runGroup(members: members) }
        messageRatio()
    }

    private mutating func runGroup(members: Int) {
        let setupStart = Measure.now()
        let creator = Client(suite: suite, index: 0)
        let others = (1..<members).map { Client(suite: suite, index: $0) }
        var committer = try! Group.create(suite: suite, groupID: Array("bench".utf8), leaf: creator.keyPackage.leafNode,
                                          encryptionPrivateKey: creator.encryptionKeys.privateKey, signatureKey: creator.signatureKey)
        let grown = try! committer.commit(adding: others.map(\.keyPackage))
        // The receiver is the last member: the far side of the tree from the committer.
        let last = others[others.count - 1]
        var receiver = try! Group.join(welcome: grown.welcome!, keyPackage: last.keyPackage, initPrivateKey: last.initKeys.privateKey,
                                       encryptionPrivateKey: last.encryptionKeys.privateKey, signatureKey: last.signatureKey)
        // One member in each of the committer's copath subtrees (leaves 2, 4, 8, …) commits with a path, so
        // that every copath node of the committer holds a key: its resolution is then that one node, as in a
        // group whose members have been active, and a path costs one encryption per level.
        var populating: [Group] = []
        var first = 2
        while first < members - 1 {
            let client = others[first - 1]
            populating.append(try! Group.join(welcome: grown.welcome!, keyPackage: client.keyPackage, initPrivateKey: client.initKeys.privateKey,
                                              encryptionPrivateKey: client.encryptionKeys.privateKey, signatureKey: client.signatureKey))
            first *= 2
        }
        for index in populating.indices {
            let update = try! populating[index].commit()
            _ = try! committer.process(update.message)
            _ = try! receiver.process(update.message)
            for other in populating.indices where other != index { _ = try! populating[other].process(update.message) }
        }
        let setupSeconds = Double(Measure.now() - setupStart) / 1e9
        let newcomer = Client(suite: suite, index: members)
        let (committerBase, receiverBase) = (committer, receiver)

        func time(_ name: String, _ description: String, _ op: () -> UInt8) {
            let r = measure.run(op)
            let ms = r.nanoseconds / 1e6
            milliseconds["\(name)@\(members)"] = ms
            var line = JSONLine(name: "mls_\(name)")
            line.add("members", .int(members))
            line.add("value", .number(ms))
            line.add("unit", .string("ms/op"))
            line.add("description", .string(description))
            line.add("iterations", .int(r.iterations))
            line.add("batches", .int(r.batches))
            line.add("preempted_batches", .int(r.preemptedBatches))
            print(line.text)
        }

        for (withPath, label) in [(false, "add_member"), (true, "add_member_with_path")] {
            var sample = committerBase
            let commit = try! sample.commit(adding: [newcomer.keyPackage], updatePath: withPath)
            time("\(label)_commit", "committer: commit adding one member\(withPath ? " with a path" : " (no path)"), Welcome and GroupInfo") {
                var g = committerBase
                return try! g.commit(adding: [newcomer.keyPackage], updatePath: withPath).groupInfo.confirmationTag[0]
            }
            time("\(label)_process", "another member: processing that commit") {
                var g = receiverBase
                _ = try! g.process(commit.message)
                return g.interimTranscriptHash[0]
            }
        }
        var removing = committerBase
        let remove = try! removing.commit(removing: [1])
        time("remove_commit", "committer: commit removing one member (path required)") {
            var g = committerBase
            return try! g.commit(removing: [1]).groupInfo.confirmationTag[0]
        }
        time("remove_process", "another member: processing that commit") {
            var g = receiverBase
            _ = try! g.process(remove.message)
            return g.interimTranscriptHash[0]
        }
        var updating = committerBase
        let update = try! updating.commit()
        time("self_update_commit", "committer: empty commit with a path (self-update)") {
            var g = committerBase
            return try! g.commit().groupInfo.confirmationTag[0]
        }
        time("self_update_process", "another member: processing that commit") {
            var g = receiverBase
            _ = try! g.process(update.message)
            return g.interimTranscriptHash[0]
        }

        // Application messages on ratchets both sides have already started.
        _ = try! receiver.process(try! committer.encrypt([0]))
        let plaintext = [UInt8](repeating: 0x61, count: 100)
        time("application_message", "100-byte application message: encrypt (committer) + decrypt (receiver)") {
            guard case .application(let data, _) = try! receiver.process(try! committer.encrypt(plaintext)) else { fatalError("not application data") }
            return data[0]
        }
        var setup = JSONLine(name: "mls_group_setup")
        setup.add("members", .int(members))
        setup.add("value", .number(setupSeconds))
        setup.add("unit", .string("s"))
        setup.add("description", .string("KeyPackages, one commit adding every member, the receiver's join, and log2 n populating commits (not a target)"))
        print(setup.text)
    }

    /// The application message beside the primitives it is made of, called directly in the same run
    /// (suite 3, per message, both sides): Ed25519 sign and verify of the FramedContentTBS; per side 3
    /// ratchet derivations (key, nonce, next secret) and 2 sender-data derivations (HKDF-Expand, 1 HMAC
    /// each); ChaCha20-Poly1305 seal and open of the content (100 B + signature) and of the 12-byte SenderData.
    private mutating func messageRatio() {
        let signer = Ed25519.KeyPair()
        let tbs = [UInt8](repeating: 1, count: 180)
        let key = SecretBytes([UInt8](repeating: 2, count: 32)), nonce = [UInt8](repeating: 3, count: 12)
        let body = [UInt8](repeating: 4, count: 100 + 66), senderData = [UInt8](repeating: 5, count: 12), aad = [UInt8](repeating: 6, count: 50)
        let info = [UInt8](repeating: 7, count: 20)
        let primitives = { () -> UInt8 in
            let signature = signer.sign(tbs)
            var sink: UInt8 = signature[0]
            for _ in 0..<10 { sink ^= HKDFSHA256.expand(pseudoRandomKey: key, info: info, length: 32).withUnsafeBytes { $0[0] } }
            let c1 = try! ChaCha20Poly1305IETF.seal(body, associatedData: aad, nonce: nonce, key: key)
            let c2 = try! ChaCha20Poly1305IETF.seal(senderData, associatedData: aad, nonce: nonce, key: key)
            sink ^= try! ChaCha20Poly1305IETF.open(c1, associatedData: aad, nonce: nonce, key: key)[0]
            sink ^= try! ChaCha20Poly1305IETF.open(c2, associatedData: aad, nonce: nonce, key: key)[0]
            return sink ^ (signer.publicKey.isValidSignature(signature, for: tbs) ? 1 : 0)
        }
        let creator = Client(suite: suite, index: 0), other = Client(suite: suite, index: 1)
        var a = try! Group.create(suite: suite, groupID: Array("bench".utf8), leaf: creator.keyPackage.leafNode,
                                  encryptionPrivateKey: creator.encryptionKeys.privateKey, signatureKey: creator.signatureKey)
        let add = try! a.commit(adding: [other.keyPackage])
        var b = try! Group.join(welcome: add.welcome!, keyPackage: other.keyPackage, initPrivateKey: other.initKeys.privateKey,
                                encryptionPrivateKey: other.encryptionKeys.privateKey, signatureKey: other.signatureKey)
        _ = try! b.process(try! a.encrypt([0]))
        let plaintext = [UInt8](repeating: 0x61, count: 100)
        let (p, base) = measure.paired({
            guard case .application(let data, _) = try! b.process(try! a.encrypt(plaintext)) else { fatalError("not application data") }
            return data[0]
        }, primitives)
        ratio = p.nanoseconds / base.nanoseconds
        var line = JSONLine(name: "mls_application_message_ratio")
        line.add("value", .number(p.nanoseconds))
        line.add("unit", .string("ns/op"))
        line.add("ratio", .number(ratio!))
        line.add("primitives_value", .number(base.nanoseconds))
        line.add("target_ratio", .number(1.5))
        line.add("ok", .bool(ratio! <= 1.5))
        line.add("description", .string("100-byte application message, encrypt + decrypt, 2-member group, beside its primitives called directly"))
        line.add("primitives", .strings(["Ed25519 sign + verify (180 B)", "10 × HKDF-SHA256 expand (1 block)",
                                         "2 × ChaCha20-Poly1305 seal + open (166 B, 12 B)"]))
        line.add("iterations", .int(p.iterations))
        print(line.text)
    }
}
