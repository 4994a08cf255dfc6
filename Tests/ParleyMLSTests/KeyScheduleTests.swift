import ParleyCrypto
@testable import ParleyMLS
import Testing

/// key-schedule.json, psk_secret.json and transcript-hashes.json (RFC 9420 §8).
@Suite struct KeyScheduleTests {
    @Test func keyScheduleVectors() throws {
        var epochsChecked = 0
        for (suite, v) in try MLSVectors.supportedCases("key-schedule") {
            let groupID = try v.hex("group_id")
            var initSecret = try v.secret("initial_init_secret")
            for (index, e) in try v.array("epochs").enumerated() {
                let context = GroupContext(cipherSuite: suite.id, groupID: groupID, epoch: UInt64(index), treeHash: try e.hex("tree_hash"),
                                           confirmedTranscriptHash: try e.hex("confirmed_transcript_hash"))
                #expect(hexString(context.tlsEncoded) == (try e.string("group_context")))
                let epoch = EpochSecrets(suite: suite, initSecret: initSecret, commitSecret: try e.secret("commit_secret"),
                                         pskSecret: try e.secret("psk_secret"), groupContext: context.tlsEncoded)
                let expected: [(String, SecretBytes)] = [
                    ("joiner_secret", epoch.joinerSecret), ("welcome_secret", epoch.welcomeSecret), ("init_secret", epoch.initSecret),
                    ("sender_data_secret", epoch.senderDataSecret), ("encryption_secret", epoch.encryptionSecret),
                    ("exporter_secret", epoch.exporterSecret), ("epoch_authenticator", epoch.epochAuthenticator),
                    ("external_secret", epoch.externalSecret), ("confirmation_key", epoch.confirmationKey),
                    ("membership_key", epoch.membershipKey), ("resumption_psk", epoch.resumptionPSK),
                ]
                for (name, value) in expected {
                    #expect(hexString(value) == (try e.string(name)), "suite \(suite.id) epoch \(index) \(name)")
                }
                #expect(hexString(epoch.externalKeyPair.publicKey) == (try e.string("external_pub")))
                // The exporter label is a string (which happens to look like hex), used as its UTF-8 bytes.
                let exporter = try e.object("exporter")
                #expect(hexString(epoch.export(label: Array(try exporter.string("label").utf8), context: try exporter.hex("context"), length: try exporter.int("length")))
                        == (try exporter.string("secret")))
                #expect(hexString(EpochSecrets.welcomeSecret(suite: suite, joinerSecret: epoch.joinerSecret, pskSecret: try e.secret("psk_secret")))
                        == (try e.string("welcome_secret")))
                initSecret = epoch.initSecret
                epochsChecked += 1
            }
        }
        print("key-schedule.json: \(epochsChecked) epochs passed")
    }

    @Test func pskSecretVectors() throws {
        var passed = 0
        for (suite, v) in try MLSVectors.supportedCases("psk_secret") {
            let psks = try v.array("psks").map { p in
                (id: PreSharedKeyID(kind: .external(pskID: try p.hex("psk_id")), nonce: try p.hex("psk_nonce")), secret: try p.secret("psk"))
            }
            #expect(hexString(PSKSecret.derive(suite: suite, psks: psks)) == (try v.string("psk_secret")), "suite \(suite.id), \(psks.count) PSKs")
            passed += 1
        }
        print("psk_secret.json: \(passed) vectors passed")
    }

    @Test func transcriptHashVectors() throws {
        var passed = 0
        for (suite, v) in try MLSVectors.supportedCases("transcript-hashes") {
            let authenticated = try AuthenticatedContent(tlsEncoded: try v.hex("authenticated_content"))
            #expect(authenticated.tlsEncoded == (try v.hex("authenticated_content")))
            guard case .commit = authenticated.content.body, let tag = authenticated.auth.confirmationTag else {
                Issue.record("transcript-hashes: not a commit")
                continue
            }
            let confirmed = TranscriptHash.confirmed(suite: suite, interim: try v.hex("interim_transcript_hash_before"),
                                                     wireFormat: authenticated.wireFormat.rawValue, content: authenticated.content,
                                                     signature: authenticated.auth.signature)
            #expect(hexString(confirmed) == (try v.string("confirmed_transcript_hash_after")))
            // The confirmation tag is MAC(confirmation_key, confirmed_transcript_hash).
            #expect(suite.mac(key: try v.secret("confirmation_key"), data: confirmed) == tag)
            let interim = TranscriptHash.interim(suite: suite, confirmed: confirmed, confirmationTag: tag)
            #expect(hexString(interim) == (try v.string("interim_transcript_hash_after")))
            passed += 1
        }
        print("transcript-hashes.json: \(passed) vectors passed")
    }
}
