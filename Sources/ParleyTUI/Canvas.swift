/// An off-screen grid of cells: what the renderer draws and the curses layer copies to the terminal. Being
/// plain data, it is what the snapshot tests and the benchmark look at.
public struct Canvas: Sendable {
    public struct Cell: Equatable, Sendable {
        /// One grapheme cluster, or "" for the right half of a wide one.
        public var text: String
        public var style: ThemeKey
    }

    public let width: Int, height: Int
    public private(set) var cells: [Cell]
    /// Where the terminal cursor goes (the input line's caret), if shown.
    public var cursor: (x: Int, y: Int)?
    /// Where images go over the cells (blank rows the renderer left for them), drawn by the terminal.
    public var images: [ImagePlacement] = []

    public init(width: Int, height: Int) {
        self.width = max(0, width)
        self.height = max(0, height)
        cells = Array(repeating: Cell(text: " ", style: .base), count: self.width * self.height)
    }

    public subscript(x: Int, y: Int) -> Cell { cells[y * width + x] }

    /// Fills a rectangle with spaces in `style`.
    public mutating func fill(x: Int, y: Int, width w: Int, height h: Int, style: ThemeKey) {
        for row in max(0, y)..<min(height, y + h) {
            for col in max(0, x)..<min(width, x + w) { cells[row * width + col] = Cell(text: " ", style: style) }
        }
    }

    /// Writes `text` from (x, y), clipped at `limit` columns (default: the canvas edge). A wide cluster that
    /// would straddle the limit is left out. Returns the column after the last one written.
    @discardableResult
    public mutating func put(_ text: String, x: Int, y: Int, style: ThemeKey, limit: Int? = nil) -> Int {
        guard y >= 0, y < height else { return x }
        let end = min(width, limit.map { x + $0 } ?? width)
        var col = x
        for cluster in text {
            let w = cluster == "\n" || cluster == "\t" ? 1 : DisplayWidth.width(cluster)
            if w == 0 { continue }
            if col + w > end { break }
            if col >= 0 {
                cells[y * width + col] = Cell(text: cluster == "\n" || cluster == "\t" ? " " : String(cluster), style: style)
                if w == 2 { cells[y * width + col + 1] = Cell(text: "", style: style) }
            }
            col += w
        }
        return col
    }

    /// The canvas as plain text, one line per row, trailing spaces trimmed (for golden files and tests).
    public func text() -> String {
        (0..<height).map { row in
            var line = ""
            for col in 0..<width { line += cells[row * width + col].text }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }
}
