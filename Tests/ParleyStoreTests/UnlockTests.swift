import Testing
import Foundation
import ParleyCrypto
import GRDB
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

@Suite struct UnlockTests {
    let directory = try! TemporaryDirectory("store")
    var path: String { directory.sub("parley.db") }

    private func walSize() -> Int { fileBytes(path + "-wal").count }

    @Test func rightPassphraseOpensWrongOneChangesNothing() throws {
        do {
            let store = try makeStore(path)
            try store.insertMessages([message("kept", 1)])
        }
        // The first handle is closed, so its WAL is checkpointed into the main file.
        let before = sha256(path), walBefore = walSize()
        #expect(walBefore == 0)

        #expect(throws: StoreError.wrongPassphrase) { try openStore(path, secret("Correct horse battery staple")) }
        #expect(throws: StoreError.wrongPassphrase) { try openStore(path, secret("")) }
        #expect(sha256(path) == before)
        #expect(walSize() == walBefore)

        #expect(try openStore(path).messages(with: "bob@relay.test").map(\.text) == ["kept"])
    }

    @Test func defaultKeyDerivationIsModerate() throws {
        _ = try EncryptedStore.create(at: path, unlock: [.passphrase(passphrase)])
        let (ops, mem) = try raw(path) { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT ops, mem FROM keyring WHERE kind = 'passphrase'"))
            return (row["ops"] as Int64, row["mem"] as Int64)
        }
        #expect(Argon2id.Parameters(opsLimit: UInt64(ops), memLimitBytes: Int(mem)) == .moderate)
    }

    @Test func keyFileIsCreatedOwnerOnlyAndUnlocks() throws {
        let keyFile = directory.sub("store.key")
        try KeyFile.create(at: keyFile)
        #expect(try fileMode(keyFile) == 0o600)
        #expect(String(decoding: fileBytes(keyFile), as: UTF8.self).wholeMatch(of: /[0-9a-f]{64}\n/) != nil)
        #expect(throws: StoreError.self) { try KeyFile.create(at: keyFile) }  // never overwrites

        do { try makeStore(path, unlock: [.keyFile(path: keyFile)]).insertMessages([message("bot", 1)]) }
        #expect(try EncryptedStore.open(at: path, unlock: .keyFile(path: keyFile)).messageCount() == 1)
        #expect(throws: StoreError.noUnlockMethod(kind: "passphrase")) { try openStore(path) }
    }

    @Test func wrongTooOpenOrGarbageKeyFileIsRefused() throws {
        let keyFile = directory.sub("store.key"), other = directory.sub("other.key")
        try KeyFile.create(at: keyFile)
        try KeyFile.create(at: other)
        _ = try makeStore(path, unlock: [.keyFile(path: keyFile)])

        #expect(throws: StoreError.wrongKeyFile(path: other)) { try EncryptedStore.open(at: path, unlock: .keyFile(path: other)) }

        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: keyFile)
        #expect(throws: StoreError.keyFileTooOpen(path: keyFile, mode: "644")) {
            try EncryptedStore.open(at: path, unlock: .keyFile(path: keyFile))
        }

        let garbage = directory.sub("garbage.key")
        writeFile(garbage, Array(String(repeating: "zz", count: 32).utf8) + [0x0A])
        try FileManager.default.setAttributes([.posixPermissions: 0o600], ofItemAtPath: garbage)
        #expect(throws: StoreError.keyFileUnreadable(path: garbage, reason: "expected 64 hex digits")) {
            try EncryptedStore.open(at: path, unlock: .keyFile(path: garbage))
        }
        let missing = directory.sub("missing.key")
        let error = #expect(throws: StoreError.self) { try EncryptedStore.open(at: path, unlock: .keyFile(path: missing)) }
        #expect(error.map { if case .keyFileUnreadable(missing, _) = $0 { true } else { false } } == true)
    }

    @Test func storeWithPassphraseAndKeyFileOpensWithEither() throws {
        let keyFile = directory.sub("store.key")
        try KeyFile.create(at: keyFile)
        do {
            let store = try makeStore(path, unlock: [.passphrase(passphrase), .keyFile(path: keyFile)])
            try store.insertMessages([message("both", 1)])
            #expect(try store.unlockKinds() == ["keyfile", "passphrase"])
        }
        #expect(try openStore(path).messages(with: "bob@relay.test").map(\.text) == ["both"])
        #expect(try EncryptedStore.open(at: path, unlock: .keyFile(path: keyFile)).messages(with: "bob@relay.test").map(\.text) == ["both"])
    }

    @Test func changingThePassphraseReencryptsNothing() throws {
        let newPassphrase = secret("a completely different phrase")
        let cellsBefore: [String: [String]]
        do {
            let store = try makeStore(path)
            try store.insertMessages((1...20).map { message("message \($0)", $0) })
            cellsBefore = try dump(path, tables: ["messages", "conversations"])
            #expect(throws: StoreError.wrongPassphrase) {
                try store.setUnlockMethod(.passphrase(newPassphrase), current: .passphrase(secret("guess")), parameters: testParameters)
            }
            try store.setUnlockMethod(.passphrase(newPassphrase), current: .passphrase(passphrase), parameters: testParameters)
            #expect(try store.unlockKinds() == ["passphrase"])
            #expect(try dump(path, tables: ["messages", "conversations"]) == cellsBefore)
        }
        #expect(throws: StoreError.wrongPassphrase) { try openStore(path) }
        let reopened = try openStore(path, newPassphrase)
        #expect(try reopened.messages(with: "bob@relay.test").map(\.text) == (1...20).map { "message \($0)" })
        #expect(try dump(path, tables: ["messages", "conversations"]) == cellsBefore)
    }
}
