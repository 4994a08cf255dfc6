import CQRencode

/// A QR code symbol encoded by libqrencode (the system library, as Profanity uses it), as a square grid of
/// modules. The payload is always encoded in 8-bit (byte) mode with no ECI designator, so a decoder hands
/// back exactly the bytes that went in — including bytes ≥ 0x80 and NULs — as its raw byte content.
public struct QRCode: Sendable, Equatable {
    /// Error-correction level. The level trades capacity for damage tolerance: L ≈ 7 %, M ≈ 15 %,
    /// Q ≈ 25 %, H ≈ 30 % of the codewords can be restored.
    public enum ErrorCorrection: String, Sendable, CaseIterable {
        case low = "L", medium = "M", quartile = "Q", high = "H"

        var qrecLevel: QRecLevel {
            switch self {
            case .low: QR_ECLEVEL_L
            case .medium: QR_ECLEVEL_M
            case .quartile: QR_ECLEVEL_Q
            case .high: QR_ECLEVEL_H
            }
        }
    }

    public enum EncodeError: Error, Equatable, Sendable {
        /// libqrencode refuses an empty payload.
        case emptyPayload
        /// The payload does not fit in a version-40 symbol at this level (2 331 bytes at M, 1 663 at Q).
        case payloadTooLarge(bytes: Int, level: ErrorCorrection)
        /// `minimumVersion` outside 0...40.
        case invalidVersion(Int)
        /// Any other failure of QRcode_encodeData (its errno, e.g. ENOMEM).
        case encoderFailed(errno: Int32)
    }

    /// Side length in modules, without the quiet zone: 17 + 4 × version (21 for version 1 … 177 for 40).
    public let size: Int
    /// The QR version (1...40) that libqrencode chose: the smallest that holds the payload at `level`.
    public let version: Int
    public let level: ErrorCorrection
    /// Row-major, `size * size` entries, `true` = dark module.
    private let modules: [Bool]

    /// Encodes `bytes` in 8-bit mode. `minimumVersion` 0 lets libqrencode pick the smallest version that
    /// fits; a larger value forces at least that version.
    public static func encode(_ bytes: [UInt8], level: ErrorCorrection = .medium, minimumVersion: Int = 0) throws -> QRCode {
        guard !bytes.isEmpty else { throw EncodeError.emptyPayload }
        guard (0...Int(parley_qr_version_max())).contains(minimumVersion) else {
            throw EncodeError.invalidVersion(minimumVersion)
        }
        parley_qr_clear_errno()
        let encoded = bytes.withUnsafeBufferPointer { buffer in
            QRcode_encodeData(Int32(buffer.count), buffer.baseAddress, Int32(minimumVersion), level.qrecLevel)
        }
        guard let encoded else {
            let error = parley_qr_errno()
            if error == parley_qr_erange() { throw EncodeError.payloadTooLarge(bytes: bytes.count, level: level) }
            throw EncodeError.encoderFailed(errno: error)
        }
        defer { QRcode_free(encoded) }
        let width = Int(encoded.pointee.width)
        // libqrencode's data: one byte per module, row-major; bit 0 is 1 for a dark module (the other bits
        // describe what the module is — finder, timing, data … — and are not needed to draw it).
        let data = UnsafeBufferPointer(start: encoded.pointee.data, count: width * width)
        return QRCode(size: width, version: Int(encoded.pointee.version), level: level,
                      modules: data.map { $0 & 1 == 1 })
    }

    private init(size: Int, version: Int, level: ErrorCorrection, modules: [Bool]) {
        self.size = size
        self.version = version
        self.level = level
        self.modules = modules
    }

    /// Whether the module at column `x`, row `y` (0-based, origin top left) is dark. Coordinates outside
    /// the symbol are the quiet zone and read as light.
    public func isDark(x: Int, y: Int) -> Bool {
        guard x >= 0, y >= 0, x < size, y < size else { return false }
        return modules[y * size + x]
    }
}
