import Foundation
import ParleyCrypto
@testable import ParleyMLS

/// The MLS (RFC 9420) decoders of outside bytes (issue #21): one target per structure a peer or the disk
/// hands us. Every TLS-encoded structure is canonical (minimal varints, optionals 0 or 1, no trailing bytes),
/// so whatever decodes must re-encode to the input. Past decoding, each target runs the checks a client runs
/// next on that structure; signatures and AEADs refuse almost every mutation, which is fine: what is fuzzed
/// is that nothing traps or believes a length on the way there.
extension FuzzTarget {
    static let mls: [String: @Sendable ([UInt8]) -> Void] = [
        "mls-message": mlsMessage,
        "mls-key-package": mlsKeyPackage,
        "mls-welcome": mlsWelcome,
        "mls-group-info": mlsGroupInfo,
        "mls-ratchet-tree": mlsRatchetTree,
        "mls-group-state": mlsGroupState,
        "mls-group-process": mlsGroupProcess,
    ]

    /// MLSMessage: PublicMessage and PrivateMessage framing, and the Welcome, GroupInfo and KeyPackage
    /// wrappers.
    static func mlsMessage(_ bytes: [UInt8]) {
        guard let message = try? MLSMessage(tlsEncoded: bytes) else { return }
        require(message.tlsEncoded == bytes, "MLSMessage round trip")
    }

    /// A KeyPackage as an Add proposal or a directory brings it: its signature, then the leaf checks an
    /// Add runs against the fixed group's tree.
    static func mlsKeyPackage(_ bytes: [UInt8]) {
        guard let keyPackage = try? KeyPackage(tlsEncoded: bytes) else { return }
        require(keyPackage.tlsEncoded == bytes, "KeyPackage round trip")
        guard let suite = try? CipherSuite(id: keyPackage.cipherSuite), keyPackage.verifySignature(suite: suite) else { return }
        _ = keyPackage.reference(suite: suite)
        guard let group = MLSFuzzFixture.shared?.group, group.suite == suite else { return }
        _ = try? group.tree.validateLeafNode(keyPackage.leafNode, use: .keyPackage, groupID: group.context.groupID, now: 1_700_000_000)
    }

    /// First byte 0: a Welcome, joined with the fixture's KeyPackage and init key (the vector's Welcome
    /// opens); otherwise the GroupSecrets a Welcome encrypts.
    static func mlsWelcome(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let rest = Array(bytes.dropFirst())
        if selector % 2 == 1 {
            guard let secrets = try? GroupSecrets(tlsEncoded: rest) else { return }
            require(secrets.tlsEncoded == rest, "GroupSecrets round trip")
            return
        }
        guard let welcome = try? Welcome(tlsEncoded: rest) else { return }
        require(welcome.tlsEncoded == rest, "Welcome round trip")
        guard let fixture = MLSFuzzFixture.shared else { return }
        _ = try? Group.join(welcome: welcome, keyPackage: fixture.keyPackage, initPrivateKey: fixture.initPrivateKey,
                            encryptionPrivateKey: fixture.encryptionPrivateKey, externalPSKs: fixture.externalPSKs)
    }

    /// A GroupInfo as an external joiner receives it: its tree taken and checked, then an external commit.
    static func mlsGroupInfo(_ bytes: [UInt8]) {
        guard let groupInfo = try? GroupInfo(tlsEncoded: bytes) else { return }
        require(groupInfo.tlsEncoded == bytes, "GroupInfo round trip")
        guard let suite = try? CipherSuite(id: groupInfo.groupContext.cipherSuite) else { return }
        guard (try? groupInfo.verifiedTree(suite: suite, outOfBand: nil, credentialValidator: CredentialValidation.anyBasicCredential)) != nil,
              let joiner = MLSFuzzFixture.joiner(suite: suite) else { return }
        _ = try? Group.joinByExternalCommit(groupInfo: groupInfo, leaf: joiner.leaf, signatureKey: joiner.signatureKey)
    }

    /// The `ratchet_tree` extension: first byte the suite (even 1, odd 3), then `opaque group_id<V>` (which
    /// the leaves sign), then the tree; decoded, then every check a joiner runs, resolutions and filtered
    /// direct paths included.
    static func mlsRatchetTree(_ bytes: [UInt8]) {
        guard let selector = bytes.first else { return }
        let suite = CipherSuite.supported[Int(selector) % CipherSuite.supported.count]
        var reader = TLSReader(Array(bytes.dropFirst()))
        guard let groupID = try? reader.readOpaque() else { return }
        let encoded = Array(bytes.suffix(reader.remaining))
        guard var tree = try? RatchetTree(suite: suite, encoded: encoded) else { return }
        require(tree.encoded == encoded, "RatchetTree round trip")
        _ = tree.treeHash()
        guard (try? tree.validate(groupID: groupID)) != nil else { return }
        for leaf in tree.occupiedLeaves { _ = tree.filteredDirectPath(of: leaf) }
    }

    /// A member's group state as the store reads it back (after decryption). What restores must save and
    /// restore again.
    static func mlsGroupState(_ bytes: [UInt8]) {
        guard let group = try? Group(serialized: SecretBytes(bytes)) else { return }
        let saved = group.serialized()
        require((try? Group(serialized: saved)) != nil, "a restored group state restores again")
    }

    /// A message processed by a member of the fixed group (joined from a passive-client vector): decoded,
    /// then the whole path (epoch, membership tag or decryption, signature, proposal and commit rules). A
    /// refused message leaves the state byte for byte as it was.
    static func mlsGroupProcess(_ bytes: [UInt8]) {
        guard let message = try? MLSMessage(tlsEncoded: bytes), let fixture = MLSFuzzFixture.shared else { return }
        var group = fixture.group
        do {
            _ = try group.process(message)
        } catch {
            require(group.serialized().constantTimeEquals(fixture.serializedGroup), "a refused message changed the group state")
        }
    }
}

/// The fixed group and keys the MLS targets process against: the first case of the IETF vectors'
/// passive-client-handling-commit.json (suite 1), joined from its Welcome. Read from `../shared/vectors/mls`
/// beside the working directory (the repository root, as `make fuzz` runs it) or from $PARLEY_MLS_VECTORS;
/// without it the targets still decode, and skip what needs the group.
struct MLSFuzzFixture: Sendable {
    let keyPackage: KeyPackage
    let initPrivateKey: SecretBytes
    let encryptionPrivateKey: SecretBytes
    let signatureKey: SignaturePrivateKey
    let externalPSKs: [[UInt8]: SecretBytes]
    let welcome: Welcome
    let group: Group
    let serializedGroup: SecretBytes
    /// The epoch-1 commit of the vector: processed by `group`, it moves to epoch 2.
    let commits: [MLSMessage]

    static let directory = ProcessInfo.processInfo.environment["PARLEY_MLS_VECTORS"] ?? "../shared/vectors/mls"

    static let shared: MLSFuzzFixture? = {
        do { return try MLSFuzzFixture() } catch {
            print("parley-fuzz: no MLS fixture (\(error)); group-dependent checks are skipped")
            return nil
        }
    }()

    static func vectorFile(_ name: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: URL(fileURLWithPath: directory + "/" + name + ".json"))
        guard let cases = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else { throw FixtureError("\(name).json") }
        return cases
    }

    struct FixtureError: Error { let what: String; init(_ what: String) { self.what = what } }

    init() throws {
        guard let v = try Self.vectorFile("passive-client-handling-commit").first(where: { ($0["cipher_suite"] as? Int) == 1 }) else {
            throw FixtureError("no suite-1 case")
        }
        func hex(_ key: String) throws -> [UInt8] {
            guard let text = v[key] as? String, let bytes = Hex.decode(text) else { throw FixtureError(key) }
            return bytes
        }
        guard case .keyPackage(let keyPackage) = try MLSMessage(tlsEncoded: hex("key_package")).body,
              case .welcome(let welcome) = try MLSMessage(tlsEncoded: hex("welcome")).body else { throw FixtureError("key_package / welcome") }
        self.keyPackage = keyPackage
        self.welcome = welcome
        initPrivateKey = SecretBytes(try hex("init_priv"))
        encryptionPrivateKey = SecretBytes(try hex("encryption_priv"))
        signatureKey = try SignaturePrivateKey(seed: SecretBytes(try hex("signature_priv")))
        var psks: [[UInt8]: SecretBytes] = [:]
        for psk in (v["external_psks"] as? [[String: String]]) ?? [] {
            guard let id = psk["psk_id"].flatMap(Hex.decode), let secret = psk["psk"].flatMap(Hex.decode) else { throw FixtureError("external_psks") }
            psks[id] = SecretBytes(secret)
        }
        externalPSKs = psks
        var group = try Group.join(welcome: welcome, keyPackage: keyPackage, initPrivateKey: initPrivateKey,
                                   encryptionPrivateKey: encryptionPrivateKey, signatureKey: signatureKey, externalPSKs: psks)
        // The vectors' KeyPackages carry lifetimes of their own time: checked against no clock, as in the tests.
        group.clock = nil
        self.group = group
        serializedGroup = group.serialized()
        let epochs = (v["epochs"] as? [[String: Any]]) ?? []
        commits = try epochs.prefix(1).map { epoch in
            guard let text = epoch["commit"] as? String, let bytes = Hex.decode(text) else { throw FixtureError("epochs.commit") }
            return try MLSMessage(tlsEncoded: bytes)
        }
    }

    /// A client joining by external commit, with a fixed signature key.
    static func joiner(suite: CipherSuite) -> (leaf: LeafNode, signatureKey: SignaturePrivateKey)? {
        guard let signatureKey = try? SignaturePrivateKey(seed: SecretBytes([UInt8](repeating: 0x21, count: 32))) else { return nil }
        let leaf = LeafNode(encryptionKey: [UInt8](repeating: 0, count: 32), signatureKey: signatureKey.publicKey,
                            credential: .basic(identity: Array("fuzz-joiner".utf8)), capabilities: Capabilities(cipherSuites: [suite.id]),
                            source: .update, extensions: [])
        return (leaf, signatureKey)
    }
}
