import Testing
import Foundation
import ParleyCrypto
@testable import ParleyProtocol
@testable import ParleyStore

@Suite struct BackupTests {
    let world = StoreWorld()
    let backupPassphrase = secret("backup passphrase, written on paper")
    let newPassphrase = secret("the new device's passphrase")
    var backupPath: String { world.directory.sub("alice.parleybackup") }
    var restoredPath: String { world.directory.sub("restored.db") }

    /// Alice and Bob talk; Alice also knows Carol. Alice's history is filed, then exported.
    private func exportedAlice() async throws -> (alice: Device, bob: Device) {
        let alice = try world.device("alice@relay.test"), bob = try world.device("bob@relay.test")
        try world.introduce(alice, bob)
        var bobContact = try #require(try alice.store.contact("bob@relay.test"))
        bobContact.trust = .verified
        bobContact.displayName = "Bob (work)"
        try alice.store.saveContact(bobContact)
        try alice.store.saveContact(Contact(address: "carol@relay.test", account: known(makeAccount("carol@relay.test")),
                                            trust: .changed, displayName: "Carol"))
        for n in 1...6 {
            try await exchange("bob says \(n)", from: bob, to: alice, id: UInt8(n))
            try alice.store.insertMessages([MessageRecord(
                conversation: "bob@relay.test", direction: .outgoing, sender: alice.address,
                clientMessageId: [UInt8](repeating: UInt8(100 + n), count: 16), sentAt: 10 + UInt64(n), receivedAt: 10 + UInt64(n),
                text: "alice says \(n)", state: n.isMultiple(of: 2) ? .read : .delivered)])
        }
        for entry in try alice.store.inbox() { try alice.store.file(inboxEntry: entry.id, as: try record(of: entry.message)) }
        try alice.store.insertMessages([message("from carol", 1, peer: "carol@relay.test")])

        let summary = try Backup.export(alice.store, to: backupPath, passphrase: backupPassphrase, parameters: testParameters)
        #expect(summary == Backup.Summary(contacts: 2, messages: 13))
        #expect(try fileMode(backupPath) == 0o600)
        return (alice, bob)
    }

    private func restore(_ file: String? = nil, passphrase: SecretBytes? = nil) throws -> EncryptedStore {
        try Backup.restore(from: file ?? backupPath, passphrase: passphrase ?? backupPassphrase, into: restoredPath,
                           unlock: [.passphrase(newPassphrase)], parameters: testParameters, clock: world.clock).0
    }

    /// Each message as stored, without its store id.
    private func history(_ store: EncryptedStore) throws -> [String: [[UInt8]]] {
        var out: [String: [[UInt8]]] = [:]
        for conversation in try store.conversations() {
            out[conversation.description] = try store.messages(in: conversation).map { RecordCodec.encode($0) + [$0.state.rawValue] }
        }
        return out
    }

    @Test func restoreKeepsHistoryContactsAndAccountWithANewDevice() async throws {
        let (alice, _) = try await exportedAlice()
        let old = alice.account
        let restored = try restore()

        #expect(try history(restored) == history(alice.store))
        #expect(try history(restored).values.map(\.count).reduce(0, +) == 13)
        #expect(try restored.conversations() == alice.store.conversations())
        #expect(try restored.contacts() == alice.store.contacts())
        #expect(try restored.contact("bob@relay.test")?.trust == .verified)
        #expect(try restored.contact("carol@relay.test")?.trust == .changed)

        let account = try #require(try restored.localAccount())
        #expect(account.address == old.address)
        #expect(account.accountKey.publicKey == old.accountKey.publicKey)
        #expect(account.accountKey.seed.unprotectedBytes == old.accountKey.seed.unprotectedBytes)
        #expect(account.device.deviceId == old.device.deviceId)
        #expect(account.device.publicKey != old.device.publicKey)
        #expect(account.deviceList.version == old.deviceList.version + 1)
        let verified = try SignedDeviceList(verifying: account.deviceList.encoded)
        #expect(verified.accountKey == old.accountKey.publicKey)
        #expect(verified.device(old.device.deviceId)?.identityKey == account.device.publicKey)
        try old.deviceList.checkSuccessor(verified, address: old.address)
        try account.certificate.verify(now: world.clock.now)
        #expect(account.certificate.deviceKey == account.device.publicKey)

        // No ratchet state or prekey comes back.
        #expect(try restored.deviceIdsWithSessions(of: "bob@relay.test") == [])
        #expect(try restored.sessions(for: DeviceAddress(address: "bob@relay.test", deviceId: 1)).isEmpty)
        #expect(try dump(restoredPath, tables: ["sessions", "inbox", "outbox"]) == ["sessions": [], "inbox": [], "outbox": []])
        let oldKeys = try alice.store.preKeys(), newKeys = try restored.preKeys()
        #expect(!newKeys.oneTimePreKeys.isEmpty)
        let oldPublic = Set((oldKeys.signedPreKeys.values.map(\.publicKey.bytes) + oldKeys.oneTimePreKeys.values.map(\.publicKey.bytes)))
        let newPublic = Set((newKeys.signedPreKeys.values.map(\.publicKey.bytes) + newKeys.oneTimePreKeys.values.map(\.publicKey.bytes)))
        #expect(oldPublic.isDisjoint(with: newPublic))

        // The restored store is protected by the new passphrase only.
        _ = consume restored
        #expect(throws: StoreError.wrongPassphrase) { try openStore(restoredPath, backupPassphrase) }
        #expect(try openStore(restoredPath, newPassphrase).verify().rows["messages"] == 13)
    }

    @Test("exporting onto a directory fails and leaves the directory and its files; onto a file replaces it")
    func exportNeverRemovesADirectory() async throws {
        let (alice, _) = try await exportedAlice()
        let folder = backupPath + "-folder"
        try FileManager.default.createDirectory(atPath: folder + "/inside", withIntermediateDirectories: true)
        FileManager.default.createFile(atPath: folder + "/inside/keep.txt", contents: Data("mine".utf8))
        #expect(throws: StoreError.self) {
            try Backup.export(alice.store, to: folder, passphrase: backupPassphrase, parameters: testParameters)
        }
        #expect(FileManager.default.contents(atPath: folder + "/inside/keep.txt") == Data("mine".utf8))
        #expect(!fileExists(folder + ".tmp"), "no temporary file left")
        // An existing backup file is replaced.
        let before = try Data(contentsOf: URL(fileURLWithPath: backupPath))
        _ = try Backup.export(alice.store, to: backupPath, passphrase: backupPassphrase, parameters: testParameters)
        #expect(try Data(contentsOf: URL(fileURLWithPath: backupPath)) != before, "a fresh export (new salt and nonces)")
    }

    @Test func wrongBackupPassphraseIsRefused() async throws {
        _ = try await exportedAlice()
        #expect(throws: StoreError.wrongPassphrase) { try restore(passphrase: secret("not it")) }
        #expect(!fileExists(restoredPath))
    }

    @Test func truncatedBackupsAreRefused() async throws {
        _ = try await exportedAlice()
        let bytes = [UInt8](fileBytes(backupPath))
        let chunks = chunkStarts(bytes)
        #expect(chunks.count == 17)  // account, 2 contacts, 13 messages, end
        let finalChunk = try #require(chunks.last)
        let cuts: [Int] = [0, 5, 40, headerLength, headerLength + 2, chunks[1] - 1, chunks[1], chunks[chunks.count / 2] + 7,
                    finalChunk, finalChunk + 3, bytes.count - 1]
        let truncated = world.directory.sub("truncated")
        for cut in cuts {
            writeFile(truncated, bytes[..<cut])
            let error = #expect(throws: StoreError.self, "cut at \(cut) of \(bytes.count)") { try restore(truncated) }
            #expect(error?.isBackupInvalid == true, "cut at \(cut): \(String(describing: error))")
            #expect(!fileExists(restoredPath))
        }
    }

    @Test func alteredOrForeignFilesAreRefused() async throws {
        let (alice, _) = try await exportedAlice()
        let bytes = [UInt8](fileBytes(backupPath))
        let altered = world.directory.sub("altered")
        var inputs: [(String, [UInt8])] = []
        for offset in [bytes.count / 2, chunkStarts(bytes).last! + 10] {
            var flipped = bytes
            flipped[offset] ^= 0x20
            inputs.append(("byte \(offset) flipped", flipped))
        }
        inputs.append(("a chunk appended twice", bytes + bytes[chunkStarts(bytes)[3]..<chunkStarts(bytes)[4]]))
        inputs.append(("text", Array("PARLEY backup? no, a shopping list\n".utf8)))
        inputs.append(("store file", [UInt8](fileBytes(alice.path))))
        inputs.append(("empty", []))
        for (name, content) in inputs {
            writeFile(altered, content)
            let error = #expect(throws: StoreError.self, "\(name)") { try restore(altered) }
            #expect(error?.isBackupInvalid == true, "\(name): \(String(describing: error))")
        }
        let missing = #expect(throws: StoreError.self) { try restore(world.directory.sub("no such backup")) }
        #expect(missing?.isBackupInvalid == true)
        #expect(!fileExists(restoredPath))
    }

    @Test func storeWithoutAccountCannotBeExported() throws {
        let store = try makeStore(world.directory.sub("empty.db"))
        let error = #expect(throws: StoreError.self) {
            try Backup.export(store, to: backupPath, passphrase: backupPassphrase, parameters: testParameters)
        }
        #expect(error?.isBackupInvalid == true)
        #expect(!fileExists(backupPath))
    }

    @Test func sessionsReestablishAfterRestore() async throws {
        let (_, bob) = try await exportedAlice()
        let alice = world.attach(try restore())

        // Bob has not seen the new device list yet: the new device is refused, and nothing changes.
        let hello = try await alice.manager.send(textContent("I'm back", to: "bob@relay.test", id: 200), to: "bob@relay.test")
        #expect(hello.map(\.recipient) == [bob.address])
        await #expect(throws: ProtocolError.unknownDevice(address: "alice@relay.test", deviceId: 1)) {
            try await bob.manager.receive(hello[0].envelope)
        }
        #expect(try bob.store.deviceIdsWithSessions(of: "alice@relay.test") == [1])

        // Told the new list, Bob retires the old session and accepts the new device.
        try await bob.manager.updateDeviceList(alice.account.deviceList, for: "alice@relay.test")
        #expect(try bob.store.deviceIdsWithSessions(of: "alice@relay.test") == [])
        #expect(try bob.store.contact("alice@relay.test")?.account.deviceList == alice.account.deviceList)
        #expect(try record(of: try await bob.manager.receive(hello[0].envelope)).text == "I'm back")

        #expect(try record(of: try await exchange("welcome back", from: bob, to: alice, id: 201)).text == "welcome back")
        #expect(try record(of: try await exchange("thanks", from: alice, to: bob, id: 202)).text == "thanks")
        #expect(try record(of: try await exchange("bye", from: bob, to: alice, id: 203)).text == "bye")
        #expect(try alice.store.sessions(for: bob.address).active?.pendingPreKey == nil)
    }

    // MARK: Custodian backups (#25 item 3)

    @Test("a backup sealed to a custodian opens with the custodian's private key, and only with it")
    func custodianRoundTrip() async throws {
        let (alice, _) = try await exportedAlice()
        let keyFile = world.directory.sub("custodian.key"), publicFile = world.directory.sub("custodian.key.pub")
        let custodianPublic = try CustodianKey.generate(privateKeyFile: keyFile, publicKeyFile: publicFile)
        #expect(try fileMode(keyFile) == 0o600)
        #expect(try fileMode(publicFile) == 0o644)
        #expect(try CustodianKey.readPublic(publicFile) == custodianPublic)
        // One half is never taken for the other.
        #expect(throws: StoreError.self) { try CustodianKey.readPublic(keyFile) }
        #expect(throws: StoreError.self) { try CustodianKey.readPrivate(publicFile) }

        let summary = try Backup.export(alice.store, to: backupPath, sealedWith: .custodian(custodianPublic))
        #expect(summary == Backup.Summary(contacts: 2, messages: 13))
        let bytes = [UInt8](fileBytes(backupPath))
        #expect(Array(bytes[0..<10]) == Array("PARLEYBK".utf8) + [2, 2])
        #expect(Array(bytes[10..<42]) == custodianPublic.bytes)

        // A stranger's custodian key and a passphrase are refused, and nothing is written.
        let strangerFile = world.directory.sub("stranger.key")
        try CustodianKey.generate(privateKeyFile: strangerFile, publicKeyFile: strangerFile + ".pub")
        let wrong = #expect(throws: StoreError.self) {
            try Backup.restore(from: backupPath, openedWith: .custodian(try CustodianKey.readPrivate(strangerFile)), into: restoredPath,
                               unlock: [.passphrase(newPassphrase)], parameters: testParameters, clock: world.clock)
        }
        #expect(wrong?.description.contains("sealed to another custodian key") == true, "\(String(describing: wrong))")
        #expect(!fileExists(restoredPath))
        let byPassphrase = #expect(throws: StoreError.self) { try restore(passphrase: backupPassphrase) }
        #expect(byPassphrase?.description.contains("--custodian-key") == true)
        #expect(!fileExists(restoredPath))

        // The custodian's key restores everything.
        let restored = try Backup.restore(from: backupPath, openedWith: .custodian(try CustodianKey.readPrivate(keyFile)),
                                          into: restoredPath, unlock: [.passphrase(newPassphrase)],
                                          parameters: testParameters, clock: world.clock).0
        #expect(try history(restored) == history(alice.store))
        #expect(try restored.contacts() == alice.store.contacts())
    }

    @Test("a sealed key swapped for one sealed to the custodian by someone else is refused")
    func custodianHeaderTamperingIsRefused() async throws {
        let (alice, _) = try await exportedAlice()
        let keyFile = world.directory.sub("custodian.key")
        let custodianPublic = try CustodianKey.generate(privateKeyFile: keyFile, publicKeyFile: keyFile + ".pub")
        try Backup.export(alice.store, to: backupPath, sealedWith: .custodian(custodianPublic))
        var bytes = [UInt8](fileBytes(backupPath))
        // Another random key sealed to the same custodian: the box opens, the stream does not.
        bytes.replaceSubrange(42..<122, with: SealedBox.seal(SecretBytes.random(count: 32), to: custodianPublic))
        writeFile(backupPath, bytes)
        let error = #expect(throws: StoreError.self) {
            try Backup.restore(from: backupPath, openedWith: .custodian(try CustodianKey.readPrivate(keyFile)), into: restoredPath,
                               unlock: [.passphrase(newPassphrase)], parameters: testParameters, clock: world.clock)
        }
        #expect(error?.isBackupInvalid == true)
        #expect(!fileExists(restoredPath))
    }

    @Test("truncated and malformed version 2 headers are refused, never trapped on")
    func malformedHeadersAreRefused() async throws {
        let (alice, _) = try await exportedAlice()
        let keyFile = world.directory.sub("custodian.key")
        let custodianPublic = try CustodianKey.generate(privateKeyFile: keyFile, publicKeyFile: keyFile + ".pub")
        try Backup.export(alice.store, to: backupPath, sealedWith: .custodian(custodianPublic))
        let bytes = [UInt8](fileBytes(backupPath))
        let pair = try CustodianKey.readPrivate(keyFile)
        let bad = world.directory.sub("bad")
        var inputs: [(String, [UInt8])] = (0..<(122 + 24 + 6)).map { ("cut at \($0)", Array(bytes.prefix($0))) }
        for (name, sealing) in [("unknown sealing 0", UInt8(0)), ("unknown sealing 3", 3), ("sealing 255", 255)] {
            var changed = bytes; changed[9] = sealing; inputs.append((name, changed))
        }
        var future = bytes; future[8] = 3; inputs.append(("version 3", future))
        var zero = bytes; zero[8] = 0; inputs.append(("version 0", zero))
        var huge = bytes; huge.replaceSubrange(146..<150, with: [0xFF, 0xFF, 0xFF, 0xFF]); inputs.append(("a 4 GiB chunk length", huge))
        for (name, content) in inputs {
            writeFile(bad, content)
            let error = #expect(throws: StoreError.self, "\(name)") {
                try Backup.restore(from: bad, openedWith: .custodian(pair), into: restoredPath,
                                   unlock: [.passphrase(newPassphrase)], parameters: testParameters, clock: world.clock)
            }
            #expect(error?.isBackupInvalid == true, "\(name): \(String(describing: error))")
            #expect(!fileExists(restoredPath))
        }
    }

    /// Tests/vectors/backup-v1.parleybackup: written by the format-1 code (before custodian sealing) with
    /// the passphrase "format 1 fixture": alice@relay.test, her contact bob@relay.test and one message.
    @Test func aVersion1BackupStillRestores() throws {
        let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("../vectors/backup-v1.parleybackup").standardized.path
        #expect([UInt8](fileBytes(fixture))[8] == 1)
        #expect(throws: StoreError.wrongPassphrase) {
            try Backup.restore(from: fixture, passphrase: secret("not it"), into: restoredPath,
                               unlock: [.passphrase(newPassphrase)], parameters: testParameters, clock: world.clock)
        }
        let (restored, summary) = try Backup.restore(from: fixture, passphrase: secret("format 1 fixture"), into: restoredPath,
                                                     unlock: [.passphrase(newPassphrase)], parameters: testParameters, clock: world.clock)
        #expect(summary == Backup.Summary(contacts: 1, messages: 1))
        #expect(try restored.localAccount()?.address == "alice@relay.test")
        #expect(try restored.contacts().map(\.address) == ["bob@relay.test"])
        #expect(try restored.messages(in: direct("bob@relay.test")).map(\.text) == ["written by backup format 1"])
    }

    private var headerLength: Int { Backup.magic.count + 2 + Argon2id.saltLength + 8 + 8 + SecretStream.headerLength }

    /// Offsets at which each `u32 length ‖ ciphertext` chunk begins.
    private func chunkStarts(_ bytes: [UInt8]) -> [Int] {
        var starts: [Int] = []
        var offset = headerLength
        while offset + 4 <= bytes.count {
            starts.append(offset)
            offset += 4 + Int(bytes[offset..<offset + 4].reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
        }
        return starts
    }
}
