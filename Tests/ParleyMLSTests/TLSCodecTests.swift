@testable import ParleyMLS
import Testing

@Suite struct TLSCodecTests {
    /// RFC 9420 §2.1.2's examples and the boundaries of each width.
    @Test func varintsRoundTripAtEveryWidth() throws {
        let cases: [(Int, [UInt8])] = [
            (0, [0x00]), (37, [0x25]), (63, [0x3f]), (64, [0x40, 0x40]), (15293, [0x7b, 0xbd]), (16383, [0x7f, 0xff]),
            (16384, [0x80, 0x00, 0x40, 0x00]), (494_878_333, [0x9d, 0x7f, 0x3e, 0x7d]), ((1 << 30) - 1, [0xbf, 0xff, 0xff, 0xff]),
        ]
        for (value, encoding) in cases {
            var w = TLSWriter()
            w.writeVarint(value)
            #expect(w.bytes == encoding)
            var r = TLSReader(encoding)
            #expect(try r.readVarint() == value)
            try r.finish()
        }
    }

    @Test func overLongVarintsAreRefused() {
        // 37 in two bytes, 63 in four, and the reserved 0b11 prefix.
        for bytes: [UInt8] in [[0x40, 0x25], [0x80, 0x00, 0x00, 0x3f], [0x80, 0x00, 0x3f, 0xff], [0xc0, 0, 0, 0, 0, 0, 0, 1]] {
            var r = TLSReader(bytes)
            #expect(throws: MLSError.invalidVarint) { try r.readVarint() }
        }
    }

    @Test func truncatedInputIsRefused() {
        for bytes: [UInt8] in [[], [0x40], [0x80, 0x00, 0x01]] {
            var r = TLSReader(bytes)
            #expect(throws: MLSError.truncated) { try r.readVarint() }
        }
        var r = TLSReader([0, 1, 2])
        #expect(throws: MLSError.truncated) { try r.readUInt32() }
    }

    /// A length field claiming ~1 GiB over a 5-byte input is refused before anything is allocated.
    @Test func lengthPastTheInputIsRefusedWithoutAllocating() {
        var r = TLSReader([0xbf, 0xff, 0xff, 0xff, 0x01])
        #expect(throws: MLSError.truncated) { try r.readOpaque() }
        var v = TLSReader([0xbf, 0xff, 0xff, 0xff, 0x01])
        #expect(throws: MLSError.truncated) { try v.readVector { (r: inout TLSReader) throws(MLSError) in try r.readUInt8() } }
    }

    @Test func trailingBytesAreRefused() throws {
        #expect(throws: MLSError.trailingBytes) { try HPKECiphertext(tlsEncoded: [0x01, 0xaa, 0x00, 0x00]) }
        let ok = try HPKECiphertext(tlsEncoded: [0x01, 0xaa, 0x00])
        #expect(ok == HPKECiphertext(kemOutput: [0xaa], ciphertext: []))
        #expect(ok.tlsEncoded == [0x01, 0xaa, 0x00])
    }

    /// An element that runs past its vector's end is refused even when the outer input has more bytes.
    @Test func elementsCannotRunPastTheirVector() throws {
        // Vector of 2 bytes holding a uint16 + the start of another; outer input continues.
        var r = TLSReader([0x03, 0x00, 0x01, 0x00, 0x02, 0x00])
        #expect(throws: MLSError.truncated) { try r.readVector { (r: inout TLSReader) throws(MLSError) in try r.readUInt16() } }
        var ok = TLSReader([0x04, 0x00, 0x01, 0x00, 0x02])
        #expect(try ok.readVector { (r: inout TLSReader) throws(MLSError) in try r.readUInt16() } == [1, 2])
    }

    @Test func optionalsTakeOnlyZeroOrOne() throws {
        var r = TLSReader([0x02, 0x05])
        #expect(throws: MLSError.invalidValue("optional presence byte")) { try r.readOptional { (r: inout TLSReader) throws(MLSError) in try r.readUInt8() } }
        var w = TLSWriter()
        w.writeOptional(UInt8(5)) { $0.writeUInt8($1) }
        w.writeOptional(UInt8?.none) { $0.writeUInt8($1) }
        #expect(w.bytes == [1, 5, 0])
    }

    /// A reader for an element that consumes nothing must not spin on a non-empty vector.
    @Test func elementsThatReadNothingAreRefused() {
        var r = TLSReader([0x02, 0x00, 0x00])
        #expect(throws: MLSError.invalidValue("empty vector element")) {
            try r.readVector { (r: inout TLSReader) throws(MLSError) in try r.readBytes(0) }
        }
    }
}
