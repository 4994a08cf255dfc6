// parley-qr: a test tool that renders a payload given as hex with ParleyQR and prints the lines, so that
// Tests/interop/test_qr_decode.py can decode them with an independent decoder. Not part of the client.
//
//   parley-qr [--ascii] [--light] [--ansi] [--quiet-zone N] [--level L|M|Q|H] [--info] HEX
//
//   --ascii        the pure-ASCII fallback instead of half blocks
//   --light        ink the light modules and the quiet zone (darkOnLight: false), for dark terminals
//   --ansi         half blocks with explicit black-on-white SGR colours
//   --quiet-zone N quiet zone in modules (default 4)
//   --level X      error correction L, M (default), Q or H
//   --info         print "version V size S level X" on stderr as well
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ParleyQR

func fail(_ message: String, status: Int32 = 2) -> Never {
    var stderr = StandardError()
    print("parley-qr: \(message)", to: &stderr)
    exit(status)
}

func writeStderr(_ bytes: UnsafeBufferPointer<UInt8>) {
    _ = write(2, bytes.baseAddress, bytes.count)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        var text = string
        text.withUTF8 { writeStderr($0) }
    }
}

func parseHex(_ text: String) -> [UInt8]? {
    let digits = Array(text.utf8)
    guard digits.count % 2 == 0 else { return nil }
    func nibble(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c - UInt8(ascii: "A") + 10
        default: nil
        }
    }
    var bytes: [UInt8] = []
    bytes.reserveCapacity(digits.count / 2)
    for i in stride(from: 0, to: digits.count, by: 2) {
        guard let high = nibble(digits[i]), let low = nibble(digits[i + 1]) else { return nil }
        bytes.append(high << 4 | low)
    }
    return bytes
}

var ascii = false, light = false, ansi = false, info = false
var quietZone = 4
var level = QRCode.ErrorCorrection.medium
var hex: String?
var arguments = CommandLine.arguments.dropFirst()
while let argument = arguments.popFirst() {
    switch argument {
    case "--ascii": ascii = true
    case "--light": light = true
    case "--ansi": ansi = true
    case "--info": info = true
    case "--quiet-zone":
        guard let value = arguments.popFirst().flatMap({ Int($0) }), value >= 0 else {
            fail("--quiet-zone needs a number ≥ 0")
        }
        quietZone = value
    case "--level":
        guard let value = arguments.popFirst().flatMap({ QRCode.ErrorCorrection(rawValue: $0.uppercased()) }) else {
            fail("--level needs L, M, Q or H")
        }
        level = value
    case "-h", "--help":
        print("usage: parley-qr [--ascii] [--light] [--ansi] [--quiet-zone N] [--level L|M|Q|H] [--info] HEX")
        exit(0)
    default:
        guard !argument.hasPrefix("-"), hex == nil else { fail("unexpected argument \(argument)") }
        hex = argument
    }
}
guard let hex else { fail("missing payload (hex)") }
guard let payload = parseHex(hex) else { fail("payload is not valid hex") }
if ascii && ansi { fail("--ansi applies to half blocks only") }

let code: QRCode
do {
    code = try QRCode.encode(payload, level: level)
} catch {
    fail("cannot encode: \(error)", status: 1)
}
if info {
    var stderr = StandardError()
    print("version \(code.version) size \(code.size) level \(code.level.rawValue)", to: &stderr)
}
let lines = ascii
    ? QRRenderer.ascii(code, quietZone: quietZone, darkOnLight: !light)
    : QRRenderer.halfBlocks(code, quietZone: quietZone, darkOnLight: !light, ansiColors: ansi)
print(lines.joined(separator: "\n"))
