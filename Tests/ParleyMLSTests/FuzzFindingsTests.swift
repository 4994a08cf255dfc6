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
}
