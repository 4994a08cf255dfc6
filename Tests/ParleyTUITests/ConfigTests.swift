import Testing
@testable import ParleyTUI

@Suite struct ConfigTests {
    @Test func parsesEverySetting() throws {
        let config = try Config.parse("""
            # settings
            keymap = "vi"
            theme = "mono"   # comment after a value
            bell = false
            notify = "osc9"
            timestamps = false
            roster = true
            [bindings]
            "C-o" = "next-window"
            PageUp = "scroll-top"
            [contacts."bob@127.0.0.1:7000"]
            notify = "bell"
            """)
        #expect(config.keymap == .vi && config.theme == "mono" && !config.bell && config.desktop == .osc9 && !config.timestamps)
        #expect(config.bindings[.ctrl("o")] == .nextWindow)
        #expect(config.bindings[.pageUp] == .scrollTop)
        #expect(config.notifyMode(for: "bob@127.0.0.1:7000") == .bell)
        #expect(config.notifyMode(for: "other@h:1") == .on)
    }

    @Test func errorsNameTheLine() {
        #expect(throws: Config.ParseError(line: 2, message: "keymap is \"emacs\" or \"vi\"")) { try Config.parse("\nkeymap = \"ed\"") }
        #expect(throws: Config.ParseError(line: 1, message: "unknown setting 'colour'")) { try Config.parse("colour = \"x\"") }
        #expect(throws: Config.ParseError.self) { try Config.parse("[bindings]\n\"C-o\" = \"fly\"") }
        #expect(throws: Config.ParseError.self) { try Config.parse("bell = yes") }
    }

    @Test func keySpecs() {
        #expect(Key(spec: "C-a") == .ctrl("a"))
        #expect(Key(spec: "M-f") == .meta("f"))
        #expect(Key(spec: "F5") == .function(5))
        #expect(Key(spec: "Enter") == .enter)
        #expect(Key(spec: "j") == .char("j"))
        #expect(Key(spec: "C-") == nil)
    }
}

@Suite struct AnnouncementTests {
    @Test func bellAndDesktopNotificationPerContact() throws {
        var config = try Config.parse("notify = \"osc777\"\n[contacts.\"quiet@h:1\"]\nnotify = \"off\"\n[contacts.\"ding@h:1\"]\nnotify = \"bell\"")
        #expect(Announcement.decide(config, peer: "bob@h:1") == (true, "\u{1B}]777;notify;Parley;New message from bob@h:1\u{7}"))
        #expect(Announcement.decide(config, peer: "quiet@h:1") == (false, nil))
        #expect(Announcement.decide(config, peer: "ding@h:1") == (true, nil))
        config.desktop = .osc9
        config.bell = false
        #expect(Announcement.decide(config, peer: "bob@h:1") == (false, "\u{1B}]9;Parley: new message from bob@h:1\u{7}"))
        #expect(Announcement.decide(config, peer: "evil\u{7}\u{1B}]x;@h:1").escape == "\u{1B}]9;Parley: new message from evil]x@h:1\u{7}")
        #expect(Announcement.decide(Config(), peer: "bob@h:1") == (true, nil), "desktop notifications are off by default")
    }
}
