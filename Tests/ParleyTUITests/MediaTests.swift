import Foundation
import ParleyProtocol
@testable import ParleyStore
import Testing
@testable import ParleyTUI

/// Links, the opener, notify-send, kitty graphics and the attachment list: the argument vectors handed to
/// real programs (fake ones on PATH that write their argv to a file), and what the window draws.
@Suite struct MediaTests {
    // MARK: Links

    @Test func linksAreFoundWithTheirExactText() {
        func urls(_ text: String) -> [String] { Links.find(in: text).map(\.url) }
        #expect(urls("see https://example.com/a?b=1&c=2#x.") == ["https://example.com/a?b=1&c=2#x"])
        #expect(urls("(https://en.wikipedia.org/wiki/Swift_(language))") == ["https://en.wikipedia.org/wiki/Swift_(language)"])
        #expect(urls("[http://a.example/x], <https://b.example>") == ["http://a.example/x", "https://b.example"])
        #expect(urls("HTTPS://Example.COM/Path, mailto:bob@example.com!") == ["HTTPS://Example.COM/Path", "mailto:bob@example.com"])
        #expect(urls("\"https://quoted.example/\" and 'https://single.example'") == ["https://quoted.example/", "https://single.example"])
        #expect(urls("two:https://one.example https://two.example/漢字") == ["https://one.example", "https://two.example/漢字"])
        // Not links: another scheme, a scheme glued to a word, nothing after the scheme, mailto without an address.
        #expect(urls("javascript:alert(1) file:///etc/passwd ftp://x.example data:text/html,hi") == [])
        #expect(urls("xhttps://a.example svn+https://b.example a.https://c.example") == [])
        #expect(urls("https:// http://-x mailto: mailto:@x mailto:bob@") == [])
        // A control character or a direction override ends a link: none can be shown or opened inside one.
        #expect(urls("https://a.example/\u{1B}]0;title\u{07}") == ["https://a.example/"])
        #expect(urls("https://a.example/\u{202E}gpj.exe") == ["https://a.example/"])
        #expect(urls("https://a.example/x\u{200B}y") == ["https://a.example/x"])
        let link = Links.find(in: "ok https://a.b/c.").first
        #expect(link?.range == 3..<16)
        #expect(Links.isOpenable("https://a.b/c") && Links.isOpenable("mailto:a@b"))
        #expect(!Links.isOpenable("https://a.b/c d") && !Links.isOpenable(" https://a.b") && !Links.isOpenable("file:///x"))
    }

    /// Any text a peer sends: link ranges stay inside it, each link is openable as found, and the renderer's
    /// split of wrapped pieces into link and text runs gives back the pieces unchanged.
    @Test func linkFindingHoldsOnArbitraryText() {
        var generator = SystemRandomNumberGenerator()
        let alphabet: [String] = ["https://", "http://", "mailto:", "a@b", "(", ")", "[", "]", ".", ",", " ", "\n", "\r\n", "é", "e\u{301}",
                                  "漢", "👨‍👩‍👧", "\u{1B}", "\u{202E}", "\u{9B}", "x", "/", "?", "#", "'", "\"", "<", ">", "-", "+"]
        for _ in 0..<2000 {
            let text = (0..<Int.random(in: 0...30, using: &generator)).map { _ in alphabet.randomElement(using: &generator)! }.joined()
            let characters = Array(text)
            for link in Links.find(in: text) {
                #expect(link.range.lowerBound >= 0 && link.range.upperBound <= characters.count)
                #expect(String(characters[link.range]) == link.url && Links.isOpenable(link.url), "\(text.debugDescription)")
                #expect(!link.url.unicodeScalars.contains(where: PeerText.isDangerous))
            }
            let mask = ConversationPane.linkMask(text)
            var cursor = 0
            for piece in DisplayWidth.wrap(text, columns: 7) {
                let runs = ConversationPane.styled(piece, characters, mask, &cursor, base: .messageText)
                #expect(runs.map(\.0).joined() == piece)
            }
        }
    }

    // MARK: Fake programs

    /// A directory holding executables named `names` that write their argv, one argument per line and NUL
    /// after each, to `argv-NAME` beside them.
    func fakePrograms(_ names: [String]) throws -> String {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-fake-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        for name in names {
            let script = "#!/bin/sh\nfor a in \"$0\" \"$@\"; do printf '%s\\0' \"$a\"; done > \"\(directory)/argv-\(name).part\"\n"
                + "mv \"\(directory)/argv-\(name).part\" \"\(directory)/argv-\(name)\"\n"
            let path = directory + "/" + name
            FileManager.default.createFile(atPath: path, contents: Data(script.utf8), attributes: [.posixPermissions: 0o755])
        }
        return directory
    }

    func recorded(_ directory: String, _ name: String) -> [String]? {
        guard let data = FileManager.default.contents(atPath: directory + "/argv-" + name) else { return nil }
        return String(decoding: data, as: UTF8.self).split(separator: "\0", omittingEmptySubsequences: false).dropLast().map(String.init)
    }

    func runAndRecord(_ argv: [String], _ directory: String, _ name: String) throws -> [String]? {
        let status = ExternalProgram.wait(try ExternalProgram.start(argv))
        #expect(status == 0)
        return recorded(directory, name)
    }

    // MARK: Opener

    @Test func theOpenerGetsTheLinkAsOneArgumentWithoutAShell() throws {
        let bin = try fakePrograms(["xdg-open", "my-browser"])
        defer { try? FileManager.default.removeItem(atPath: bin) }
        let url = "https://example.com/a;touch${IFS}pwned$(id)|id&b=1"
        let argv = try Opener.argv(setting: "auto", target: url, path: "/nonexistent:" + bin).get()
        #expect(argv == [bin + "/xdg-open", url])
        #expect(try runAndRecord(argv, bin, "xdg-open") == [bin + "/xdg-open", url])
        #expect(!FileManager.default.fileExists(atPath: "pwned"))

        let custom = try Opener.argv(setting: "my-browser --new-tab", target: "mailto:bob@example.com", path: bin).get()
        #expect(custom == [bin + "/my-browser", "--new-tab", "mailto:bob@example.com"])
        #expect(try runAndRecord(custom, bin, "my-browser") == custom)

        // Only http, https and mailto links (whole) and absolute file paths are ever given to it.
        for refused in ["javascript:alert(1)", "file:///etc/passwd", "-x", "https://a.example/ b", "relative.txt"] {
            #expect(throws: ExternalProgram.Failure.self) { try Opener.argv(setting: "auto", target: refused, path: bin).get() }
        }
        #expect(throws: ExternalProgram.Failure.self) { try Opener.argv(setting: "auto", target: url, path: "/nonexistent").get() }
    }

    @Test func openedFilesArePrivateAndNamedHarmlessly() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("parley-opened-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let files = OpenedFiles(environment: ["XDG_RUNTIME_DIR": parent])
        let hostile = try files.place("../../.bashrc\u{1B}]0;x\u{07}\u{202E}gnp.exe")
        let root = try #require(files.root)
        #expect(hostile.hasPrefix(root + "/1/"))
        let name = (hostile as NSString).lastPathComponent
        #expect(name == "bashrc_]0;x__gnp.exe")
        #expect(!name.unicodeScalars.contains(where: PeerText.isDangerous))
        let second = try files.place("cat.png")
        #expect(second == root + "/2/cat.png")
        for directory in [root, root + "/1", root + "/2"] {
            #expect(try FileManager.default.attributesOfItem(atPath: directory)[.posixPermissions] as? Int == 0o700)
        }
        #expect(NewFile.create(at: second, holding: [1, 2, 3]) == nil)
        #expect(try FileManager.default.attributesOfItem(atPath: second)[.posixPermissions] as? Int == 0o600)
        files.removeAll()
        #expect(!FileManager.default.fileExists(atPath: root))
    }

    /// A message that disappears takes the private copies of its attachment with it, overwritten first
    /// (a hard link made beforehand shows the zeros); the copies of other messages stay.
    @Test func openedCopiesOfADisappearedMessageAreErased() throws {
        let parent = FileManager.default.temporaryDirectory.appendingPathComponent("parley-opened-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: parent) }
        let files = OpenedFiles(environment: ["XDG_RUNTIME_DIR": parent])
        let gone = [UInt8](repeating: 1, count: 16), kept = [UInt8](repeating: 2, count: 16)
        let photo = try files.place("photo.png", for: gone), notes = try files.place("notes.txt", for: kept)
        #expect(NewFile.create(at: photo, holding: Array("the photo's bytes".utf8)) == nil)
        #expect(NewFile.create(at: notes, holding: Array("notes".utf8)) == nil)
        let witness = parent + "/witness"
        #expect(link(photo, witness) == 0)
        files.erase(messages: [gone])
        #expect(!FileManager.default.fileExists(atPath: photo))
        #expect(FileManager.default.contents(atPath: witness) == Data(repeating: 0, count: 17))
        #expect(FileManager.default.contents(atPath: notes) == Data("notes".utf8))
        files.removeAll()
    }

    // MARK: notify-send

    @Test func notifySendNamesTheSenderAndHidesTheTextUnlessAskedTo() throws {
        let bin = try fakePrograms(["notify-send"])
        defer { try? FileManager.default.removeItem(atPath: bin) }
        let program = try #require(ExternalProgram.locate("notify-send", path: bin))
        let bob = "bob@127.0.0.1:7000", text = "secret <b>plans</b> & \u{1B}[2Jmore"
        var config = Config()
        let argv = try #require(DesktopNotification.argv(config, program: program, peer: bob, shown: "-Bob\u{1B}]0;x\u{07}", text: text))
        let seen = try #require(try runAndRecord(argv, bin, "notify-send"))
        #expect(seen == [program, "--app-name=Parley", "--category=im.received", "--", "Message from -Bob]0;x",
                         "New message (open Parley to read it)"])
        #expect(!seen.joined().contains("secret"))

        config.notifyText = true
        let shown = try #require(DesktopNotification.argv(config, program: program, peer: bob, shown: nil, text: text))
        #expect(shown.last == "secret &lt;b&gt;plans&lt;/b&gt; &amp; ^[[2Jmore")
        #expect(shown[4] == "Message from \(bob)")
        // Per contact as the bell and OSC escapes: bell only or off means no notification; so does notify_send off.
        config.contactNotify[bob] = .bell
        #expect(DesktopNotification.argv(config, program: program, peer: bob, shown: nil, text: text) == nil)
        config.contactNotify[bob] = .on
        config.notifySend = .off
        #expect(DesktopNotification.argv(config, program: program, peer: bob, shown: nil, text: text) == nil)
        #expect(DesktopNotification.argv(Config(), program: nil, peer: bob, shown: nil, text: text) == nil)
    }

    @Test func notificationSettingsComeFromConfigToml() throws {
        let config = try Config.parse("notify_send = \"off\"\nnotify_text = true\nopener = \"firefox --new-tab\"\ninline_images = \"kitty\"")
        #expect(config.notifySend == .off && config.notifyText && config.opener == "firefox --new-tab" && config.inlineImages == .kitty)
        #expect(Config().notifySend == .auto && !Config().notifyText && Config().opener == "auto" && Config().inlineImages == .off)
        #expect(throws: Config.ParseError.self) { try Config.parse("inline_images = \"sixel\"") }
    }

    // MARK: Kitty graphics

    func png(width: UInt32, height: UInt32, padding: Int = 0) -> [UInt8] {
        func be(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }
        return KittyGraphics.signature + [0, 0, 0, 13] + Array("IHDR".utf8) + be(width) + be(height) + [8, 6, 0, 0, 0]
            + [UInt8](repeating: 0xAB, count: padding)
    }

    @Test func kittyEscapesCarryThePNGInChunks() throws {
        let image = png(width: 64, height: 32, padding: 5000)
        let escapes = try #require(KittyGraphics.escapes(png: image, columns: 20, rows: 5))
        let encoded = Data(image).base64EncodedString()
        #expect(escapes.count == (encoded.count + 4095) / 4096)
        #expect(escapes[0].hasPrefix("\u{1B}_Ga=T,f=100,q=2,c=20,r=5,m=1;"))
        #expect(escapes[1].hasPrefix("\u{1B}_Gm=0;"))
        #expect(escapes.allSatisfy { $0.hasSuffix("\u{1B}\\") })
        let payload = escapes.map { $0[$0.index(after: $0.firstIndex(of: ";")!)...].dropLast(2) }.joined()
        #expect(payload == encoded)
        #expect(escapes.dropLast().allSatisfy { $0.split(separator: ";")[1].count - 2 == 4096 })

        let tmux = try #require(KittyGraphics.escapes(png: png(width: 1, height: 1), columns: 1, rows: 1, insideTmux: true))
        #expect(tmux.count == 1 && tmux[0].hasPrefix("\u{1B}Ptmux;\u{1B}\u{1B}_Ga=T") && tmux[0].hasSuffix("\u{1B}\u{1B}\\\u{1B}\\"))

        // Not a PNG, a header claiming absurd sizes, too many bytes: nothing is sent.
        #expect(KittyGraphics.escapes(png: Array("GIF89a".utf8) + [UInt8](repeating: 0, count: 40), columns: 1, rows: 1) == nil)
        #expect(KittyGraphics.escapes(png: png(width: 0, height: 5), columns: 1, rows: 1) == nil)
        #expect(KittyGraphics.escapes(png: png(width: 100_000, height: 5), columns: 1, rows: 1) == nil)
        #expect(KittyGraphics.escapes(png: png(width: 5, height: 5, padding: KittyGraphics.maxBytes), columns: 1, rows: 1) == nil)
        #expect(KittyGraphics.escapes(png: Array(png(width: 5, height: 5).prefix(20)), columns: 1, rows: 1) == nil)
    }

    @Test func inlineImagesAreOffInsideTmuxUnlessAskedFor() {
        #expect(!InlineImages.off.usesKitty(environment: ["TERM": "xterm-kitty"]))
        #expect(InlineImages.auto.usesKitty(environment: ["TERM": "xterm-kitty"]))
        #expect(InlineImages.auto.usesKitty(environment: ["TERM_PROGRAM": "WezTerm"]))
        #expect(!InlineImages.auto.usesKitty(environment: ["TERM": "xterm-kitty", "TMUX": "/tmp/tmux-1/default,1,0"]))
        #expect(!InlineImages.auto.usesKitty(environment: ["TERM": "xterm-256color"]))
        #expect(InlineImages.kitty.usesKitty(environment: ["TMUX": "/tmp/tmux-1/default,1,0"]))
    }

    // MARK: Attachments

    /// A store's paging, in memory: the newest `limit` before `before`, oldest first.
    struct PagedHistory: HistorySource {
        let records: [MessageRecord]
        func messages(in conversation: ConversationId, before: Int64?, limit: Int) throws -> [MessageRecord] {
            Array(records.filter { $0.id < (before ?? .max) }.suffix(limit))
        }
    }

    func record(_ n: Int, in conversation: ConversationId, file: String? = nil) throws -> MessageRecord {
        let pointer = file.map {
            AttachmentPointer(id: String(repeating: "a", count: 64), key: [UInt8](repeating: 1, count: 32), size: UInt64(1000 * n),
                              digest: [UInt8](repeating: 2, count: 32), fileName: $0, contentType: "application/octet-stream")
        }
        var record = MessageRecord(conversation: conversation, direction: .incoming, sender: DeviceAddress(address: "bob@127.0.0.1:7000", deviceId: 1),
                                   clientMessageId: [UInt8(n & 0xFF), UInt8(n >> 8)], sentAt: 1_700_000_000_000 + UInt64(n) * 1000,
                                   receivedAt: 0, text: "m\(n)", state: .received, attachment: pointer)
        record.id = Int64(n)
        return record
    }

    /// /save N, /open N and /attachments count every attachment of the conversation, not only the page loaded.
    @Test func everyAttachmentOfALongConversationIsCounted() throws {
        let conversation = dm("bob@127.0.0.1:7000")
        let files = [3: "first.pdf", 250: "second.png", 449: "newest.txt"]
        let history = PagedHistory(records: try (1...450).map { try record($0, in: conversation, file: files[$0]) })
        let all = try History.attachments(of: conversation, from: history)
        #expect(all.map { $0.attachment!.name } == ["first.pdf", "second.png", "newest.txt"])
        let oldest = try SaveTarget.resolve(["3", "/tmp/x"], in: all).get()
        #expect(oldest.message.attachment?.name == "first.pdf" && oldest.path == "/tmp/x")
        #expect(try SaveTarget.resolve(["2"], in: all).get().message.attachment?.name == "second.png")

        let lines = AttachmentList.lines(all, shownName: { $0 == "bob@127.0.0.1:7000" ? "Bob" : $0 }, timeZone: TimeZone(identifier: "UTC")!)
        #expect(lines == ["  1  438 KB  newest.txt  (from Bob, 2023-11-14 22:20)",
                          "  2  244 KB  second.png  (from Bob, 2023-11-14 22:17)",
                          "  3  2 KB    first.pdf  (from Bob, 2023-11-14 22:13)"])
    }
}

/// The new elements on screen: links underlined in the theme's link colour, an image's placeholder line
/// and a file's line with the numbers /save and /open take.
@Suite struct MediaScreenTests {
    let bob = "bob@127.0.0.1:7000", me = "alice@127.0.0.1:7000"
    let day1: UInt64 = 1_700_000_000_000

    func state() -> AppState {
        var s = AppState(account: me)
        s.connection = .connected
        s.ensureRosterEntry(dm(bob), trust: .verified)
        s.focus(dm(bob))
        s.apply(message: chat(1, from: bob, in: bob, at: day1, text: "docs at https://example.com/guide_(v2). or mailto:bob@example.com"))
        var file = chat(2, from: bob, in: bob, at: day1 + 60_000, text: "")
        file.attachment = ("notes\u{1B}[2J.txt", 1536)
        s.apply(message: file)
        var image = chat(3, from: me, in: bob, direction: .outgoing, at: day1 + 120_000, text: "the cat, see http://cats.example/a-very-long-path-that-wraps-over-the-line-end", state: .delivered)
        image.attachment = ("cat.png", 120 * 1024)
        s.apply(message: image)
        s.conversations[dm(bob)]?.reachedStart = true
        return s
    }

    /// One letter per cell: L a link, T message text, space anything else.
    func styleMask(_ canvas: Canvas) -> String {
        (0..<canvas.height).map { y in
            var line = ""
            for x in 0..<canvas.width where canvas[x, y].text != "" {
                line += canvas[x, y].style == .link ? "L" : canvas[x, y].style == .messageText ? "T" : " "
            }
            while line.hasSuffix(" ") { line.removeLast() }
            return line
        }.joined(separator: "\n")
    }

    @Test func linksAndAttachmentsOnScreen() throws {
        let canvas = Renderer(timeZone: TimeZone(identifier: "UTC")!).render(state(), editor: LineEditor(), width: 100, height: 12, now: day1)
        let golden = RendererTests()
        try golden.golden("media-100x12", canvas.text())
        try golden.golden("media-100x12-styles", styleMask(canvas))
        let text = canvas.text()
        #expect(text.contains("[image: cat.png 120 KB — /open 1]"))
        #expect(text.contains("📎 notes^[[2J.txt (1 KB) — /save 2, /open 2"))
    }

    func words(_ style: ThemeStyle) -> String {
        func color(_ c: ThemeColor) -> String {
            switch c {
            case .terminalDefault: "default"
            case .indexed(let n): "color\(n)"
            }
        }
        let flags = [("bold", style.bold), ("dim", style.dim), ("underline", style.underline), ("reverse", style.reverse), ("italic", style.italic)]
        return ([color(style.foreground), "on", color(style.background)] + flags.filter(\.1).map(\.0)).joined(separator: " ")
    }

    /// Every shipped theme gives links a look of their own, unlike the message text around them.
    @Test func everyThemeDrawsLinksApart() throws {
        let library = ThemeLibrary(directories: [ThemeLibrary.shippedDirectory])
        var lines: [String] = []
        for name in library.names() {
            let theme = try library.load(name)
            #expect(theme[.link] != theme[.messageText], "\(name): links look like text")
            lines.append("\(name): conversation.link = \(words(theme[.link])); conversation.text = \(words(theme[.messageText]))")
        }
        try RendererTests().golden("media-link-styles", lines.joined(separator: "\n"))
    }

    /// With inline images on, a PNG gets blank rows under its message and a placement there, only while
    /// all of them are on screen; the drawer sends each image once and re-places them only when they move.
    @Test func inlineImagesGetRowsAndArePlacedOnce() throws {
        var s = state()
        s.imageRows = 4
        let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)
        let canvas = renderer.render(s, editor: LineEditor(), width: 100, height: 16, now: day1)
        try RendererTests().golden("media-inline-100x16", canvas.text())
        let key = ImageKey(sender: me, clientMessageId: [3, 0])
        #expect(canvas.images == [ImagePlacement(key: key, x: 38, y: 10, columns: 61, rows: 4)])
        // Scrolled so that the image's last rows are below the pane: no placement.
        s.conversations[dm(bob)]?.scroll = 4
        #expect(renderer.render(s, editor: LineEditor(), width: 100, height: 16, now: day1).images == [])

        var drawer = InlineImageDrawer(insideTmux: false)
        let first = drawer.frame(canvas.images)
        #expect(first.escapes == "" && first.wanted == [key])
        #expect(drawer.frame(canvas.images).wanted == [], "asked for once")
        let png = MediaTests().png(width: 200, height: 100, padding: 10)
        let accepted = drawer.received(key, png)
        #expect(accepted)
        let drawn = drawer.frame(canvas.images).escapes
        #expect(drawn.hasPrefix("\u{1B}_Ga=t,f=100,i=1,q=2,m=0;" + Data(png).base64EncodedString() + "\u{1B}\\"))
        #expect(drawn.hasSuffix("\u{1B}7\u{1B}[11;39H\u{1B}_Ga=p,i=1,c=16,r=4,C=1,q=2\u{1B}\\\u{1B}8"))
        #expect(drawer.frame(canvas.images).escapes == "", "nothing changed, nothing written")
        let moved = [ImagePlacement(key: key, x: 38, y: 5, columns: 61, rows: 4)]
        #expect(drawer.frame(moved).escapes == "\u{1B}_Ga=d,d=a,q=2\u{1B}\\\u{1B}7\u{1B}[6;39H\u{1B}_Ga=p,i=1,c=16,r=4,C=1,q=2\u{1B}\\\u{1B}8")
        #expect(drawer.frame([]).escapes == "\u{1B}_Ga=d,d=a,q=2\u{1B}\\")
        // A file that is not a PNG is refused and never asked for again.
        let other = ImageKey(sender: bob, clientMessageId: [9])
        _ = drawer.frame([ImagePlacement(key: other, x: 1, y: 1, columns: 5, rows: 2)])
        let refused = drawer.received(other, Array("not a png at all, just text".utf8))
        #expect(!refused)
        let again = drawer.frame([ImagePlacement(key: other, x: 1, y: 1, columns: 5, rows: 2)])
        #expect(again.escapes == "" && again.wanted == [])
        #expect(KittyGraphics.cells(width: 1000, height: 100, columns: 30, rows: 4) == (30, 2))
    }
}
