import ParleyCrypto

/// The secrets of one epoch (RFC 9420 §8). Built from the previous epoch's init secret, the commit
/// secret, the PSK secret and the new GroupContext; every secret of the table in §8 is kept, and the
/// intermediate ones (the joiner's extract, the epoch secret) are not.
public struct EpochSecrets: Sendable {
    public let suite: CipherSuite
    public let joinerSecret: SecretBytes
    public let welcomeSecret: SecretBytes
    public let senderDataSecret: SecretBytes
    public let encryptionSecret: SecretBytes
    public let exporterSecret: SecretBytes
    public let externalSecret: SecretBytes
    public let confirmationKey: SecretBytes
    public let membershipKey: SecretBytes
    public let resumptionPSK: SecretBytes
    public let epochAuthenticator: SecretBytes
    /// The next epoch's init secret.
    public let initSecret: SecretBytes

    /// A new epoch from the last one: `initSecret` is the previous epoch's (or a random one for a new group),
    /// `commitSecret` the path secret's commit secret or zero, `pskSecret` zero when no PSK is used.
    public init(suite: CipherSuite, initSecret previous: SecretBytes, commitSecret: SecretBytes, pskSecret: SecretBytes?,
                groupContext: [UInt8]) {
        let extracted = suite.extract(salt: previous, ikm: commitSecret)
        let joiner = suite.expandWithLabel(secret: extracted, label: "joiner", context: groupContext, length: suite.hashLength)
        self.init(suite: suite, joinerSecret: joiner, pskSecret: pskSecret, groupContext: groupContext)
    }

    /// What a new member derives from the joiner secret in its Welcome.
    public init(suite: CipherSuite, joinerSecret: SecretBytes, pskSecret: SecretBytes?, groupContext: [UInt8]) {
        self.suite = suite
        self.joinerSecret = joinerSecret
        let memberSecret = suite.extract(salt: joinerSecret, ikm: pskSecret ?? suite.zeroSecret)
        welcomeSecret = suite.deriveSecret(secret: memberSecret, label: "welcome")
        let epochSecret = suite.expandWithLabel(secret: memberSecret, label: "epoch", context: groupContext, length: suite.hashLength)
        senderDataSecret = suite.deriveSecret(secret: epochSecret, label: "sender data")
        encryptionSecret = suite.deriveSecret(secret: epochSecret, label: "encryption")
        exporterSecret = suite.deriveSecret(secret: epochSecret, label: "exporter")
        externalSecret = suite.deriveSecret(secret: epochSecret, label: "external")
        confirmationKey = suite.deriveSecret(secret: epochSecret, label: "confirm")
        membershipKey = suite.deriveSecret(secret: epochSecret, label: "membership")
        resumptionPSK = suite.deriveSecret(secret: epochSecret, label: "resumption")
        epochAuthenticator = suite.deriveSecret(secret: epochSecret, label: "authentication")
        initSecret = suite.deriveSecret(secret: epochSecret, label: "init")
    }

    /// The stored secrets, in the order `stored` lists them.
    init(suite: CipherSuite, stored: [SecretBytes]) throws(MLSError) {
        guard stored.count == 11, stored.allSatisfy({ $0.count == suite.hashLength }) else { throw .invalidValue("stored epoch secrets") }
        self.suite = suite
        (joinerSecret, welcomeSecret, senderDataSecret, encryptionSecret, exporterSecret, externalSecret) =
            (stored[0], stored[1], stored[2], stored[3], stored[4], stored[5])
        (confirmationKey, membershipKey, resumptionPSK, epochAuthenticator, initSecret) = (stored[6], stored[7], stored[8], stored[9], stored[10])
    }

    var stored: [SecretBytes] {
        [joinerSecret, welcomeSecret, senderDataSecret, encryptionSecret, exporterSecret, externalSecret,
         confirmationKey, membershipKey, resumptionPSK, epochAuthenticator, initSecret]
    }

    /// The key pair whose public half is the `external_pub` extension of the GroupInfo (§8.3).
    public var externalKeyPair: HPKEKeyPair { suite.deriveKeyPair(ikm: externalSecret) }

    /// MLS-Exporter(Label, Context, Length) (§8.5).
    public func export(label: [UInt8], context: [UInt8], length: Int) -> SecretBytes {
        Self.export(suite: suite, exporterSecret: exporterSecret, label: label, context: context, length: length)
    }

    public static func export(suite: CipherSuite, exporterSecret: SecretBytes, label: [UInt8], context: [UInt8], length: Int) -> SecretBytes {
        let derived = suite.expandWithLabel(secret: exporterSecret, label: label, context: [], length: suite.hashLength)
        return suite.expandWithLabel(secret: derived, label: "exported", context: suite.hash(context), length: length)
    }

    /// confirmation_tag = MAC(confirmation_key, confirmed_transcript_hash).
    public func confirmationTag(confirmedTranscriptHash: [UInt8]) -> [UInt8] {
        suite.mac(key: confirmationKey, data: confirmedTranscriptHash)
    }

    /// The Welcome's AEAD key and nonce (§12.4.3.1).
    public static func welcomeKeyAndNonce(suite: CipherSuite, welcomeSecret: SecretBytes) -> (key: SecretBytes, nonce: [UInt8]) {
        (suite.expandWithLabel(secret: welcomeSecret, label: "key", context: [], length: suite.aeadKeyLength),
         suite.expandWithLabel(secret: welcomeSecret, label: "nonce", context: [], length: suite.aeadNonceLength).unprotectedBytes)
    }
}

/// The transcript hashes (§8.2).
public enum TranscriptHash {
    /// confirmed_transcript_hash = Hash(interim_transcript_hash ‖ ConfirmedTranscriptHashInput), where the
    /// input is wire_format ‖ FramedContent ‖ signature<V> of the Commit.
    public static func confirmed(suite: CipherSuite, interim: [UInt8], wireFormat: UInt16, content: FramedContent, signature: [UInt8]) -> [UInt8] {
        var input = TLSWriter()
        input.writeBytes(interim)
        input.writeUInt16(wireFormat)
        content.encode(to: &input)
        input.writeOpaque(signature)
        return suite.hash(input.bytes)
    }

    /// interim_transcript_hash = Hash(confirmed_transcript_hash ‖ InterimTranscriptHashInput{ MAC confirmation_tag }).
    public static func interim(suite: CipherSuite, confirmed: [UInt8], confirmationTag: [UInt8]) -> [UInt8] {
        var input = TLSWriter()
        input.writeBytes(confirmed)
        input.writeOpaque(confirmationTag)
        return suite.hash(input.bytes)
    }
}
