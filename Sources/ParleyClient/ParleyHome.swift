import ParleyProtocol
import Foundation
import ParleyCrypto
import ParleyRelayAPI
import ParleyStore

/// A device's home directory: the encrypted store and attachments. Several homes side by side are several
/// accounts on one machine.
public struct ParleyHome: Sendable {
    public let path: String
    public var storePath: String { path + "/parley.db" }

    /// `--home`, else `$PARLEY_HOME`, else `$XDG_DATA_HOME/parley`, else `~/.local/share/parley`.
    public static func resolve(_ option: String?, environment: [String: String] = ProcessInfo.processInfo.environment) -> ParleyHome {
        if let option { return ParleyHome(path: option) }
        if let home = environment["PARLEY_HOME"], !home.isEmpty { return ParleyHome(path: home) }
        if let data = environment["XDG_DATA_HOME"], !data.isEmpty { return ParleyHome(path: data + "/parley") }
        return ParleyHome(path: (environment["HOME"] ?? NSHomeDirectory()) + "/.local/share/parley")
    }

    public init(path: String) {
        self.path = path.hasSuffix("/") && path.count > 1 ? String(path.dropLast()) : path
    }

    public var exists: Bool { FileManager.default.fileExists(atPath: storePath) }

    /// Creates the directory with mode 0700, or closes an existing one of the user's to 0700 (see
    /// `PrivateDirectory.makeHome`).
    public func create() throws(ClientError) {
        try PrivateDirectory.makeHome(path)
    }

    // Settings names for the relay connection, chosen at `parley init`.
    static let tlsSetting = "relay.tls"
    static let insecureSetting = "relay.insecure"
    static let caSetting = "relay.ca-file"

    /// Saves how to reach the relay, so later commands need no flags.
    public static func saveRelayOptions(_ store: EncryptedStore, tls: Bool?, insecure: Bool, caFile: String?) throws {
        try store.setSetting(tlsSetting, tls.map { $0 ? "on" : "off" })
        try store.setSetting(insecureSetting, insecure ? "on" : nil)
        try store.setSetting(caSetting, caFile)
    }

    /// The relay endpoint of this home's account, from the saved options and any override.
    public static func endpoint(for address: AccountAddress, store: EncryptedStore, insecureOverride: Bool = false) throws -> RelayEndpoint {
        let tls = try store.setting(tlsSetting).map { $0 == "on" }
        let savedInsecure = try store.setting(insecureSetting) == "on"
        let insecure = insecureOverride || savedInsecure
        return try RelayEndpoint(relay: address.relay, tls: tls, insecure: insecure, caFile: try store.setting(caSetting))
    }
}

extension ParleyHome {
    /// Making a new account home (init, link, backup import) in steps that can each fail: `creating`
    /// runs them and, on failure, removes exactly what this run made — the store, the home directory if it
    /// did not exist before (and only while empty), the key file if it did not exist before — and gives an
    /// existing home directory its mode back, so the next attempt starts over cleanly and nothing the user
    /// had is changed.
    ///
    /// `keep` is asked after a failure: true (the relay already holds the new account, say) keeps everything.
    public func creating<T>(keyFile: String?, keep: () -> Bool = { false },
                            _ body: () async throws -> T) async throws -> T {
        let homeExisted = FileManager.default.fileExists(atPath: path)
        var before = stat()
        let homeMode: mode_t? = homeExisted && stat(path, &before) == 0 ? before.st_mode & 0o7777 : nil
        var createdKeyFile: String?
        do {
            if let keyFile, !FileManager.default.fileExists(atPath: keyFile) {
                try KeyFile.create(at: keyFile)
                createdKeyFile = keyFile
            }
            return try await body()
        } catch {
            if keep() { throw error }
            // A store that was there when this run tried to create one is another run's (two commands racing
            // into one home): it stays.
            let storeIsOurs: Bool = if case StoreError.alreadyExists = error { false } else { true }
            if storeIsOurs {
                for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: storePath + suffix) }
            }
            if !homeExisted { rmdir(path) }
            if let homeMode { chmod(path, homeMode) }
            if let createdKeyFile { unlink(createdKeyFile) }
            throw error
        }
    }
}
