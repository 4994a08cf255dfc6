import ParleyQR
import Testing

/// Byte-mode capacities from the QR standard (ISO/IEC 18004:2015 Table 7), not from libqrencode: the
/// version libqrencode picks must be the smallest whose capacity holds the payload.
@Suite struct QRCodeTests {
    static func payload(_ count: Int, seed: UInt8 = 0x5A) -> [UInt8] {
        (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 151 &+ Int(seed)) }  // covers bytes ≥ 0x80
    }

    /// The scannable safety-number payload (ParleyProtocol's `SafetyNumber.scannable`, libsignal's
    /// CombinedFingerprints layout): 08 50 12 22 0a 20 <32 bytes> 1a 22 0a 20 <32 bytes>, 2 + 36 + 36 = 74 bytes.
    static let safetyNumberPayload: [UInt8] =
        [0x08, 0x50, 0x12, 0x22, 0x0A, 0x20] + payload(32, seed: 0xC3) + [0x1A, 0x22, 0x0A, 0x20] + payload(32, seed: 0x17)

    struct Capacity: Sendable, CustomTestStringConvertible {
        let level: QRCode.ErrorCorrection
        let bytes: Int
        let version: Int
        var testDescription: String { "\(bytes) B at \(level.rawValue) → v\(version)" }
    }

    static let capacities: [Capacity] = [
        // Exactly full, then one byte over.
        Capacity(level: .low, bytes: 17, version: 1), Capacity(level: .low, bytes: 18, version: 2),
        Capacity(level: .medium, bytes: 1, version: 1),
        Capacity(level: .medium, bytes: 14, version: 1), Capacity(level: .medium, bytes: 15, version: 2),
        Capacity(level: .medium, bytes: 26, version: 2), Capacity(level: .medium, bytes: 27, version: 3),
        Capacity(level: .medium, bytes: 62, version: 4), Capacity(level: .medium, bytes: 63, version: 5),
        Capacity(level: .medium, bytes: 70, version: 5),
        Capacity(level: .medium, bytes: 213, version: 10), Capacity(level: .medium, bytes: 214, version: 11),
        Capacity(level: .medium, bytes: 2331, version: 40),
        Capacity(level: .quartile, bytes: 11, version: 1), Capacity(level: .quartile, bytes: 12, version: 2),
        Capacity(level: .quartile, bytes: 74, version: 6), Capacity(level: .quartile, bytes: 75, version: 7),
        Capacity(level: .quartile, bytes: 1663, version: 40),
        Capacity(level: .high, bytes: 7, version: 1), Capacity(level: .high, bytes: 8, version: 2),
    ]

    @Test(arguments: capacities)
    func versionIsTheSmallestThatFits(_ capacity: Capacity) throws {
        let code = try QRCode.encode(Self.payload(capacity.bytes), level: capacity.level)
        #expect(code.version == capacity.version)
        #expect(code.size == 17 + 4 * capacity.version)
        #expect(code.level == capacity.level)
    }

    @Test func knownShortPayloads() throws {
        for text in ["parley", "hello, world", "\u{0}\u{1}\u{2}"] {
            let code = try QRCode.encode(Array(text.utf8))
            #expect(code.version == 1 && code.size == 21)
        }
        let safety = try QRCode.encode(Self.safetyNumberPayload)
        #expect(Self.safetyNumberPayload.count == 74)
        #expect(safety.version == 5 && safety.size == 37)  // 74 B: v4-M holds 62, v5-M 84
        #expect(try QRCode.encode(Self.safetyNumberPayload, level: .quartile).size == 41)  // v6-Q holds exactly 74
    }

    @Test func errors() {
        #expect(throws: QRCode.EncodeError.emptyPayload) { try QRCode.encode([]) }
        #expect(throws: QRCode.EncodeError.payloadTooLarge(bytes: 2332, level: .medium)) {
            try QRCode.encode(Self.payload(2332), level: .medium)
        }
        #expect(throws: QRCode.EncodeError.payloadTooLarge(bytes: 1664, level: .quartile)) {
            try QRCode.encode(Self.payload(1664), level: .quartile)
        }
        #expect(throws: QRCode.EncodeError.invalidVersion(41)) { try QRCode.encode([1], minimumVersion: 41) }
    }

    @Test func minimumVersionIsHonoured() throws {
        let code = try QRCode.encode([1, 2, 3], minimumVersion: 7)
        #expect(code.version == 7 && code.size == 45)
    }

    @Test func deterministicAndPayloadSensitive() throws {
        let a = try QRCode.encode(Self.safetyNumberPayload)
        #expect(a == (try QRCode.encode(Self.safetyNumberPayload)))
        var other = Self.safetyNumberPayload
        other[40] ^= 0x80
        #expect(a != (try QRCode.encode(other)))
    }

    /// The three finder patterns, the timing patterns and the always-dark module sit where the standard
    /// puts them: checks that the module bits are read from libqrencode's buffer the right way round.
    @Test(arguments: [1, 14, 70, 500])
    func functionPatterns(_ bytes: Int) throws {
        let code = try QRCode.encode(Self.payload(bytes))
        let n = code.size
        for (ox, oy) in [(0, 0), (n - 7, 0), (0, n - 7)] {
            for y in -1...7 {
                for x in -1...7 {
                    let ring = max(abs(x - 3), abs(y - 3))  // 0 centre … 3 outer edge, 4 separator
                    let expected = ring == 0 || ring == 1 || ring == 3
                    if ox + x < 0 || oy + y < 0 || ox + x >= n || oy + y >= n { continue }
                    #expect(code.isDark(x: ox + x, y: oy + y) == expected, "finder at (\(ox), \(oy)) + (\(x), \(y))")
                }
            }
        }
        for i in 8..<(n - 8) {
            #expect(code.isDark(x: i, y: 6) == (i % 2 == 0))
            #expect(code.isDark(x: 6, y: i) == (i % 2 == 0))
        }
        #expect(code.isDark(x: 8, y: n - 8))
        // Outside the symbol is quiet zone.
        #expect(!code.isDark(x: -1, y: 0) && !code.isDark(x: 0, y: n) && !code.isDark(x: n, y: n))
    }
}
