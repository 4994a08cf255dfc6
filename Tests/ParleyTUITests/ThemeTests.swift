import Foundation
import Testing
@testable import ParleyTUI

@Suite struct ThemeTests {
    let library = ThemeLibrary(directories: [ThemeLibrary.shippedDirectory])

    @Test func atLeastSixShippedThemesIncluding16ColourAndMono() throws {
        let names = library.names()
        #expect(names.count >= 6)
        let themes = try names.map { try library.load($0) }
        #expect(themes.contains { $0.colors == 16 })
        #expect(themes.contains { $0.colors == 0 })
    }

    /// Every shipped theme sets every key itself (no silent fallback), and a monochrome theme uses no colour.
    @Test func everyShippedThemeSetsEveryKey() throws {
        for name in library.names() {
            let text = try String(contentsOfFile: ThemeLibrary.shippedDirectory + "/\(name).theme", encoding: .utf8)
            let keys = Set(text.split(separator: "\n").compactMap { line -> String? in
                let t = line.trimmingCharacters(in: .whitespaces)
                guard !t.hasPrefix("#"), let eq = t.firstIndex(of: "=") else { return nil }
                return t[..<eq].trimmingCharacters(in: .whitespaces)
            })
            for key in ThemeKey.allCases { #expect(keys.contains(key.rawValue), "\(name) lacks \(key.rawValue)") }
            let theme = try library.load(name)
            if theme.colors == 0 {
                for key in ThemeKey.allCases {
                    #expect(theme[key].foreground == .terminalDefault && theme[key].background == .terminalDefault, "\(name): \(key.rawValue)")
                }
            }
            if theme.colors <= 16 {
                for key in ThemeKey.allCases {
                    for color in [theme[key].foreground, theme[key].background] {
                        if case .indexed(let n) = color { #expect(n < max(8, theme.colors), "\(name): \(key.rawValue)") }
                    }
                }
            }
        }
    }

    @Test func securityStatesLookDifferent() throws {
        for name in library.names() {
            let theme = try library.load(name)
            let states: [ThemeKey] = [.secVerified, .secUnverified, .secChanged, .secUntrusted]
            #expect(Set(states.map { "\(theme[$0])" }).count == states.count, "\(name): security states must differ")
        }
    }

    @Test func missingKeysFallBackAndUnknownKeysAreErrors() throws {
        let partial = try Theme.parse("name = mine\ntitle = red bold\n", name: "mine")
        #expect(partial[.title].foreground == .indexed(1) && partial[.title].bold)
        #expect(partial[.statusBar] == Theme.builtIn[.statusBar])
        #expect(throws: ThemeError.unknownKey("titel", line: 2)) { try Theme.parse("# c\ntitel = red\n", name: "x") }
        #expect(throws: ThemeError.badValue("purple")) { try Theme.parse("title = purple", name: "x") }
        #expect(throws: ThemeError.badLine(1)) { try Theme.parse("title red", name: "x") }
        let parsed = try Theme.parse("roster.selected = bright-white on color236 underline", name: "x")
        #expect(parsed[.rosterSelected].foreground == .indexed(15))
        #expect(parsed[.rosterSelected].background == .indexed(236))
        #expect(parsed[.rosterSelected].underline)
    }

    @Test func userThemesShadowShippedOnes() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("parley-theme-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "title = red".write(toFile: dir + "/mono.theme", atomically: true, encoding: .utf8)
        try "title = blue".write(toFile: dir + "/mine.theme", atomically: true, encoding: .utf8)
        let lib = ThemeLibrary(directories: [dir, ThemeLibrary.shippedDirectory])
        #expect(try lib.load("mono")[.title].foreground == .indexed(1))
        #expect(lib.names().contains("mine"))
        #expect(throws: ThemeError.notFound("../x")) { try lib.load("../x") }
    }

    @Test func everyKeyIsDocumented() throws {
        let root = URL(fileURLWithPath: ThemeLibrary.shippedDirectory).deletingLastPathComponent()
        let readme = try String(contentsOf: root.appendingPathComponent("themes/README.md"), encoding: .utf8)
        let man = try String(contentsOf: root.appendingPathComponent("man/parley-themes.5"), encoding: .utf8)
        for key in ThemeKey.allCases {
            #expect(readme.contains("`\(key.rawValue)`"), "README lacks \(key.rawValue)")
            #expect(man.contains(key.rawValue.replacingOccurrences(of: "-", with: "\\-")), "parley-themes(5) lacks \(key.rawValue)")
        }
    }
}
