import Foundation
import ParleyClient
import ParleyStore
import Testing

/// What a failed init, link or restore leaves behind: only what was there before it.
@Suite("Making a new home")
struct NewHomeTests {
    struct Failed: Error {}

    @Test("a failure removes the store, the key file and the home directory this run made")
    func removesWhatItMade() async throws {
        let directory = try TemporaryDirectory()
        let home = ParleyHome(path: directory.sub("new"))
        await #expect(throws: Failed.self) {
            try await home.creating(keyFile: directory.sub("new.key")) {
                try home.create()
                _ = try EncryptedStore.create(at: home.storePath, unlock: [.keyFile(path: directory.sub("new.key"))])
                throw Failed()
            }
        }
        #expect(!FileManager.default.fileExists(atPath: home.path))
        #expect(!FileManager.default.fileExists(atPath: directory.sub("new.key")))
    }

    @Test("what was there before stays: a directory with files, a key file, and a store another run created meanwhile")
    func keepsWhatWasThere() async throws {
        let directory = try TemporaryDirectory()
        let home = ParleyHome(path: directory.sub("documents"))
        try home.create()
        FileManager.default.createFile(atPath: directory.sub("documents/keep.txt"), contents: Data("mine".utf8))
        try KeyFile.create(at: directory.sub("mine.key"))
        // Another command created the store after this one checked that there was none.
        let theirs = try EncryptedStore.create(at: home.storePath, unlock: [.keyFile(path: directory.sub("mine.key"))])
        _ = theirs
        await #expect(throws: StoreError.self) {
            try await home.creating(keyFile: directory.sub("mine.key")) {
                _ = try EncryptedStore.create(at: home.storePath, unlock: [.keyFile(path: directory.sub("mine.key"))])
            }
        }
        #expect(FileManager.default.fileExists(atPath: home.storePath), "the other run's store stays")
        #expect(FileManager.default.contents(atPath: directory.sub("documents/keep.txt")) == Data("mine".utf8))
        #expect(FileManager.default.fileExists(atPath: directory.sub("mine.key")))
    }

    @Test("keep: a failure after the point of no return leaves everything")
    func keepsWhenAsked() async throws {
        let directory = try TemporaryDirectory()
        let home = ParleyHome(path: directory.sub("kept"))
        await #expect(throws: Failed.self) {
            try await home.creating(keyFile: directory.sub("kept.key"), keep: { true }) {
                try home.create()
                _ = try EncryptedStore.create(at: home.storePath, unlock: [.keyFile(path: directory.sub("kept.key"))])
                throw Failed()
            }
        }
        #expect(FileManager.default.fileExists(atPath: home.storePath))
        #expect(FileManager.default.fileExists(atPath: directory.sub("kept.key")))
    }
}
