import Foundation

/// Where themes come from: the user's `$XDG_CONFIG_HOME/parley/themes/NAME.theme` first, then the
/// shipped ones ($PARLEY_THEMES, `../share/parley/themes` beside the binary, the source tree's themes/).
public struct ThemeLibrary: Sendable {
    public let directories: [String]

    public init(directories: [String]) { self.directories = directories }

    public static func standard(environment: [String: String] = ProcessInfo.processInfo.environment) -> ThemeLibrary {
        var dirs: [String] = []
        let config = environment["XDG_CONFIG_HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? ((environment["HOME"] ?? "") + "/.config")
        dirs.append(config + "/parley/themes")
        if let extra = environment["PARLEY_THEMES"], !extra.isEmpty { dirs.append(extra) }
        let exe = URL(fileURLWithPath: CommandLine.arguments.first ?? "").resolvingSymlinksInPath().deletingLastPathComponent()
        dirs.append(exe.appendingPathComponent("../share/parley/themes").standardized.path)
        dirs.append(shippedDirectory)
        return ThemeLibrary(directories: dirs)
    }

    /// The repository's themes/ directory (found from this source file, for builds run from the tree).
    public static var shippedDirectory: String {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../themes").standardized.path
    }

    /// Theme names available, sorted, without duplicates (a user theme shadows a shipped one).
    public func names() -> [String] {
        var seen = Set<String>()
        for dir in directories {
            for file in (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [] where file.hasSuffix(".theme") {
                seen.insert(String(file.dropLast(6)))
            }
        }
        return seen.sorted()
    }

    public func load(_ name: String) throws(ThemeError) -> Theme {
        guard !name.contains("/"), !name.isEmpty else { throw .notFound(name) }
        for dir in directories {
            let path = dir + "/" + name + ".theme"
            if let data = FileManager.default.contents(atPath: path) {
                return try Theme.parse(String(decoding: data, as: UTF8.self), name: name)
            }
        }
        throw .notFound(name)
    }
}
