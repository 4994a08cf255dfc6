import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// One encoded structure and its decoder. `minimumLength` is where an unframed trailing field (ciphertext)
/// begins to parse; framed structures must be complete. `versionOffset` locates the first version byte.
private struct Encoded {
    let name: String
    let bytes: [UInt8]
    var minimumLength: Int? = nil
    var versionOffset = 0
    let decode: ([UInt8]) throws -> Void
}

/// PROTOCOL.md §3 and §6: byte layouts, versions, truncation, trailing bytes and padding.
@Suite struct WireFormatTests {
    let parties = Parties("wire")
    let accountKey = Ed25519.KeyPair(random: DeterministicRandom(label: "wire account"))

    private func deviceList() -> SignedDeviceList {
        SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: parties.alice.publicKey, createdAt: 1),
                                        DeviceEntry(deviceId: 7, identityKey: parties.bob.publicKey, createdAt: 2)],
                              version: 3, accountKey: accountKey)
    }

    private func certificate() -> SenderCertificate {
        .issue(address: "alice@relay.test", accountKey: accountKey, deviceId: 7, deviceKey: parties.alice.publicKey,
               expiresAt: 1_900_000_000_000)
    }

    private func preKeyMessage() throws -> PreKeyMessage {
        let (alice, _, first) = try parties.start()
        return PreKeyMessage(preKey: try #require(alice.pendingPreKey), message: first)
    }

    private func everyStructure() throws -> [Encoded] {
        let ratchet = try preKeyMessage().message
        let inner = SealedContent(certificate: certificate(), message: .ratchet(ratchet))
        return [
            Encoded(name: "PreKeyBundle with OPK", bytes: parties.bundle().encoded) { _ = try PreKeyBundle(decoding: $0) },
            Encoded(name: "PreKeyBundle without OPK", bytes: parties.bundle(oneTime: false).encoded) { _ = try PreKeyBundle(decoding: $0) },
            Encoded(name: "PreKeyMessage", bytes: try preKeyMessage().encoded, minimumLength: 1646 + 41 + 16) {
                _ = try PreKeyMessage(decoding: $0)
            },
            Encoded(name: "RatchetMessage", bytes: ratchet.encoded, minimumLength: 41 + 16) { _ = try RatchetMessage(decoding: $0) },
            Encoded(name: "SignedDeviceList", bytes: deviceList().encoded) { _ = try SignedDeviceList(verifying: $0) },
            Encoded(name: "SenderCertificate", bytes: certificate().encoded) { _ = try SenderCertificate(decoding: $0) },
            Encoded(name: "sealed Inner", bytes: inner.encoded, minimumLength: 2 + certificate().encoded.count + 1 + 41 + 16,
                    versionOffset: 2) {                        // Inner begins with bytes16(SenderCertificate)
                _ = try SealedContent(decoding: $0)
            },
        ]
    }

    // MARK: Round trips and layouts

    @Test func preKeyBundleRoundTripsWithAndWithoutOneTimePreKey() throws {
        for (oneTime, length) in [(true, 1810), (false, 1778)] {
            let bundle = parties.bundle(oneTime: oneTime)
            #expect(bundle.encoded.count == length)
            #expect(try PreKeyBundle(decoding: bundle.encoded) == bundle)
        }
    }

    @Test func ratchetAndPreKeyMessagesRoundTrip() throws {
        let message = try preKeyMessage()
        #expect(message.message.encoded.count == 41 + Array("first").count + 16)
        #expect(try RatchetMessage(decoding: message.message.encoded) == message.message)
        #expect(message.encoded.count == 1646 + message.message.encoded.count)
        #expect(Array(message.encoded.suffix(message.message.encoded.count)) == message.message.encoded)
        #expect(try PreKeyMessage(decoding: message.encoded) == message)
    }

    @Test func ratchetHeaderLayout() throws {
        let key = X25519.KeyPair(random: parties.random).publicKey
        let header = RatchetHeader(ratchetKey: key, previousChainLength: 0x0102_0304, messageNumber: 0x0A0B_0C0D)
        #expect(header.encoded == [0x01] + key.bytes + [0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C, 0x0D])
    }

    @Test func signedDeviceListRoundTrips() throws {
        let list = deviceList()
        #expect(list.encoded.count == 1 + 32 + 8 + 2 + 2 * 44 + 64)
        #expect(try SignedDeviceList(verifying: list.encoded) == list)
    }

    @Test func senderCertificateRoundTrips() throws {
        let certificate = certificate()
        #expect(certificate.encoded.count == 1 + 2 + "alice@relay.test".utf8.count + 32 + 4 + 32 + 8 + 64)
        let decoded = try SenderCertificate(decoding: certificate.encoded)
        #expect(decoded == certificate)
        try decoded.verify(now: 1_800_000_000_000)
    }

    // MARK: Versions

    @Test(arguments: [UInt8(0x00), 0x02, 0xFF])
    func otherVersionBytesAreUnsupported(version: UInt8) throws {
        for structure in try everyStructure() {
            var bytes = structure.bytes
            bytes[structure.versionOffset] = version
            let error = errorThrown { try structure.decode(bytes) }
            guard case .unsupportedVersion(_, let seen)? = error as? ProtocolError, seen == version else {
                Issue.record("\(structure.name): \(String(describing: error))")
                continue
            }
        }
    }

    @Test func preKeyMessageChecksTheVersionOfItsRatchetMessage() throws {
        var bytes = try preKeyMessage().encoded
        bytes[1646] = 0x02
        #expect(throws: ProtocolError.unsupportedVersion(structure: "RatchetMessage", version: 2)) { try PreKeyMessage(decoding: bytes) }
    }

    @Test func unknownPQPreKeyKindIsMalformed() throws {
        var bundle = parties.bundle().encoded
        bundle[141] = 0x03                                 // pqKind follows version, DIK, ids, SPK, its signature
        #expect((errorThrown { _ = try PreKeyBundle(decoding: bundle) } as? ProtocolError)?.isMalformed == true)
        var message = try preKeyMessage().encoded
        message[77] = 0x00                                 // pqKind follows version, IK_A, EK_A and three ids
        #expect((errorThrown { _ = try PreKeyMessage(decoding: message) } as? ProtocolError)?.isMalformed == true)
    }

    // MARK: Truncation and trailing bytes

    @Test func everyTruncationIsMalformed() throws {
        for structure in try everyStructure() {
            let end = structure.minimumLength ?? structure.bytes.count
            let accepted = (0..<end).filter { n in
                (errorThrown { try structure.decode(Array(structure.bytes.prefix(n))) } as? ProtocolError)?.isMalformed != true
            }
            #expect(accepted.isEmpty, "\(structure.name) truncated to these lengths was not refused as malformed")
        }
    }

    /// RatchetMessage has no length field: a shortened ciphertext parses, and then fails to decrypt.
    @Test func truncatedCiphertextParsesButDoesNotDecrypt() throws {
        var (alice, bob) = try parties.established()
        let message = try alice.encrypt(Array("a message of some length"))
        let before = RatchetSnapshot(bob)
        for n in (41 + 16)..<message.encoded.count {
            let truncated = try RatchetMessage(decoding: Array(message.encoded.prefix(n)))
            #expect(throws: ProtocolError.decryptionFailed) { try bob.decrypt(truncated) }
        }
        #expect(RatchetSnapshot(bob) == before)
    }

    @Test func trailingBytesAreRefusedInFramedStructures() throws {
        for structure in try everyStructure() where structure.minimumLength == nil {
            for extra in [[0x00], [UInt8](repeating: 0x42, count: 32)] {
                let error = errorThrown { try structure.decode(structure.bytes + extra) } as? ProtocolError
                #expect(error?.isMalformed == true, "\(structure.name) + \(extra.count) bytes")
            }
        }
    }

    // MARK: §6.3 Padding

    @Test(arguments: [0, 1, 158, 159, 160, 161, 319, 320])
    func paddingReachesTheNextMultipleOf160(length: Int) throws {
        let content = (0..<length).map { UInt8(truncatingIfNeeded: $0 * 7 + 1) }
        let padded = Padding.pad(content)
        #expect(padded.count == (length / 160 + 1) * 160)
        #expect(Array(padded.prefix(length)) == content)
        #expect(padded[length] == 0x80)
        #expect(padded.dropFirst(length + 1).allSatisfy { $0 == 0 })
        #expect(try Padding.unpad(padded) == content)
    }

    @Test func contentEndingInZerosOrTheMarkerSurvivesPadding() throws {
        for content: [UInt8] in [[0x00], [0x41, 0x00, 0x00], [0x80], [0x80, 0x00]] {
            #expect(try Padding.unpad(Padding.pad(content)) == content)
        }
    }

    @Test func badPaddingIsMalformed() {
        let zeros = [UInt8](repeating: 0, count: 160)
        var wrongMarker = Padding.pad(Array("hi")); wrongMarker[2] = 0x81
        var byteAfterMarker = Padding.pad(Array("hi")); byteAfterMarker[159] = 0x01
        let cases: [[UInt8]] = [[], zeros, Array(Padding.pad([1]).dropLast()), Padding.pad([1]) + [0], wrongMarker, byteAfterMarker]
        for bytes in cases {
            #expect((errorThrown { _ = try Padding.unpad(bytes) } as? ProtocolError)?.isMalformed == true, "\(bytes.count) bytes")
        }
    }
}
