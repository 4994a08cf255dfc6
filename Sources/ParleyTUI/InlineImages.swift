import Foundation

/// Whether image attachments may be drawn in the terminal. Only the kitty graphics protocol is supported:
/// kitty takes a PNG file as it is, so no image decoder ever runs inside Parley on bytes a peer chose.
/// Sixel would need decoded pixels, and no decoder here is one to trust with them (libsixel and chafa
/// decode in-process without limits), so there is no sixel mode.
public enum InlineImages: String, Sendable, CaseIterable {
    case off, kitty, auto

    /// Whether to use the kitty protocol in this terminal: "kitty" always (inside tmux wrapped for its
    /// passthrough, which needs `set -g allow-passthrough on`); "auto" only in a terminal that says it
    /// is kitty, WezTerm or Ghostty, and never inside tmux (which would show the escapes' remains).
    public func usesKitty(environment: [String: String]) -> Bool {
        switch self {
        case .off: return false
        case .kitty: return true
        case .auto:
            if environment["TMUX"].map({ !$0.isEmpty }) == true { return false }
            return environment["TERM"] == "xterm-kitty" || environment["KITTY_WINDOW_ID"] != nil
                || ["WezTerm", "ghostty"].contains(environment["TERM_PROGRAM"] ?? "")
        }
    }
}

/// The kitty graphics protocol's escapes for one PNG, checked first: the PNG signature and its IHDR
/// chunk, with sizes within bounds, and at most `maxBytes` in all. Nothing else of the file is read; the
/// terminal decodes it.
public enum KittyGraphics {
    /// The largest PNG sent to the terminal.
    public static let maxBytes = 4 << 20
    /// The largest width or height accepted, in pixels.
    public static let maxSide: UInt32 = 10_000
    /// Base64 characters per escape (the protocol's limit for a chunk).
    static let chunk = 4096

    static let signature: [UInt8] = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]

    /// The width and height a PNG's header gives, or nil when the bytes do not start as a PNG does.
    public static func pngSize(_ bytes: [UInt8]) -> (width: UInt32, height: UInt32)? {
        guard bytes.count >= 24, Array(bytes[0..<8]) == signature, Array(bytes[12..<16]) == Array("IHDR".utf8),
              bytes[8..<12].elementsEqual([0, 0, 0, 13]) else { return nil }
        func word(_ at: Int) -> UInt32 { bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) } }
        let width = word(16), height = word(20)
        guard (1...maxSide).contains(width), (1...maxSide).contains(height) else { return nil }
        return (width, height)
    }

    /// The escapes that draw `png` at the cursor, scaled into `columns` × `rows` cells: the base64 of the
    /// file in chunks (`a=T,f=100`: transmit a PNG and show it; `q=2`: no replies on the input). Inside
    /// tmux each escape is wrapped for its passthrough (ESC doubled inside `ESC P tmux; … ESC \`). Nil for
    /// anything that is not a PNG within the limits.
    public static func escapes(png: [UInt8], columns: Int, rows: Int, insideTmux: Bool = false) -> [String]? {
        guard png.count <= maxBytes, pngSize(png) != nil, columns > 0, rows > 0 else { return nil }
        let encoded = Array(Data(png).base64EncodedString().utf8)
        var out: [String] = []
        var start = 0
        while start < encoded.count {
            let end = min(encoded.count, start + chunk)
            let more = end < encoded.count ? 1 : 0
            let keys = start == 0 ? "a=T,f=100,q=2,c=\(columns),r=\(rows),m=\(more)" : "m=\(more)"
            let escape = "\u{1B}_G" + keys + ";" + String(decoding: encoded[start..<end], as: UTF8.self) + "\u{1B}\\"
            out.append(insideTmux ? "\u{1B}Ptmux;" + escape.replacingOccurrences(of: "\u{1B}", with: "\u{1B}\u{1B}") + "\u{1B}\\" : escape)
            start = end
        }
        return out
    }

    /// Whether a file name is one an image placeholder stands for.
    public static func isImage(fileName: String) -> Bool {
        ["png", "jpg", "jpeg", "gif", "webp"].contains((fileName as NSString).pathExtension.lowercased())
    }
}
