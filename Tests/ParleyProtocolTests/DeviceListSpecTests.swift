import Testing
import ParleyCrypto
@testable import ParleyProtocol

/// PROTOCOL.md §3.2: the signed device list.
@Suite struct DeviceListSpecTests {
    let random: DeterministicRandom
    let accountKey: Ed25519.KeyPair
    let deviceKeys: [Ed25519.PublicKey]

    init() {
        let random = DeterministicRandom(label: "device list spec")
        self.random = random
        accountKey = Ed25519.KeyPair(random: random)
        deviceKeys = (0..<4).map { _ in Ed25519.KeyPair(random: random).publicKey }
    }

    private func entries(_ ids: [UInt32]) -> [DeviceEntry] {
        ids.map { DeviceEntry(deviceId: $0, identityKey: deviceKeys[Int($0) % deviceKeys.count], createdAt: 1_700_000_000_000 + UInt64($0)) }
    }

    private func list(_ ids: [UInt32], version: UInt64, key: Ed25519.KeyPair? = nil) -> SignedDeviceList {
        SignedDeviceList.sign(devices: entries(ids), version: version, accountKey: key ?? accountKey)
    }

    /// A correctly signed list whose entries keep the given order (`sign` would sort them).
    private func signedAsGiven(_ ids: [UInt32]) -> [UInt8] {
        let body = SignedDeviceList.encodeBody(accountKey: accountKey.publicKey, version: 1, devices: entries(ids))
        return body + LabelledSignature.sign(body, label: ProtocolConstants.signatureDeviceList, with: accountKey)
    }

    @Test func signatureIsOverTheLabelledBody() throws {
        let signed = list([1, 2], version: 1)
        let body = Array(signed.encoded.dropLast(64))
        #expect(accountKey.publicKey.isValidSignature(signed.signature, for: Array("parley.device-list.v1".utf8) + [0x00] + body))
        #expect(!accountKey.publicKey.isValidSignature(signed.signature, for: body))
        #expect(try SignedDeviceList(verifying: signed.encoded) == signed)
    }

    /// A device count the input cannot hold is refused before anything is reserved for it (found by
    /// fuzzing: 65,535 claimed devices reserved 1.5 MB for a 43-byte input).
    @Test func aDeviceCountTheBytesCannotHoldIsRefusedUpFront() {
        var w = ByteWriter()
        w.u8(ProtocolConstants.version)
        w.raw(accountKey.publicKey.bytes)
        w.u64(1)
        w.u16(UInt16.max)
        w.raw([UInt8](repeating: 0, count: Ed25519.signatureLength))
        #expect(throws: ProtocolError.malformed("DeviceList: 65535 devices claimed in 64 bytes")) {
            try SignedDeviceList(verifying: w.bytes)
        }
    }

    @Test func everySingleByteChangeIsRefused() {
        let bytes = list([1, 2], version: 1).encoded
        let accepted = bytes.indices.filter { i in errorThrown { _ = try SignedDeviceList(verifying: flipping(bytes, at: i)) } == nil }
        #expect(accepted.isEmpty, "changed bytes accepted at \(accepted)")
    }

    @Test func aChangedSignatureByteIsABadSignature() {
        let bytes = list([1, 2], version: 1).encoded
        let error = #expect(throws: ProtocolError.self) { try SignedDeviceList(verifying: flipping(bytes, at: bytes.count - 40)) }
        #expect(error?.isBadSignature == true)
    }

    @Test(arguments: [[UInt32(2), 1], [1, 1], [1, 3, 2], [3, 3, 3]])
    func unsortedOrDuplicateIdsAreMalformed(ids: [UInt32]) throws {
        _ = try SignedDeviceList(verifying: signedAsGiven(ids.sorted().reduce(into: []) { if $0.last != $1 { $0.append($1) } }))
        let error = #expect(throws: ProtocolError.self) { try SignedDeviceList(verifying: signedAsGiven(ids)) }
        #expect(error?.isMalformed == true)
    }

    @Test func rollbackToALowerVersionIsRefused() throws {
        let v1 = list([1], version: 1), v2 = list([1, 2], version: 2)
        try v1.checkSuccessor(v2, address: "bob@relay.test")
        #expect(throws: ProtocolError.deviceListRollback(known: 2, offered: 1)) { try v2.checkSuccessor(v1, address: "bob@relay.test") }
    }

    @Test func aListUnderAnotherAccountKeyIsAnIdentityChange() throws {
        let otherKey = Ed25519.KeyPair(random: random)
        let current = list([1], version: 1), foreign = list([1, 2], version: 9, key: otherKey)
        _ = try SignedDeviceList(verifying: foreign.encoded)    // valid in itself
        #expect(throws: ProtocolError.identityChanged(address: "bob@relay.test")) {
            try current.checkSuccessor(foreign, address: "bob@relay.test")
        }
    }
}
