import Foundation
import ParleyStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The store, its -wal and -shm files and the home directory are the user's alone (issue #19, item 8).
@Suite("End to end: file modes of a home")
struct EndToEndFileModeTests {
    private func mode(_ path: String) -> mode_t? {
        var info = stat()
        return lstat(path, &info) == 0 ? info.st_mode & 0o777 : nil
    }

    @Test("init into an existing empty 0755 directory: the directory becomes 0700, the store and its -wal and -shm 0600")
    func initIntoOpenDirectory() async throws {
        try await withRelay { relay, directory in
            let parley = try Binaries.path("parley")
            let home = directory.sub("made-by-mkdir")
            mkdir(home, 0o755)
            chmod(home, 0o755)
            func cli(_ arguments: [String]) async throws -> ProcessResult {
                try await run(parley, arguments + ["--home", home, "--key-file", home + ".key"], in: directory)
            }
            // Under the usual umask (022) SQLite alone makes the store 0644. (The umask is not changed here:
            // it is the whole test process's, and other tests run alongside.)
            var result = try await cli(["init", "alice@\(relay.name)"])
            #expect(result.status == 0, "\(result.summary)")
            #expect(mode(home) == 0o700)
            #expect(mode(home + "/parley.db") == 0o600)
            // -wal and -shm exist while the store is open (SQLite removes them at the last close).
            do {
                let store = try EncryptedStore.open(at: home + "/parley.db", unlock: .keyFile(path: home + ".key"))
                try store.setSetting("test.mode-check", "written")
                #expect(mode(home + "/parley.db-wal") == 0o600)
                #expect(mode(home + "/parley.db-shm") == 0o600)
            }

            // A store left 0644 by an older version is narrowed when it is next opened.
            chmod(home + "/parley.db", 0o644)
            result = try await cli(["contacts"])
            #expect(result.status == 0, "\(result.summary)")
            #expect(mode(home + "/parley.db") == 0o600)
        }
    }

    @Test("init into a 0755 directory that holds files closes it to 0700 and keeps them; a directory anyone may write to is refused, and nothing is created")
    func initIntoUsedOrSharedDirectory() async throws {
        try await withRelay { relay, directory in
            let parley = try Binaries.path("parley")
            let used = directory.sub("documents"), shared = directory.sub("shared")
            for (path, mode) in [(used, mode_t(0o755)), (shared, mode_t(0o777))] {
                mkdir(path, 0o700)
                chmod(path, mode)
                FileManager.default.createFile(atPath: path + "/notes.txt", contents: Data("mine".utf8))
            }
            var result = try await run(parley, ["init", "alice@\(relay.name)", "--home", used, "--key-file", used + ".key"], in: directory)
            #expect(result.status == 0, "\(result.summary)")
            #expect(mode(used) == 0o700 && mode(used + "/parley.db") == 0o600)
            #expect(FileManager.default.contents(atPath: used + "/notes.txt") == Data("mine".utf8))

            result = try await run(parley, ["init", "bob@\(relay.name)", "--home", shared, "--key-file", shared + ".key"], in: directory)
            #expect(result.status == 1, "\(result.summary)")
            #expect(result.stderr.contains("is shared (mode 777") && result.stderr.contains("--home"), "\(result.summary)")
            #expect(mode(shared) == 0o777)
            #expect(try FileManager.default.contentsOfDirectory(atPath: shared) == ["notes.txt"])
            #expect(!FileManager.default.fileExists(atPath: shared + ".key"), "the key file this run made is gone")
        }
    }
}
