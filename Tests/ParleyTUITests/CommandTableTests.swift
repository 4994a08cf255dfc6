import Foundation
import Testing
@testable import ParleyTUI

@Suite struct CommandTableTests {
    @Test func namesAndAliasesAreUnique() {
        let names = CommandTable.all.flatMap { [$0.name] + $0.aliases }
        #expect(Set(names).count == names.count)
    }

    @Test func theIssuesCommandsExist() {
        for name in ["add", "msg", "verify", "trust", "devices", "search", "theme", "set", "quit", "help"] {
            #expect(CommandTable.find(name) != nil, "missing /\(name)")
        }
        #expect(CommandTable.find("exit")?.name == "quit")
    }

    @Test func helpListsEveryCommandWithItsSummary() {
        let help = CommandTable.helpLines()
        #expect(help.count == CommandTable.all.count)
        for (line, spec) in zip(help, CommandTable.all) {
            #expect(line.hasPrefix(spec.usage))
            #expect(line.hasSuffix(spec.summary))
        }
    }

    @Test func completionFollowsTheTable() {
        #expect(CommandTable.candidates(for: "/", contacts: [], themes: []).count == CommandTable.all.count)
        #expect(CommandTable.candidates(for: "/theme ", contacts: ["x@h:1"], themes: ["mono", "paper"]) == ["mono", "paper"])
        #expect(CommandTable.candidates(for: "/msg ", contacts: ["x@h:1"], themes: []) == ["x@h:1"])
        #expect(CommandTable.candidates(for: "/set ", contacts: [], themes: []) == CommandTable.settingNames)
        #expect(CommandTable.candidates(for: "/set keymap ", contacts: [], themes: []) == ["emacs", "vi"])
        #expect(CommandTable.candidates(for: "/quit ", contacts: ["x@h:1"], themes: []) == [])
        #expect(CommandTable.candidates(for: "/help ", contacts: [], themes: []).contains("verify"))
    }

    /// parley(1) carries the table's rendering verbatim: regenerate it with `parley help-commands --man`.
    @Test func manPageSectionMatchesTheTable() throws {
        let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../man/parley.1").standardized
        let text = try String(contentsOf: page, encoding: .utf8)
        #expect(text.contains(CommandTable.manSection()))
    }
}

@Suite struct FileCompletionTests {
    @Test func attachCompletesPaths() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("parley-complete-\(UUID())").path
        try FileManager.default.createDirectory(atPath: dir + "/photos", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try "x".write(toFile: dir + "/notes.txt", atomically: true, encoding: .utf8)
        #expect(CommandTable.candidates(for: "/attach \(dir)/", contacts: [], themes: []) == ["\(dir)/notes.txt", "\(dir)/photos/"])
        var editor = LineEditor()
        editor.set("/attach \(dir)/no")
        editor.complete(with: CommandTable.candidates(for: editor.string, contacts: [], themes: []))
        #expect(editor.string == "/attach \(dir)/notes.txt ")
    }
}

@Suite struct SettingTableTests {
    /// /set's help, its completion and its complaints come from the one table of keys.
    @Test func setIsDescribedByTheSettingsTable() throws {
        let set = try #require(CommandTable.find("set"))
        for setting in CommandTable.settings {
            #expect(set.help.contains("\(setting.name) (\(setting.values.joined(separator: "|")))"))
            #expect(CommandTable.candidates(for: "/set \(setting.name) ", contacts: [], themes: []) == setting.values)
        }
        #expect(CommandTable.settings.first { $0.name == "notify" }?.complaint == "notify is off, osc777 or osc9")
        #expect(CommandTable.settings.first { $0.name == "keymap" }?.complaint == "keymap is emacs or vi")
    }

    /// config.toml's loader takes exactly the table's keys, each value it lists, as `/set` shows it back.
    @Test func configFileReadsEveryKeyOfTheTable() throws {
        for setting in SettingSpec.all {
            #expect(setting.read(Config()) == setting.read(try Config.parse("")), "\(setting.name): the default")
            var isName = false
            if case .name = setting.kind { isName = true }
            let values = isName ? ["mono"] : setting.kind == .duration ? ["off", "30d", "12h"] : setting.values
            for value in values {
                let config = try Config.parse("\(setting.name) = \(SettingSpec.inFile(value, setting.kind))")
                #expect(setting.read(config) == value, "\(setting.name) = \(value)")
            }
            if !isName {
                #expect(throws: Config.ParseError(line: 1, message: setting.fileComplaint)) {
                    try Config.parse("\(setting.name) = \(SettingSpec.inFile("nonsense", setting.kind == .flag ? .choice([]) : setting.kind))")
                }
            }
        }
    }

    /// `/set bell maybe` changed nothing it could not name: a flag takes on or off (true or false), and
    /// any other word is refused with the complaint, the setting unchanged.
    @Test func aFlagRefusesAWordItDoesNotTake() throws {
        for setting in SettingSpec.all where setting.kind == .flag {
            var config = Config()
            let before = setting.read(config)
            #expect(!setting.write(&config, "maybe"), "\(setting.name)")
            #expect(setting.read(config) == before)
            #expect(setting.write(&config, "off") && setting.read(config) == "off")
            #expect(setting.write(&config, "true") && setting.read(config) == "on")
        }
    }

    /// parley(5)'s SETTINGS section is the table's rendering: regenerate it with `parley help-commands --settings`.
    @Test func manPageSettingsMatchTheTable() throws {
        let page = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../man/parley.5").standardized
        let text = try String(contentsOf: page, encoding: .utf8)
        #expect(text.contains(SettingSpec.manSection()))
        // Every key the page documents is in the table (none left over from an earlier hand-written list).
        let section = text.components(separatedBy: ".SH SETTINGS\n").last?.components(separatedBy: "\n.SH ").first ?? ""
        let documented = section.split(separator: "\n").filter { $0.hasPrefix(".B ") }.map { $0.dropFirst(3).split(separator: " ").first.map(String.init) ?? "" }
        #expect(documented == SettingSpec.all.map(\.name))
    }
}
