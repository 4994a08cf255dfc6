import Testing
@testable import ParleyTUI

@Suite struct DisplayWidthTests {
    @Test func asciiAndControls() {
        #expect(DisplayWidth.width("hello") == 5)
        #expect(DisplayWidth.width("\u{7}") == 0)
    }

    @Test func cjkIsTwoColumnsEach() {
        #expect(DisplayWidth.width("漢字") == 4)
        #expect(DisplayWidth.width("ｱ") == 1)  // half-width katakana
        #expect(DisplayWidth.width("한국어") == 6)
    }

    @Test func combiningMarksAddNothing() {
        let decomposed = "e\u{301}"
        #expect(decomposed.count == 1)
        #expect(DisplayWidth.width(decomposed) == 1)
        #expect(DisplayWidth.width("Z\u{351}\u{36B}\u{343}") == 1)
        #expect(DisplayWidth.width("\u{301}") == 1)  // a lone mark still takes a column
    }

    @Test func emojiClusters() {
        #expect(DisplayWidth.width("😀") == 2)
        #expect(DisplayWidth.width("👨‍👩‍👧") == 2)  // ZWJ family
        #expect(DisplayWidth.width("🇫🇷") == 2)  // flag: two regional indicators
        #expect(DisplayWidth.width("❤️") == 2)  // text heart + VS16
        #expect(DisplayWidth.width("👍🏽") == 2)  // skin-tone modifier
        #expect(DisplayWidth.width("a😀b") == 4)
    }

    @Test func drawableKeepsLayoutForZWJ() {
        let family: Character = "👨‍👩‍👧"
        #expect(DisplayWidth.drawable(family) == ["👨"])
        #expect(DisplayWidth.drawable("e\u{301}") == ["e", "\u{301}"])
        #expect(DisplayWidth.drawable("\u{1B}") == ["\u{FFFD}"])
    }

    @Test func wrapBreaksAtSpacesAndByWidth() {
        #expect(DisplayWidth.wrap("hello world foo", columns: 11) == ["hello ", "world foo"])
        #expect(DisplayWidth.wrap("abcdefgh", columns: 3) == ["abc", "def", "gh"])
        #expect(DisplayWidth.wrap("漢字漢字漢", columns: 4) == ["漢字", "漢字", "漢"])
        #expect(DisplayWidth.wrap("漢字漢", columns: 3) == ["漢", "字", "漢"])
        #expect(DisplayWidth.wrap("a\nb", columns: 10) == ["a", "b"])
        for line in DisplayWidth.wrap("😀😀😀 👨‍👩‍👧 🇫🇷🇫🇷 text", columns: 5) { #expect(DisplayWidth.width(line) <= 5) }
    }

    @Test func truncateAddsEllipsis() {
        #expect(DisplayWidth.truncate("abcdef", to: 4) == "abc…")
        #expect(DisplayWidth.truncate("漢字漢字", to: 5) == "漢字…")
        #expect(DisplayWidth.truncate("ab", to: 4) == "ab")
    }

    @Test func canvasPlacesWideClusters() {
        var canvas = Canvas(width: 6, height: 1)
        let end = canvas.put("a漢😀b", x: 0, y: 0, style: .base)
        #expect(end == 6)
        #expect(canvas[1, 0].text == "漢" && canvas[2, 0].text == "")
        #expect(canvas.text() == "a漢😀b")
        var narrow = Canvas(width: 2, height: 1)
        narrow.put("a漢", x: 0, y: 0, style: .base)  // 漢 would straddle the edge: left out
        #expect(narrow.text() == "a")
    }
}
