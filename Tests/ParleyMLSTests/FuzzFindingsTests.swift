import ParleyCrypto
@testable import ParleyMLS
import Testing

/// Inputs the libFuzzer targets (Sources/Fuzz/ParleyFuzz/MLSTargets.swift) found trapping, each refused
/// now with an error. The crashing inputs themselves are in Tests/fuzz-corpus/<target>/regress-*.
@Suite struct FuzzFindingsTests {
    /// A real GroupInfo, with its tree in the `ratchet_tree` extension.
    static func groupInfo() throws -> GroupInfo {
        let alice = try TestClient(suite: .x25519AES128GCM, name: "alice"), bob = try TestClient(suite: .x25519AES128GCM, name: "bob")
        var group = try alice.create()
        return try group.commit(adding: [bob.keyPackage]).groupInfo
    }

    /// mls-group-info: a GroupInfo whose signer is 2^31 or more made `RatchetTree.leaf` compute 2 × signer
    /// in UInt32 and trap (overflow) while the joiner looked for the signer's key.
    @Test func aSignerPastTheTreeIsRefused() throws {
        var groupInfo = try Self.groupInfo()
        for signer: UInt32 in [1 << 31, UInt32.max, 2] {
            groupInfo.signer = signer
            #expect(throws: MLSError.invalidSignature) {
                try groupInfo.verifiedTree(suite: .x25519AES128GCM, outOfBand: nil, credentialValidator: CredentialValidation.anyBasicCredential)
            }
        }
        let tree = try #require(try? RatchetTree(suite: .x25519AES128GCM, encoded: groupInfo.extensions.first { $0.extensionType == ExtensionType.ratchetTree }!.data))
        #expect(tree.leaf(1 << 31) == nil && tree.leaf(UInt32.max) == nil)
    }

    /// mls-group-state: a stored state whose own leaf index is 2^31 or more made the restore compute
    /// 2 × my_leaf in UInt32 and trap.
    @Test func aStoredLeafIndexPastTheTreeIsRefused() throws {
        let alice = try TestClient(suite: .x25519AES128GCM, name: "alice")
        let group = try alice.create()
        let state = group.serialized().unprotectedBytes
        // uint8 format; uint16 suite; GroupContext; opaque ratchet_tree<V>; uint32 my_leaf; …
        var w = TLSWriter()
        w.writeOpaque(group.tree.encoded)
        let offset = 3 + group.context.tlsEncoded.count + w.bytes.count
        #expect(Array(state[offset..<(offset + 4)]) == [0, 0, 0, 0], "my_leaf is where the format says")
        for leaf: [UInt8] in [[0x80, 0, 0, 0], [0xff, 0xff, 0xff, 0xff], [0, 0, 0, 1]] {
            var damaged = state
            damaged.replaceSubrange(offset..<(offset + 4), with: leaf)
            #expect(throws: MLSError.self) { try Group(serialized: SecretBytes(damaged)) }
        }
    }

    /// mls-group-state: the secret tree of a stored state, with 2^31 leaves, made the node-index check
    /// compute 2 × leaf_count in UInt32 and trap. Its largest node index is 2^32 − 2.
    @Test func aStoredSecretTreeOfTwoToTheThirtyOneLeavesDoesNotTrap() throws {
        func secretTree(node: UInt32) throws(MLSError) -> SecretTree {
            var w = TLSWriter()
            w.writeUInt32(1 << 31)
            w.writeVector { w in
                w.writeUInt32(node)
                w.writeOpaque([UInt8](repeating: 7, count: 32))
            }
            w.writeVector { _ in }
            var r = TLSReader(w.bytes)
            let tree = try SecretTree(suite: .x25519AES128GCM, from: &r)
            try r.finish()
            return tree
        }
        #expect(try secretTree(node: UInt32.max - 1).leafCount == 1 << 31)
        #expect(throws: MLSError.invalidValue("secret tree node")) { try secretTree(node: UInt32.max) }
    }
}
