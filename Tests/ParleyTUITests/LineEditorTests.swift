import Testing
@testable import ParleyTUI

@Suite struct LineEditorTests {
    func type(_ editor: inout LineEditor, _ text: String) {
        for c in text { _ = editor.handle(.char(c)) }
    }

    @Test func emacsMovementAndKilling() {
        var e = LineEditor(keymap: .emacs)
        type(&e, "hello brave world")
        _ = e.handle(.ctrl("a"))
        #expect(e.cursor == 0)
        _ = e.handle(.meta("f"))
        #expect(e.cursor == 5)
        _ = e.handle(.ctrl("k"))
        #expect(e.string == "hello")
        _ = e.handle(.ctrl("a"))
        _ = e.handle(.ctrl("y"))
        #expect(e.string == " brave worldhello")
        _ = e.handle(.ctrl("e"))
        _ = e.handle(.ctrl("w"))
        #expect(e.string == " brave ")
        _ = e.handle(.ctrl("u"))
        #expect(e.string == "")
    }

    @Test func emacsTransposeAndDelete() {
        var e = LineEditor(keymap: .emacs)
        type(&e, "ab")
        _ = e.handle(.ctrl("t"))
        #expect(e.string == "ba")
        _ = e.handle(.ctrl("b"))
        _ = e.handle(.ctrl("d"))
        #expect(e.string == "b")
        _ = e.handle(.backspace)
        #expect(e.string == "")
    }

    @Test func cursorStepsOverWholeClusters() {
        var e = LineEditor()
        type(&e, "a👨‍👩‍👧e\u{301}")
        #expect(e.text.count == 3)
        _ = e.handle(.left)
        _ = e.handle(.backspace)
        #expect(e.string == "ae\u{301}")
    }

    @Test func submitKeepsHistory() {
        var e = LineEditor()
        type(&e, "first")
        #expect(e.handle(.enter) == .submit("first"))
        type(&e, "second")
        #expect(e.handle(.enter) == .submit("second"))
        type(&e, "draft")
        _ = e.handle(.up)
        #expect(e.string == "second")
        _ = e.handle(.up)
        #expect(e.string == "first")
        _ = e.handle(.down)
        _ = e.handle(.down)
        #expect(e.string == "draft")
    }

    @Test func pasteKeepsNewlinesAndAltEnterAddsOne() {
        var e = LineEditor()
        _ = e.handle(.paste("line one\r\nline two"))
        #expect(e.string == "line one\nline two")
        _ = e.handle(.meta("\r"))
        type(&e, "three")
        #expect(e.handle(.enter) == .submit("line one\nline two\nthree"))
    }

    @Test func windowActionsGoToTheController() {
        var e = LineEditor()
        #expect(e.handle(.pageUp) == .window(.scrollUp))
        #expect(e.handle(.ctrl("n")) == .window(.nextWindow))
        #expect(e.handle(.tab) == .complete)
    }

    @Test func viNormalModeEditing() {
        var e = LineEditor(keymap: .vi)
        type(&e, "one two three")
        _ = e.handle(.escape)
        #expect(e.mode == .normal)
        _ = e.handle(.char("0"))
        #expect(e.cursor == 0)
        _ = e.handle(.char("w"))
        #expect(e.cursor == 4)
        _ = e.handle(.char("d"))
        _ = e.handle(.char("w"))
        #expect(e.string == "one  three")
        _ = e.handle(.char("x"))
        #expect(e.string == "one three")
        _ = e.handle(.char("$"))
        _ = e.handle(.char("a"))
        #expect(e.mode == .insert)
        type(&e, "!")
        #expect(e.string == "one three!")
        _ = e.handle(.escape)
        _ = e.handle(.char("d"))
        _ = e.handle(.char("d"))
        #expect(e.string == "")
        _ = e.handle(.char("p"))
        #expect(e.string == "one three!")
        _ = e.handle(.char("A"))
        #expect(e.handle(.enter) == .submit("one three!"))
        #expect(e.mode == .insert)
    }

    @Test func viHistoryWithJK() {
        var e = LineEditor(keymap: .vi)
        type(&e, "old")
        _ = e.handle(.enter)
        _ = e.handle(.escape)
        _ = e.handle(.char("k"))
        #expect(e.string == "old")
        _ = e.handle(.char("j"))
        #expect(e.string == "")
    }

    @Test func userBindingsOverrideDefaults() {
        var e = LineEditor(keymap: .emacs, overrides: [.ctrl("o"): .nextWindow, .ctrl("a"): .endOfLine])
        #expect(e.handle(.ctrl("o")) == .window(.nextWindow))
        type(&e, "ab")
        _ = e.handle(.left)
        _ = e.handle(.left)
        _ = e.handle(.ctrl("a"))
        #expect(e.cursor == 2)
    }

    @Test func completionOfCommandsAndContacts() {
        var e = LineEditor()
        type(&e, "/ver")
        let left = e.complete(with: CommandTable.candidates(for: e.string, contacts: [], themes: []))
        #expect(left.isEmpty)
        #expect(e.string == "/verify ")
        type(&e, "b")
        let contacts = ["bob@127.0.0.1:7000", "bea@127.0.0.1:7000", "carol@127.0.0.1:7000"]
        let open = e.complete(with: CommandTable.candidates(for: e.string, contacts: contacts, themes: []))
        #expect(open == ["bob@127.0.0.1:7000", "bea@127.0.0.1:7000"])
        type(&e, "o")
        e.complete(with: CommandTable.candidates(for: e.string, contacts: contacts, themes: []))
        #expect(e.string == "/verify bob@127.0.0.1:7000 ")
    }
}
