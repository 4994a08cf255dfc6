import Foundation
import ParleyClient
import ParleyProtocol
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// The desktop's opener, for a link or a decrypted attachment: `xdg-open` (or macOS's `open`) when the
/// `opener` setting is "auto", else the command it names — words split at spaces, never given to a shell
/// — with the link or file as its one last argument.
public enum Opener {
    /// What "auto" looks for on PATH, in order.
    public static let automatic = ["xdg-open", "open"]

    /// The argument vector that opens `target`: the opener's path, its own words, then `target`. Only a
    /// link `Links.isOpenable` accepts or an absolute file path is ever a target (neither starts with '-',
    /// so neither can be read as an option).
    public static func argv(setting: String, target: String,
                            path: String? = ProcessInfo.processInfo.environment["PATH"]) -> Result<[String], ExternalProgram.Failure> {
        guard target.hasPrefix("/") || Links.isOpenable(target) else {
            return .failure(.init(description: "only http, https and mailto links and files are opened"))
        }
        let words = setting.split(separator: " ").map(String.init)
        if setting == "auto" || words.isEmpty {
            guard let program = automatic.lazy.compactMap({ ExternalProgram.locate($0, path: path) }).first else {
                return .failure(.init(description: "no opener: xdg-open is not on PATH (install xdg-utils, or set opener in config.toml)"))
            }
            return .success([program, target])
        }
        guard let program = ExternalProgram.locate(words[0], path: path) else {
            return .failure(.init(description: "the opener \(words[0]) is not on PATH (set opener in config.toml)"))
        }
        return .success([program] + words.dropFirst() + [target])
    }
}

/// Decrypted attachments handed to the opener: each in a directory of its own inside one private
/// directory of the session (mode 0700, under $XDG_RUNTIME_DIR when there is one, else the temporary
/// directory), written 0600 under the sender's file name neutralised (`Engine.attachmentDestination`:
/// `PeerText.forFileName`, the last path component only, no leading dots). The whole directory is removed
/// when the window closes; a viewer that still has a file open keeps reading it.
public final class OpenedFiles: @unchecked Sendable {
    private let lock = NSLock()
    private var directory: String?
    private var count = 0
    private let parent: String
    /// The files placed for each message (by its client message id), so that a message that disappears
    /// takes its copies with it.
    private var byMessage: [[UInt8]: [String]] = [:]

    public init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        let runtime = environment["XDG_RUNTIME_DIR"].flatMap { $0.hasPrefix("/") ? $0 : nil }
        parent = runtime ?? (environment["TMPDIR"].flatMap { $0.hasPrefix("/") ? $0 : nil } ?? "/tmp")
    }

    /// A new path for a file the sender called `fileName`, in a new 0700 directory; nothing is there yet.
    public func place(_ fileName: String, for message: [UInt8] = []) throws(ExternalProgram.Failure) -> String {
        lock.lock()
        defer { lock.unlock() }
        if directory == nil {
            var template = Array((parent + "/parley-open-XXXXXX").utf8CString)
            guard let made = mkdtemp(&template) else {
                throw .init(description: "cannot create a private directory in \(parent): \(String(cString: strerror(errno)))")
            }
            directory = String(cString: made)
        }
        count += 1
        let folder = directory! + "/\(count)"
        guard mkdir(folder, 0o700) == 0 else {
            throw .init(description: "cannot create \(folder): \(String(cString: strerror(errno)))")
        }
        let path = Engine.attachmentDestination(fileName: fileName, requested: folder, fallback: "attachment")
        byMessage[message, default: []].append(path)
        return path
    }

    /// Overwrites and removes the copies of these messages' attachments (they disappeared).
    public func erase(messages ids: [[UInt8]]) {
        lock.lock()
        defer { lock.unlock() }
        for id in ids {
            for path in byMessage.removeValue(forKey: id) ?? [] { SecureErase.file(at: path) }
        }
    }

    /// The session's private directory, once a file was placed.
    public var root: String? {
        lock.lock()
        defer { lock.unlock() }
        return directory
    }

    /// Removes every file placed (overwritten first: they are decrypted attachments) and the directory.
    public func removeAll() {
        lock.lock()
        defer { lock.unlock() }
        if let directory { SecureErase.directory(at: directory) }
        directory = nil
        byMessage = [:]
    }
}
