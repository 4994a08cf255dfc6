import ParleyCrypto
@testable import ParleyMLS
import Testing

/// messages.json (every wire struct decodes and re-encodes to the same bytes) and deserialization.json
/// (varint length headers).
@Suite struct MessagesTests {
    static func roundTrip<T: TLSCodable>(_ type: T.Type, _ bytes: [UInt8], _ what: String) -> Bool {
        do {
            let value = try T(tlsEncoded: bytes)
            let ok = value.tlsEncoded == bytes
            if !ok { Issue.record("\(what) re-encodes differently") }
            return ok
        } catch {
            Issue.record("\(what) does not decode: \(error)")
            return false
        }
    }

    static func roundTripProposal(type: UInt16, _ bytes: [UInt8], _ what: String) -> Bool {
        do {
            var reader = TLSReader(bytes)
            let proposal = try Proposal.decodeBody(type: type, from: &reader)
            try reader.finish()
            var writer = TLSWriter()
            proposal.encodeBody(to: &writer)
            let ok = writer.bytes == bytes && proposal.type == type
            if !ok { Issue.record("\(what) re-encodes differently") }
            return ok
        } catch {
            Issue.record("\(what) does not decode: \(error)")
            return false
        }
    }

    @Test func messagesVectors() throws {
        // The file has no cipher suite per case: every case is checked.
        let cases = try MLSVectors.load("messages")
        #expect(!cases.isEmpty)
        var structs = 0
        var wireFormats: [String: Int] = [:]
        for v in cases {
            for field in ["mls_welcome", "mls_group_info", "mls_key_package", "public_message_application", "public_message_proposal",
                          "public_message_commit", "private_message"] {
                let bytes = try v.hex(field)
                if Self.roundTrip(MLSMessage.self, bytes, field) {
                    structs += 1
                    wireFormats["\(try MLSMessage(tlsEncoded: bytes).body.wireFormat)", default: 0] += 1
                }
            }
            if Self.roundTrip(GroupSecrets.self, try v.hex("group_secrets"), "group_secrets") { structs += 1 }
            if Self.roundTrip(Commit.self, try v.hex("commit"), "commit") { structs += 1 }
            // The ratchet tree's decoding depends on no suite (the tree's suite only matters for hashing).
            let treeBytes = try v.hex("ratchet_tree")
            if let tree = try? RatchetTree(suite: .x25519AES128GCM, encoded: treeBytes), tree.encoded == treeBytes {
                structs += 1
            } else {
                Issue.record("ratchet_tree does not decode or re-encode")
            }
            let proposals: [(String, UInt16)] = [
                ("add_proposal", 1), ("update_proposal", 2), ("remove_proposal", 3), ("pre_shared_key_proposal", 4),
                ("re_init_proposal", 5), ("external_init_proposal", 6), ("group_context_extensions_proposal", 7),
            ]
            for (field, type) in proposals where Self.roundTripProposal(type: type, try v.hex(field), field) { structs += 1 }
        }
        #expect(structs == cases.count * 17)
        print("messages.json: \(cases.count) cases, \(structs) structures decode and re-encode byte for byte \(wireFormats.sorted { $0.key < $1.key })")
    }

    @Test func deserializationVectors() throws {
        let cases = try MLSVectors.load("deserialization")
        #expect(!cases.isEmpty)
        for v in cases {
            let header = try v.hex("vlbytes_header")
            var reader = TLSReader(header)
            #expect(try reader.readVarint() == (try v.int("length")))
            try reader.finish()
            var writer = TLSWriter()
            writer.writeVarint(try v.int("length"))
            #expect(writer.bytes == header)
        }
        print("deserialization.json: \(cases.count) of \(cases.count) length headers pass")
    }

    /// Every strict prefix of a valid message is refused (truncated), never trapping; so is any extension.
    @Test func truncationsAndExtensionsOfRealMessagesAreRefused() throws {
        let v = try #require(try MLSVectors.load("messages").first)
        for field in ["mls_welcome", "mls_group_info", "mls_key_package", "public_message_commit", "private_message"] {
            let bytes = try v.hex(field)
            for cut in 0..<bytes.count {
                #expect(throws: MLSError.self) { try MLSMessage(tlsEncoded: Array(bytes[..<cut])) }
            }
            #expect(throws: MLSError.trailingBytes) { try MLSMessage(tlsEncoded: bytes + [0]) }
        }
    }
}
