import ParleyCrypto
@testable import ParleyMLS
import Testing

/// Length fields a peer (or a damaged store) controls: a claim of about 2^30 bytes over a 10-byte input is
/// refused by every top-level decoder, before anything of that size is allocated. (The fuzz targets check
/// the allocation side: `make fuzz` runs them with -malloc_limit_mb=1.)
@Suite struct LengthFieldTests {
    /// The largest MLS varint, 2^30 − 1, as a 4-byte length, then 6 bytes: 10 bytes of input.
    static let hugeLength: [UInt8] = [0xbf, 0xff, 0xff, 0xff]
    static let tenBytes: [UInt8] = hugeLength + [1, 2, 3, 4, 5, 6]

    @Test func aLengthOfTwoToTheThirtyOverTenBytesIsRefused() throws {
        // 2^30 itself does not fit an MLS varint: QUIC's 8-byte form (prefix 0b11) is reserved in RFC 9420.
        var eightByteForm = TLSReader([0xc0, 0x00, 0x00, 0x00, 0x40, 0x00, 0x00, 0x00, 0x01, 0x02])
        #expect(throws: MLSError.invalidVarint) { try eightByteForm.readOpaque() }
        var opaque = TLSReader(Self.tenBytes)
        #expect(throws: MLSError.truncated) { try opaque.readOpaque() }
        #expect(opaque.offset == 4, "nothing past the length was consumed")
        var vector = TLSReader(Self.tenBytes)
        #expect(throws: MLSError.truncated) { try vector.readVector(of: MLSExtension.self) }
    }

    /// The same claim as the first length field of each structure that arrives from outside.
    @Test func everyTopLevelDecoderRefusesTheClaim() {
        let header: [UInt8] = [0x00, 0x01]  // mls10
        // Fields before the first length: MLSMessage (version, wire format), KeyPackage (version, suite),
        // Welcome (suite), GroupInfo (GroupContext: version, suite), group state (format, suite, GroupContext).
        let inputs: [(String, () throws -> Void)] = [
            ("PublicMessage", { _ = try MLSMessage(tlsEncoded: header + [0x00, 0x01] + Self.tenBytes) }),
            ("PrivateMessage", { _ = try MLSMessage(tlsEncoded: header + [0x00, 0x02] + Self.tenBytes) }),
            ("KeyPackage", { _ = try KeyPackage(tlsEncoded: header + [0x00, 0x01] + Self.tenBytes) }),
            ("Welcome", { _ = try Welcome(tlsEncoded: [0x00, 0x01] + Self.tenBytes) }),
            ("GroupInfo", { _ = try GroupInfo(tlsEncoded: header + [0x00, 0x01] + Self.tenBytes) }),
            ("GroupSecrets", { _ = try GroupSecrets(tlsEncoded: Self.tenBytes) }),
            ("ratchet tree", { _ = try RatchetTree(suite: .x25519AES128GCM, encoded: Self.tenBytes) }),
            ("group state", { _ = try Group(serialized: SecretBytes([Group.stateFormatVersion, 0x00, 0x01] + header + [0x00, 0x01] + Self.tenBytes)) }),
        ]
        for (name, decode) in inputs {
            #expect(throws: MLSError.truncated, "\(name)") { try decode() }
        }
    }
}
