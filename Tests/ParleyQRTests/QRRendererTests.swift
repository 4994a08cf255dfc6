import ParleyQR
import Testing

/// Geometry of the terminal renderings, and a round trip: each rendering is read back into modules and
/// must give the code's modules inside and light modules in the quiet zone.
@Suite struct QRRendererTests {
    static let codes: [QRCode] = [1, 14, 70, 200, 500].map { try! QRCode.encode(QRCodeTests.payload($0)) }
    static let quietZones = [0, 1, 2, 4, 5]

    /// Reads half-block lines back into a grid of inked (true) / paper (false) modules, two per character.
    static func inkFromHalfBlocks(_ lines: [String]) -> [[Bool]] {
        var rows: [[Bool]] = []
        for line in lines {
            var upper: [Bool] = [], lower: [Bool] = []
            for scalar in line.unicodeScalars {
                switch scalar {
                case " ": upper.append(false); lower.append(false)
                case "\u{2580}": upper.append(true); lower.append(false)
                case "\u{2584}": upper.append(false); lower.append(true)
                case "\u{2588}": upper.append(true); lower.append(true)
                default: Issue.record("unexpected character U+\(String(scalar.value, radix: 16))")
                }
            }
            rows.append(upper)
            rows.append(lower)
        }
        return rows
    }

    static func inkFromASCII(_ lines: [String]) -> [[Bool]] {
        lines.map { line in
            let chars = Array(line)
            #expect(chars.count % 2 == 0)
            return stride(from: 0, to: chars.count, by: 2).map { i in
                #expect(chars[i] == chars[i + 1] && (chars[i] == "#" || chars[i] == " "))
                return chars[i] == "#"
            }
        }
    }

    /// Expected ink for module (x, y) of the rendering including its quiet zone.
    static func expectInk(_ ink: [[Bool]], _ code: QRCode, quiet: Int, inkDark: Bool, rows: Int) {
        let span = code.size + 2 * quiet
        #expect(ink.count == rows)
        var mismatches = 0
        for y in 0..<span {
            #expect(ink[y].count == span)
            for x in 0..<span where ink[y][x] != (code.isDark(x: x - quiet, y: y - quiet) == inkDark) {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
    }

    @Test(arguments: codes, quietZones)
    func halfBlocksGeometryAndRoundTrip(_ code: QRCode, _ quiet: Int) {
        let span = code.size + 2 * quiet
        for darkOnLight in [true, false] {
            let lines = QRRenderer.halfBlocks(code, quietZone: quiet, darkOnLight: darkOnLight)
            #expect(lines.count == (span + 1) / 2)  // ceil((size + 2q) / 2)
            #expect(lines.allSatisfy { $0.unicodeScalars.count == span })
            let ink = Self.inkFromHalfBlocks(lines)
            Self.expectInk(ink, code, quiet: quiet, inkDark: darkOnLight, rows: 2 * lines.count)
            // span is odd, so the last line's lower half is padding below the quiet zone: never inked.
            #expect(span % 2 == 1)
            #expect(ink[span].allSatisfy { !$0 })
        }
    }

    @Test func quietZoneIsPresent() throws {
        let code = try QRCode.encode(QRCodeTests.safetyNumberPayload)
        let span = code.size + 8
        // Dark on light: the top two lines (4 module rows) are blank; the first 4 and last 4 columns too.
        let dark = QRRenderer.halfBlocks(code)
        #expect(dark[0] == String(repeating: " ", count: span) && dark[1] == dark[0])
        #expect(dark.allSatisfy { line in
            let s = Array(line.unicodeScalars)
            return s.prefix(4).allSatisfy { $0 == " " } && s.suffix(4).allSatisfy { $0 == " " }
        })
        // The first symbol row (module row 4) starts the top finder patterns: upper half of line 2 inked.
        #expect(Array(dark[2].unicodeScalars)[4] == "\u{2580}" || Array(dark[2].unicodeScalars)[4] == "\u{2588}")
        // Light modules inked: the quiet zone is painted with full blocks (the bottom line's lower half is
        // the padding row, so it shows '▀').
        let light = QRRenderer.halfBlocks(code, darkOnLight: false)
        #expect(light[0] == String(repeating: "\u{2588}", count: span) && light[1] == light[0])
        #expect(light.last == String(repeating: "\u{2580}", count: span))
        #expect(light.allSatisfy { line in
            let s = Array(line.unicodeScalars)
            return s.prefix(4).allSatisfy { $0 != " " } && s.suffix(4).allSatisfy { $0 != " " }
        })
    }

    @Test func ansiColoursPaintBothColours() throws {
        let code = try QRCode.encode(QRCodeTests.safetyNumberPayload)
        let plain = QRRenderer.halfBlocks(code)
        for darkOnLight in [true, false] {
            let coloured = QRRenderer.halfBlocks(code, darkOnLight: darkOnLight, ansiColors: true)
            #expect(coloured.count == plain.count)
            for (c, p) in zip(coloured, plain) {
                #expect(c == "\u{1B}[30;47m" + p + "\u{1B}[0m")
            }
        }
    }

    @Test(arguments: codes, quietZones)
    func asciiGeometryAndRoundTrip(_ code: QRCode, _ quiet: Int) {
        let span = code.size + 2 * quiet
        for darkOnLight in [true, false] {
            let lines = QRRenderer.ascii(code, quietZone: quiet, darkOnLight: darkOnLight)
            #expect(lines.count == span)
            #expect(lines.allSatisfy { $0.utf8.count == 2 * span && $0.count == 2 * span })
            Self.expectInk(Self.inkFromASCII(lines), code, quiet: quiet, inkDark: darkOnLight, rows: span)
        }
        let lines = QRRenderer.ascii(code, quietZone: quiet)
        #expect(lines.allSatisfy { $0.allSatisfy { $0 == "#" || $0 == " " } })
        if quiet > 0 {
            #expect(lines.first == String(repeating: " ", count: 2 * span))
            #expect(lines.last == String(repeating: " ", count: 2 * span))
        }
    }

    @Test func asciiDefaultMatchesHalfBlocks() throws {
        let code = try QRCode.encode(Array("parley".utf8))
        #expect(QRRenderer.ascii(code).count == 29 && QRRenderer.ascii(code)[0].count == 58)
        #expect(Self.inkFromASCII(QRRenderer.ascii(code)) == Array(Self.inkFromHalfBlocks(QRRenderer.halfBlocks(code)).prefix(29)))
    }
}
