import Foundation
import ParleyClient
import ParleyStore

/// Making a new account home (init, link, backup import) in steps that can each fail: `creatingHome`
/// runs them and, on failure, removes exactly what this run made — the store, the home directory if it
/// did not exist before (and only while empty), the key file if it did not exist before — so the next
/// attempt starts over cleanly and nothing the user had is touched.
///
/// `keep` is asked after a failure: true (the relay already holds the new account, say) keeps everything.
func creatingHome<T>(_ home: ParleyHome, keyFile: String?, keep: () -> Bool = { false },
                     _ body: () async throws -> T) async throws -> T {
    let homeExisted = FileManager.default.fileExists(atPath: home.path)
    var createdKeyFile: String?
    do {
        if let keyFile, !FileManager.default.fileExists(atPath: keyFile) {
            try KeyFile.create(at: keyFile)
            createdKeyFile = keyFile
        }
        return try await body()
    } catch {
        if keep() { throw error }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: home.storePath + suffix) }
        if !homeExisted { rmdir(home.path) }
        if let createdKeyFile { unlink(createdKeyFile) }
        throw error
    }
}
