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

    /// The escapes that send `png` to the terminal under `id` without showing it yet (`a=t`), or nil for
    /// anything that is not a PNG within the limits.
    public static func transmit(png: [UInt8], id: UInt32, insideTmux: Bool = false) -> [String]? {
        guard png.count <= maxBytes, pngSize(png) != nil, id > 0 else { return nil }
        return chunked(png, first: "a=t,f=100,i=\(id),q=2", insideTmux: insideTmux)
    }

    /// Shows image `id` at the cursor over `columns` × `rows` cells, leaving the cursor where it was.
    public static func place(id: UInt32, columns: Int, rows: Int, insideTmux: Bool = false) -> String {
        wrap("\u{1B}_Ga=p,i=\(id),c=\(columns),r=\(rows),C=1,q=2\u{1B}\\", insideTmux)
    }

    /// Takes every image placement off the screen (the images stay with the terminal to be placed again).
    public static func removePlacements(insideTmux: Bool = false) -> String {
        wrap("\u{1B}_Ga=d,d=a,q=2\u{1B}\\", insideTmux)
    }

    /// The cells an image fills at most `columns` × `rows`, keeping its proportions (a cell is taken to be
    /// twice as tall as it is wide).
    public static func cells(width: UInt32, height: UInt32, columns: Int, rows: Int) -> (columns: Int, rows: Int) {
        let wanted = Int((Double(width) / Double(height) * Double(rows) * 2).rounded(.up))
        if wanted <= columns { return (max(1, wanted), rows) }
        return (columns, max(1, min(rows, Int((Double(columns) * Double(height) / Double(width) / 2).rounded(.up)))))
    }

    static func wrap(_ escape: String, _ insideTmux: Bool) -> String {
        insideTmux ? "\u{1B}Ptmux;" + escape.replacingOccurrences(of: "\u{1B}", with: "\u{1B}\u{1B}") + "\u{1B}\\" : escape
    }

    static func chunked(_ png: [UInt8], first keys: String, insideTmux: Bool) -> [String] {
        let encoded = Array(Data(png).base64EncodedString().utf8)
        var out: [String] = []
        var start = 0
        while start < encoded.count {
            let end = min(encoded.count, start + chunk)
            let more = end < encoded.count ? 1 : 0
            let control = (start == 0 ? keys + "," : "") + "m=\(more)"
            out.append(wrap("\u{1B}_G" + control + ";" + String(decoding: encoded[start..<end], as: UTF8.self) + "\u{1B}\\", insideTmux))
            start = end
        }
        return out
    }

    /// The escapes that draw `png` at the cursor, scaled into `columns` × `rows` cells: the base64 of the
    /// file in chunks (`a=T,f=100`: transmit a PNG and show it; `q=2`: no replies on the input). Inside
    /// tmux each escape is wrapped for its passthrough (ESC doubled inside `ESC P tmux; … ESC \`). Nil for
    /// anything that is not a PNG within the limits.
    public static func escapes(png: [UInt8], columns: Int, rows: Int, insideTmux: Bool = false) -> [String]? {
        guard png.count <= maxBytes, pngSize(png) != nil, columns > 0, rows > 0 else { return nil }
        return chunked(png, first: "a=T,f=100,q=2,c=\(columns),r=\(rows)", insideTmux: insideTmux)
    }

    /// Whether a file name is one the terminal may be given (PNG only).
    public static func isPNG(fileName: String) -> Bool { (fileName as NSString).pathExtension.lowercased() == "png" }

    /// Whether a file name is one an image placeholder stands for.
    public static func isImage(fileName: String) -> Bool {
        ["png", "jpg", "jpeg", "gif", "webp"].contains((fileName as NSString).pathExtension.lowercased())
    }
}

/// Which image: the message that carries it.
public struct ImageKey: Hashable, Sendable {
    public let sender: String
    public let clientMessageId: [UInt8]
}

/// An image on screen: its top-left cell and the most cells it may fill.
public struct ImagePlacement: Equatable, Sendable {
    public let key: ImageKey
    public let x: Int, y: Int, columns: Int, rows: Int
}

/// What the window writes after each frame to keep the images where the renderer left room for them:
/// nothing when the placements did not change; else every placement removed and each image placed again
/// (sent to the terminal once, under an id of its own). Images not downloaded yet are asked for
/// (`wanted`); one that is not a PNG within the limits is never asked for again.
public struct InlineImageDrawer: Sendable {
    public let insideTmux: Bool
    private var images: [ImageKey: (id: UInt32, png: [UInt8], size: (width: UInt32, height: UInt32))] = [:]
    private var sent: Set<ImageKey> = []
    private var refused: Set<ImageKey> = []
    private var asked: Set<ImageKey> = []
    private var drawn: [ImagePlacement] = []
    private var nextId: UInt32 = 1
    private var mustClear = false

    public init(insideTmux: Bool) { self.insideTmux = insideTmux }

    /// The bytes of an image that was asked for (nil: it could not be had); false when they are refused.
    @discardableResult
    public mutating func received(_ key: ImageKey, _ png: [UInt8]?) -> Bool {
        guard let png, png.count <= KittyGraphics.maxBytes, let size = KittyGraphics.pngSize(png) else {
            refused.insert(key)
            return false
        }
        images[key] = (nextId, png, size)
        nextId += 1
        return true
    }

    /// The next frame redraws every image (after the screen was cleared).
    public mutating func forgetDrawn() {
        drawn = []
        mustClear = true
    }

    /// The escapes to write after a frame with `placements`, and the images to download first.
    public mutating func frame(_ placements: [ImagePlacement]) -> (escapes: String, wanted: [ImageKey]) {
        var wanted: [ImageKey] = []
        for placement in placements where images[placement.key] == nil && !refused.contains(placement.key) && asked.insert(placement.key).inserted {
            wanted.append(placement.key)
        }
        let shown = placements.filter { images[$0.key] != nil }
        guard shown != drawn || mustClear else { return ("", wanted) }
        var out = drawn.isEmpty && !mustClear ? "" : KittyGraphics.removePlacements(insideTmux: insideTmux)
        mustClear = false
        for placement in shown {
            guard let image = images[placement.key] else { continue }
            if sent.insert(placement.key).inserted {
                out += (KittyGraphics.transmit(png: image.png, id: image.id, insideTmux: insideTmux) ?? []).joined()
            }
            let cells = KittyGraphics.cells(width: image.size.width, height: image.size.height, columns: placement.columns, rows: placement.rows)
            // Save the cursor, go to the cell, place, and put the cursor back where curses left it.
            out += "\u{1B}7\u{1B}[\(placement.y + 1);\(placement.x + 1)H"
                + KittyGraphics.place(id: image.id, columns: cells.columns, rows: cells.rows, insideTmux: insideTmux) + "\u{1B}8"
        }
        drawn = shown
        return (out, wanted)
    }
}
