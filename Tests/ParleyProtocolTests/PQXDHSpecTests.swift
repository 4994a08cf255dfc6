import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// `bundle` with some of its fields replaced.
private func replacing(_ b: PreKeyBundle, identityKey: Ed25519.PublicKey? = nil, signedPreKey: X25519.PublicKey? = nil,
                       signedPreKeySignature: [UInt8]? = nil, pqPreKey: MLKEM1024KEM.PublicKey? = nil,
                       pqPreKeySignature: [UInt8]? = nil) -> PreKeyBundle {
    PreKeyBundle(identityKey: identityKey ?? b.identityKey, deviceId: b.deviceId, signedPreKeyId: b.signedPreKeyId,
                 signedPreKey: signedPreKey ?? b.signedPreKey, signedPreKeySignature: signedPreKeySignature ?? b.signedPreKeySignature,
                 pqPreKeyId: b.pqPreKeyId, pqKind: b.pqKind, pqPreKey: pqPreKey ?? b.pqPreKey,
                 pqPreKeySignature: pqPreKeySignature ?? b.pqPreKeySignature,
                 oneTimePreKeyId: b.oneTimePreKeyId, oneTimePreKey: b.oneTimePreKey)
}

/// `header` naming other prekeys.
private func naming(_ h: PreKeyHeader, signedPreKeyId: UInt32? = nil, oneTimePreKeyId: UInt32? = nil,
                    pqPreKeyId: UInt32? = nil, pqKind: PQPreKeyKind? = nil) -> PreKeyHeader {
    PreKeyHeader(identityKey: h.identityKey, ephemeralKey: h.ephemeralKey, signedPreKeyId: signedPreKeyId ?? h.signedPreKeyId,
                 oneTimePreKeyId: oneTimePreKeyId ?? h.oneTimePreKeyId, pqPreKeyId: pqPreKeyId ?? h.pqPreKeyId,
                 pqKind: pqKind ?? h.pqKind, kemCiphertext: h.kemCiphertext)
}

/// PROTOCOL.md §4 (and the bundle checks of §3.3).
@Suite struct PQXDHSpecTests {
    let parties = Parties("pqxdh spec")

    @Test(arguments: [false, true], [false, true])
    func bothSidesDeriveTheSameKeyAndAssociatedData(oneTimePreKey: Bool, oneTimePQPreKey: Bool) throws {
        let bundle = parties.bundle(oneTime: oneTimePreKey, pqOneTime: oneTimePQPreKey)
        #expect((bundle.oneTimePreKey != nil) == oneTimePreKey)
        #expect(bundle.pqKind == (oneTimePQPreKey ? .oneTime : .lastResort))

        let initiation = try PQXDH.initiate(identity: parties.alice, bundle: bundle)
        #expect(initiation.header.oneTimePreKeyId == bundle.oneTimePreKeyId)
        #expect(initiation.header.pqPreKeyId == bundle.pqPreKeyId && initiation.header.pqKind == bundle.pqKind)
        let response = try PQXDH.respond(identity: parties.bob, preKeys: parties.bobKeys, header: initiation.header)
        #expect(response.sharedKey.constantTimeEquals(initiation.sharedKey))
        #expect(response.associatedData == initiation.associatedData)
        #expect(response.signedPreKey.publicKey == bundle.signedPreKey)
    }

    /// DH4 and the KEM secret really enter SK: a responder that leaves out the one-time prekey, or
    /// decapsulates with another PQ key, derives a different key.
    @Test func oneTimePreKeyAndKEMSecretEnterTheSharedKey() throws {
        let initiation = try PQXDH.initiate(identity: parties.alice, bundle: parties.bundle())
        let withoutDH4 = naming(initiation.header, oneTimePreKeyId: 0)
        let otherPQKey = naming(initiation.header, pqPreKeyId: parties.bobKeys.currentLastResortPQPreKeyId, pqKind: .lastResort)
        for header in [withoutDH4, otherPQKey] {
            let response = try PQXDH.respond(identity: parties.bob, preKeys: parties.bobKeys, header: header)
            #expect(!response.sharedKey.constantTimeEquals(initiation.sharedKey))
        }
    }

    @Test func associatedDataIsTheTwoEd25519EncodingsInitiatorFirst() throws {
        let initiation = try PQXDH.initiate(identity: parties.alice, bundle: parties.bundle())
        #expect(initiation.associatedData == [0x06] + parties.alice.publicKey.bytes + [0x06] + parties.bob.publicKey.bytes)
        #expect(initiation.associatedData.count == 66)
    }

    enum Forgery: CaseIterable, Sendable {
        case signedPreKeySignature, pqPreKeySignature, substitutedSignedPreKey, substitutedPQPreKey, signedByAnotherIdentity
    }

    @Test(arguments: Forgery.allCases)
    func bundleWithoutValidSignaturesIsRefused(_ forgery: Forgery) throws {
        let genuine = parties.bundle()
        let other = Parties("someone else")
        let forged = switch forgery {
        case .signedPreKeySignature: replacing(genuine, signedPreKeySignature: flipping(genuine.signedPreKeySignature, at: 0))
        case .pqPreKeySignature: replacing(genuine, pqPreKeySignature: flipping(genuine.pqPreKeySignature, at: 63))
        case .substitutedSignedPreKey: replacing(genuine, signedPreKey: other.bundle().signedPreKey)
        case .substitutedPQPreKey: replacing(genuine, pqPreKey: other.bundle().pqPreKey)
        // Bob's identity key on a bundle whose prekeys another device signed.
        case .signedByAnotherIdentity: replacing(other.bundle(), identityKey: parties.bob.publicKey)
        }
        let error = #expect(throws: ProtocolError.self) { try PQXDH.initiate(identity: parties.alice, bundle: forged) }
        #expect(error?.isBadSignature == true)
        try genuine.verifySignatures()
    }

    @Test func preKeyMessageNamingAConsumedOneTimePreKeyIsRefused() throws {
        let initiation = try PQXDH.initiate(identity: parties.alice, bundle: parties.bundle())
        var afterFirstUse = parties.bobKeys
        afterFirstUse.consume(initiation.header)
        let error = #expect(throws: ProtocolError.self) {
            try PQXDH.respond(identity: parties.bob, preKeys: afterFirstUse, header: initiation.header)
        }
        #expect(error?.isUnknownPreKey == true)
    }

    @Test func preKeyMessageNamingANeverIssuedPreKeyIsRefused() throws {
        let h = try PQXDH.initiate(identity: parties.alice, bundle: parties.bundle()).header
        for header in [naming(h, signedPreKeyId: 4242), naming(h, oneTimePreKeyId: 4242), naming(h, pqPreKeyId: 4242),
                       naming(h, pqKind: .lastResort)] {
            let error = #expect(throws: ProtocolError.self) {
                try PQXDH.respond(identity: parties.bob, preKeys: parties.bobKeys, header: header)
            }
            #expect(error?.isUnknownPreKey == true)
        }
    }

    /// §4 step 4: an all-zero X25519 output aborts, even when the bad key carries a valid signature.
    @Test func allZeroDHOutputAbortsTheExchange() throws {
        let zeroPoint = try X25519.PublicKey([UInt8](repeating: 0, count: 32))
        let bundle = replacing(parties.bundle(), signedPreKey: zeroPoint,
                               signedPreKeySignature: parties.bob.keyPair.sign(KeyEncoding.encode(zeroPoint)))
        try bundle.verifySignatures()
        #expect(throws: ProtocolError.crypto(.weakPublicKey)) { try PQXDH.initiate(identity: parties.alice, bundle: bundle) }
    }
}
