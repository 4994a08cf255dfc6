import ParleyCrypto
import ParleyProtocol
import Testing

/// PROTOCOL.md §17.9's vectors: what a group leaves on the relay for rejoining, sealed under the group's
/// GroupInfo key, and the content that carries the key to new members. The sealed vectors were computed
/// with PyNaCl (libsodium's crypto_aead_xchacha20poly1305_ietf_encrypt), not with this code.
@Suite("Groups: GroupInfo and external commits sealed from the relay")
struct GroupSealTests {
    let id = try! GroupId([UInt8](repeating: 0xab, count: 32))
    let key = SecretBytes([UInt8](repeating: 0x42, count: 32))
    let nonce = [UInt8](repeating: 0x24, count: 24)

    @Test("a GroupInfo and an external commit sealed with a known key and nonce match the vectors, and open again")
    func vectors() throws {
        let info = try GroupSeal.seal([0, 1, 2, 3, 4], .groupInfo, key: key, keyEpoch: 5, groupId: id, epoch: 7, random: QueuedRandom([nonce]))
        #expect(Hex.encode(info) == "010000000000000005" + String(repeating: "24", count: 24) + "a55fd5666a30d4a760b8d5fd660dd0cb3757e251c5")
        #expect(try GroupSeal.open(info, .groupInfo, key: key, keyEpoch: 5, groupId: id, epoch: 7) == [0, 1, 2, 3, 4])
        #expect(GroupSeal.keyEpoch(of: info) == 5 && GroupSeal.isSealed(info))

        let commit = try GroupSeal.seal([0, 1], .externalCommit, key: key, keyEpoch: 5, groupId: id, epoch: 6, random: QueuedRandom([nonce]))
        #expect(Hex.encode(commit) == "010000000000000005" + String(repeating: "24", count: 24) + "a55f025b2d66c3438831b7cac8eb4d5d289a")
        #expect(try GroupSeal.open(commit, .externalCommit, key: key, keyEpoch: 5, groupId: id, epoch: 6) == [0, 1])
    }

    @Test("a sealed value opens only for its key, key epoch, kind, group and epoch; a plain MLS value is not taken for one")
    func bindings() throws {
        let sealed = try GroupSeal.seal([0, 1, 9], .groupInfo, key: key, keyEpoch: 5, groupId: id, epoch: 7)
        let other = try GroupId([UInt8](repeating: 0xcd, count: 32))
        #expect(throws: ProtocolError.self) { try GroupSeal.open(sealed, .groupInfo, key: SecretBytes.random(count: 32), keyEpoch: 5, groupId: id, epoch: 7) }
        #expect(throws: ProtocolError.self) { try GroupSeal.open(sealed, .groupInfo, key: key, keyEpoch: 4, groupId: id, epoch: 7) }
        #expect(throws: ProtocolError.self) { try GroupSeal.open(sealed, .externalCommit, key: key, keyEpoch: 5, groupId: id, epoch: 7) }
        #expect(throws: ProtocolError.self) { try GroupSeal.open(sealed, .groupInfo, key: key, keyEpoch: 5, groupId: other, epoch: 7) }
        #expect(throws: ProtocolError.self) { try GroupSeal.open(sealed, .groupInfo, key: key, keyEpoch: 5, groupId: id, epoch: 8) }
        // The key epoch in the header is authenticated too: rewriting it does not make another key's value.
        var renamed = sealed
        renamed[8] = 4
        #expect(throws: ProtocolError.self) { try GroupSeal.open(renamed, .groupInfo, key: key, keyEpoch: 4, groupId: id, epoch: 7) }
        // Too short, or an MLS value (version 0x0001 first), is not a sealed value.
        for bytes in [[], [1], Array(sealed.prefix(GroupSeal.overhead - 1)), [0, 1] + Array(sealed.dropFirst(2))] as [[UInt8]] {
            #expect(throws: ProtocolError.self) { try GroupSeal.open(bytes, .groupInfo, key: key, keyEpoch: 5, groupId: id, epoch: 7) }
        }
        #expect(!GroupSeal.isSealed([0, 1, 0, 1]))
    }

    @Test("the GroupInfo key content (type 0x0C) matches the vector")
    func keyContentVector() throws {
        let content = Content(messageId: [UInt8](repeating: 0x11, count: 16), sentAt: 0x0000019000000000, conversation: .group(id),
                              body: .groupInfoKey(epoch: 5, key: [UInt8](repeating: 0x42, count: 32)))
        let vector = "010c111111111111111111111111111111110000019000000000004667726f75703a" + String(repeating: "6162", count: 32)
            + "0000000000000005" + String(repeating: "42", count: 32)
        #expect(Hex.encode(content.encoded) == vector)
        #expect(try Content(decoding: content.encoded) == content)
        // A key of another length is refused.
        #expect(throws: ProtocolError.self) { try Content(decoding: Array(content.encoded.dropLast())) }
    }

    @Test("the GroupInfo key request and answer contents (types 0x0D, 0x0E, 1:1) match the vectors (computed with Python)")
    func keyRequestVectors() throws {
        let bob = try AccountAddress("bob@relay.example")
        let request = Content(messageId: [UInt8](repeating: 0x11, count: 16), sentAt: 0x0000019000000000, conversation: .direct(bob),
                              body: .groupInfoKeyRequest(group: id))
        let answer = Content(messageId: [UInt8](repeating: 0x11, count: 16), sentAt: 0x0000019000000000, conversation: .direct(bob),
                             body: .groupInfoKeyAnswer(group: id, epoch: 7, key: [UInt8](repeating: 0x42, count: 32)))
        let head = "1111111111111111111111111111111100000190000000000011626f624072656c61792e6578616d706c65" + String(repeating: "ab", count: 32)
        #expect(Hex.encode(request.encoded) == "010d" + head)
        #expect(Hex.encode(answer.encoded) == "010e" + head + "0000000000000007" + String(repeating: "42", count: 32))
        #expect(try Content(decoding: request.encoded) == request)
        #expect(try Content(decoding: answer.encoded) == answer)
        // A short group id or key is refused.
        #expect(throws: ProtocolError.self) { try Content(decoding: Array(request.encoded.dropLast())) }
        #expect(throws: ProtocolError.self) { try Content(decoding: Array(answer.encoded.dropLast())) }
    }
}
