import Foundation
import Testing

/// parley(1)'s COMMANDS section against the argument parser's command tree (`parley --experimental-dump-help`):
/// every subcommand has an entry, every option of it is named in its entry (or, if every client command
/// takes it, under OPTIONS), and nothing is documented that the parser does not know.
@Suite("parley(1) documents the command tree")
struct ManPageCommandsTests {
    struct Command {
        let path: String
        let options: Set<String>
    }

    /// Every command path ("devices add") with its long options, from the parser. A group with a default
    /// subcommand also stands for it ("devices" lists the devices).
    static func tree() async throws -> [Command] {
        let directory = try TemporaryDirectory()
        let dump = try await run(try Binaries.path("parley"), ["--experimental-dump-help"], in: directory)
        let root = try #require(try JSONSerialization.jsonObject(with: Data(dump.stdout.utf8)) as? [String: Any])
        var out: [Command] = []
        func walk(_ command: [String: Any], _ path: [String]) {
            let options = (command["arguments"] as? [[String: Any]] ?? []).flatMap { argument in
                (argument["names"] as? [[String: Any]] ?? []).compactMap { $0["kind"] as? String == "long" ? "--" + ($0["name"] as? String ?? "") : nil }
            }
            let subcommands = command["subcommands"] as? [[String: Any]] ?? []
            if !path.isEmpty, subcommands.isEmpty || command["defaultSubcommand"] != nil {
                var all = Set(options)
                if let name = command["defaultSubcommand"] as? String,
                   let sub = subcommands.first(where: { $0["commandName"] as? String == name }) {
                    for argument in sub["arguments"] as? [[String: Any]] ?? [] {
                        for n in argument["names"] as? [[String: Any]] ?? [] where n["kind"] as? String == "long" { all.insert("--" + (n["name"] as? String ?? "")) }
                    }
                }
                out.append(Command(path: path.joined(separator: " "), options: all.subtracting(["--help", "--version"])))
            }
            for sub in subcommands {
                guard let name = sub["commandName"] as? String, name != "help" else { continue }
                if command["defaultSubcommand"] as? String == name, path.count > 0 { continue }
                walk(sub, path + [name])
            }
        }
        walk(try #require(root["command"] as? [String: Any]), [])
        return out
    }

    static let page: String = {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return (try? String(contentsOfFile: url.path + "/man/parley.1", encoding: .utf8)) ?? ""
    }()

    /// The lines of section `.SH name`.
    static func section(_ name: String) -> [Substring] {
        var inside = false
        var lines: [Substring] = []
        for line in page.split(separator: "\n", omittingEmptySubsequences: false) {
            if line.hasPrefix(".SH ") { inside = line == ".SH \(name)" } else if inside { lines.append(line) }
        }
        return lines
    }

    /// Text without roff: `\-` is '-', font changes and quotes go.
    static func plain(_ line: Substring) -> String {
        var text = String(line).replacingOccurrences(of: "\\-", with: "-")
        for escape in ["\\fB", "\\fR", "\\fI", "\\fP", "\""] { text = text.replacingOccurrences(of: escape, with: "") }
        if text.hasPrefix(".") { text = String(text.drop { $0 != " " }.dropFirst()) }
        return text
    }

    /// The COMMANDS entries: the command words of each `.TP` tag, and the options its entry names.
    static func entries() -> [(path: String, options: Set<String>)] {
        var out: [(path: String, options: Set<String>)] = []
        var lines = section("COMMANDS")[...]
        while let line = lines.popFirst() {
            guard line == ".TP", let tag = lines.popFirst() else { continue }
            let words = plain(tag).split(separator: " ").prefix { $0.allSatisfy { $0.isLowercase || $0 == "-" } && !$0.hasPrefix("-") }
            var body = [tag]
            while let next = lines.first, next != ".TP" { body.append(lines.removeFirst()) }
            let options = Set(body.flatMap { plain($0).matches(of: /--[a-z][a-z-]*[a-z]/).map { String($0.output) } })
            out.append((words.joined(separator: " "), options))
        }
        return out
    }

    @Test("every subcommand and option documented, nothing documented that does not exist")
    func commandsMatchTheParser() async throws {
        #expect(!Self.page.isEmpty, "man/parley.1 is missing")
        let tree = try await Self.tree()
        let entries = Self.entries().filter { !$0.path.isEmpty }
        let common = Set(Self.section("OPTIONS").flatMap { Self.plain($0).matches(of: /--[a-z][a-z-]*[a-z]/).map { String($0.output) } })
        #expect(common.contains("--home"), "the OPTIONS section lists the client options")
        for command in tree {
            guard let entry = entries.first(where: { $0.path == command.path }) else {
                Issue.record("parley \(command.path) has no entry in COMMANDS")
                continue
            }
            let missing = command.options.subtracting(entry.options).subtracting(common)
            #expect(missing.isEmpty, "parley \(command.path): \(missing.sorted()) not documented")
            let unknown = entry.options.subtracting(command.options).subtracting(common)
            #expect(unknown.isEmpty, "parley \(command.path): the entry names \(unknown.sorted()), which it does not take")
        }
        for entry in entries where !tree.contains(where: { $0.path == entry.path }) {
            Issue.record("COMMANDS documents `\(entry.path)`, which the parser does not know")
        }
    }
}
