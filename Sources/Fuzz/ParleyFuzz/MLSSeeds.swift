import Foundation
import ParleyCrypto
@testable import ParleyMLS

/// Seeds of the MLS targets: structures from the IETF vectors (read in place from ../shared/vectors/mls,
/// see MLSFuzzFixture) and messages the fixture's member makes in its group, so that the fuzzer starts past
/// the signatures and AEADs. A few dozen files; trees and messages longer than -max_len are left out.
enum MLSSeeds {
    static func write(_ seed: (String, String, [UInt8]) throws -> Void) throws {
        guard let fixture = MLSFuzzFixture.shared else { throw MLSFuzzFixture.FixtureError("MLS vectors not found in \(MLSFuzzFixture.directory)") }
        func hex(_ object: [String: Any], _ key: String) throws -> [UInt8] {
            guard let text = object[key] as? String, let bytes = Hex.decode(text) else { throw MLSFuzzFixture.FixtureError(key) }
            return bytes
        }
        /// The structure inside an MLSMessage (its version and wire format, 4 bytes, dropped).
        func body(_ message: [UInt8]) -> [UInt8] { Array(message.dropFirst(4)) }

        // messages.json: one of each wire structure, from two cases.
        for (n, v) in try MLSFuzzFixture.vectorFile("messages").prefix(2).enumerated() {
            for field in ["mls_welcome", "mls_group_info", "mls_key_package", "public_message_application", "public_message_proposal",
                          "public_message_commit", "private_message"] {
                try seed("mls-message", "vector-\(n)-\(field)", try hex(v, field))
            }
            try seed("mls-key-package", "vector-\(n)", body(try hex(v, "mls_key_package")))
            try seed("mls-group-info", "vector-\(n)", body(try hex(v, "mls_group_info")))
            try seed("mls-welcome", "vector-\(n)", [0] + body(try hex(v, "mls_welcome")))
            try seed("mls-welcome", "vector-\(n)-group-secrets", [1] + (try hex(v, "group_secrets")))
            try seed("mls-ratchet-tree", "vector-\(n)", [0] + Array("group".utf8).withVarintLength + (try hex(v, "ratchet_tree")))
        }
        // welcome.json: a KeyPackage and its Welcome for suites 1 and 3.
        for v in try MLSFuzzFixture.vectorFile("welcome") {
            guard let suite = v["cipher_suite"] as? Int, suite == 1 || suite == 3 else { continue }
            try seed("mls-key-package", "welcome-suite-\(suite)", body(try hex(v, "key_package")))
            try seed("mls-welcome", "welcome-suite-\(suite)", [0] + body(try hex(v, "welcome")))
        }
        // tree-validation.json: valid trees of 2 to 16 leaves: the suite (0 is 1, 1 is 3), the group id, the tree.
        for (index, v) in try MLSFuzzFixture.vectorFile("tree-validation").enumerated() {
            guard let suite = v["cipher_suite"] as? Int, suite == 1 || suite == 3 else { continue }
            let tree = try hex(v, "tree")
            guard tree.count < 2048, suite == 1 || index % 4 == 0 else { continue }
            try seed("mls-ratchet-tree", "tree-validation-\(index)", [suite == 1 ? 0 : 1] + (try hex(v, "group_id")).withVarintLength + tree)
        }

        // The fixture: the vector's Welcome and KeyPackage, the group it joins, and the commit it processes.
        try seed("mls-message", "passive-welcome", MLSMessage(body: .welcome(fixture.welcome)).tlsEncoded)
        try seed("mls-welcome", "passive-welcome", [0] + fixture.welcome.tlsEncoded)
        try seed("mls-key-package", "passive", fixture.keyPackage.tlsEncoded)
        try seed("mls-ratchet-tree", "passive", [0] + fixture.group.context.groupID.withVarintLength + fixture.group.tree.encoded)
        try seed("mls-group-state", "passive-joined", fixture.serializedGroup.unprotectedBytes)
        for (n, commit) in fixture.commits.enumerated() {
            try seed("mls-group-process", "passive-commit-\(n)", commit.tlsEncoded)
            var next = fixture.group
            _ = try next.process(commit)
            try seed("mls-group-state", "passive-after-commit-\(n)", next.serialized().unprotectedBytes)
        }

        // What the fixture's own member sends in its epoch: each is processed by (a copy of) the fixture.
        var member = fixture.group
        let application = try member.encrypt(Array("hello, group".utf8), authenticatedData: [1, 2], padding: 8)
        try seed("mls-group-process", "own-application", application.tlsEncoded)
        try seed("mls-message", "own-application", application.tlsEncoded)
        let update = try member.proposeUpdate()
        try seed("mls-group-process", "own-update-proposal", update.tlsEncoded)
        try seed("mls-group-state", "pending-update", member.serialized().unprotectedBytes)
        let remove = try member.propose(.remove(leafIndex: fixture.group.tree.occupiedLeaves.first { $0 != fixture.group.myLeaf } ?? 0))
        try seed("mls-group-process", "own-remove-proposal", remove.tlsEncoded)
        // A commit by the member: its GroupInfo carries ratchet_tree and external_pub (an external joiner's input).
        var committer = fixture.group
        let committed = try committer.commit(wireFormat: .privateMessage)
        try seed("mls-message", "own-private-commit", committed.message.tlsEncoded)
        try seed("mls-group-info", "own-commit", committed.groupInfo.tlsEncoded)
        try seed("mls-group-state", "own-commit", committer.serialized().unprotectedBytes)
    }
}
