import ParleyCrypto
@testable import ParleyProtocol
import Testing

@Suite("Provisioning: link codes and the sealed payload (PROTOCOL.md §15)")
struct ProvisioningTests {
    let ephemeral = X25519.KeyPair(random: DeterministicRandom(label: "eph"))
    let newDevice = Ed25519.KeyPair(random: DeterministicRandom(label: "dik"))
    let accountKey = Ed25519.KeyPair(random: DeterministicRandom(label: "aik"))
    let oldDevice = Ed25519.KeyPair(random: DeterministicRandom(label: "old"))

    var code: LinkCode {
        LinkCode(relay: "relay.example:8443", slot: Array(0..<16), ephemeralKey: ephemeral.publicKey, deviceKey: newDevice.publicKey)
    }

    func list(naming key: Ed25519.PublicKey, id: UInt32 = 2, signer: Ed25519.KeyPair? = nil) -> SignedDeviceList {
        SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: oldDevice.publicKey, createdAt: 1),
                                        DeviceEntry(deviceId: id, identityKey: key, createdAt: 2)],
                              version: 2, accountKey: signer ?? accountKey)
    }

    func payload(list: SignedDeviceList? = nil, address: String = "alice@relay.example:8443", key: Ed25519.KeyPair? = nil) -> ProvisioningPayload {
        ProvisioningPayload(address: address, accountKey: key ?? accountKey, deviceId: 2,
                            deviceList: list ?? self.list(naming: newDevice.publicKey), transfer: nil)
    }

    @Test("the text form round-trips, tolerates white space and line breaks, and refuses damage")
    func codeText() throws {
        let text = code.text
        #expect(text.hasPrefix("parley-link:") && !text.contains("=") && !text.contains("+") && !text.contains("/"))
        #expect(try LinkCode(text: text) == code)
        let wrapped = "  " + text.prefix(30) + "\n" + text.dropFirst(30) + "\n"
        #expect(try LinkCode(text: wrapped) == code)
        #expect(throws: ProtocolError.self) { try LinkCode(text: "parley-link:") }
        #expect(throws: ProtocolError.self) { try LinkCode(text: String(text.dropLast(4))) }
        #expect(throws: ProtocolError.self) { try LinkCode(text: "signal-link:" + text.dropFirst(12)) }
        #expect(throws: ProtocolError.self) { try LinkCode(text: text + "AAAA") }
    }

    @Test("the payload opens with the code's ephemeral key and carries the account")
    func roundTrip() throws {
        let sealed = try Provisioning.seal(payload(), to: code)
        let opened = try Provisioning.open(sealed, ephemeral: ephemeral, code: code)
        #expect(opened.address == "alice@relay.example:8443" && opened.deviceId == 2)
        #expect(opened.accountKey.publicKey == accountKey.publicKey)
        #expect(opened.deviceList.encoded == list(naming: newDevice.publicKey).encoded)
        // The account key's seed never appears in the sealed bytes.
        let seed = accountKey.seed.unprotectedBytes
        #expect(!(0...(sealed.count - seed.count)).contains { Array(sealed[$0..<$0 + seed.count]) == seed })
    }

    @Test("refused: another ephemeral key, a flipped byte, another slot or device key, a list not naming this device, a list signed by another key, another relay")
    func refusals() throws {
        let sealed = try Provisioning.seal(payload(), to: code)
        #expect(throws: ProtocolError.self) { try Provisioning.open(sealed, ephemeral: X25519.KeyPair(), code: code) }
        for index in [0, 5, 40, sealed.count - 1] {
            var bad = sealed
            bad[index] ^= 1
            #expect(throws: ProtocolError.self) { try Provisioning.open(bad, ephemeral: ephemeral, code: code) }
        }
        let otherSlot = LinkCode(relay: code.relay, slot: Array(repeating: 9, count: 16), ephemeralKey: code.ephemeralKey, deviceKey: code.deviceKey)
        #expect(throws: ProtocolError.self) { try Provisioning.open(sealed, ephemeral: ephemeral, code: otherSlot) }

        let intruder = Ed25519.KeyPair()
        let namesIntruder = try Provisioning.seal(payload(list: list(naming: intruder.publicKey)), to: code)
        #expect(throws: ProtocolError.self) { try Provisioning.open(namesIntruder, ephemeral: ephemeral, code: code) }
        let foreignSigner = try Provisioning.seal(payload(list: list(naming: newDevice.publicKey, signer: intruder)), to: code)
        #expect(throws: ProtocolError.self) { try Provisioning.open(foreignSigner, ephemeral: ephemeral, code: code) }
        let otherRelay = try Provisioning.seal(payload(address: "alice@elsewhere.example"), to: code)
        #expect(throws: ProtocolError.self) { try Provisioning.open(otherRelay, ephemeral: ephemeral, code: code) }
    }
}
