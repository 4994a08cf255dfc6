import Foundation
internal import GRDB
import ParleyCrypto
import ParleyProtocol

/// Encrypted export and import of an account (a local format, documented in PROTOCOL.md, "Backups").
///
/// File (version 2): `"PARLEYBK" ‖ version u8 = 2 ‖ sealing u8 ‖ sealing fields ‖ secretstream header(24) ‖
/// chunks`. The sealing says where the 32-byte backup key comes from:
/// 1. passphrase: `salt(16) ‖ ops u64 ‖ mem u64`, the key Argon2id(passphrase, salt);
/// 2. custodian: `custodian public key(32) ‖ sealed key(80)`, a random key in a sealed box
///    (`crypto_box_seal`) to the custodian's X25519 key, so the custodian's private key opens it.
///
/// Version 1 (still read) is version 2's passphrase sealing without the sealing byte. Each chunk is
/// `u32 length ‖ secretstream ciphertext` and holds one record `type u8 ‖ payload`; the last chunk is tagged
/// FINAL and holds the record counts, so a truncated, reordered or spliced file is refused.
///
/// Ratchet sessions and prekeys are deliberately not exported: restoring old ratchet state would reuse
/// message keys. The restored device gets a new device key and fresh prekeys, and re-signs the device
/// list, so every peer starts new sessions with it.
public enum Backup {
    static let magic = Array("PARLEYBK".utf8)
    static let version: UInt8 = 2

    /// How the backup key is sealed (the byte after the version).
    public enum Sealing: UInt8, Sendable {
        case passphrase = 1
        case custodian = 2
    }

    /// What an export seals the backup key with.
    public enum Seal: Sendable {
        case passphrase(SecretBytes, Argon2id.Parameters = .moderate)
        case custodian(X25519.PublicKey)
    }

    /// What an import opens it with.
    public enum Opener: Sendable {
        case passphrase(SecretBytes)
        case custodian(X25519.KeyPair)
    }

    static let sealedKeyLength = SecretStream.keyLength + SealedBox.overhead

    enum RecordType: UInt8 {
        case account = 1
        case contact = 2
        case message = 3
        case end = 0xFF
    }

    public struct Summary: Sendable, Equatable {
        public var contacts = 0
        public var messages = 0
    }

    // MARK: Export

    /// Writes the account, contacts and history to `file` (created with mode 0600, replaced atomically).
    @discardableResult
    public static func export(_ store: EncryptedStore, to file: String, passphrase: SecretBytes,
                              parameters: Argon2id.Parameters = .moderate) throws(StoreError) -> Summary {
        try export(store, to: file, sealedWith: .passphrase(passphrase, parameters))
    }

    /// Writes the account, contacts and history to `file`, its key sealed with `seal`.
    @discardableResult
    public static func export(_ store: EncryptedStore, to file: String, sealedWith seal: Seal) throws(StoreError) -> Summary {
        guard let account = try store.localAccount() else { throw .backupInvalid("this store has no account to export") }
        var writer = ByteWriter(capacity: 1 << 16)
        writer.raw(magic); writer.u8(version)
        let key: SecretBytes
        switch seal {
        case .passphrase(let passphrase, let parameters):
            let salt = SystemRandom().bytes(Argon2id.saltLength)
            do { key = try Argon2id.deriveKey(password: passphrase, salt: salt, parameters: parameters) } catch {
                throw .io("Argon2id failed")
            }
            writer.u8(Sealing.passphrase.rawValue); writer.raw(salt)
            writer.u64(parameters.opsLimit); writer.u64(UInt64(parameters.memLimitBytes))
        case .custodian(let custodian):
            key = SecretBytes.random(count: SecretStream.keyLength)
            writer.u8(Sealing.custodian.rawValue); writer.raw(custodian.bytes)
            writer.raw(SealedBox.seal(key, to: custodian))
        }
        var encryptor = try! SecretStream.Encryptor(key: key)
        writer.raw(encryptor.header)
        var output = try OutputFile(path: file)
        func emit(_ type: RecordType, _ payload: [UInt8], final: Bool = false) throws(StoreError) {
            var plain = [type.rawValue] + payload
            defer { wipe(&plain) }
            let chunk = encryptor.push(plain, final: final)
            writer.u32(UInt32(chunk.count)); writer.raw(chunk)
            if writer.bytes.count >= 1 << 16 { try output.write(writer.bytes); writer = ByteWriter(capacity: 1 << 16) }
        }
        var summary = Summary()
        try emit(.account, account.serialized())
        for contact in try store.contacts() { try emit(.contact, contact.serialized()); summary.contacts += 1 }
        try store.forEachMessage { record throws(StoreError) in
            try emit(.message, [record.state.rawValue] + RecordCodec.encode(record))
            summary.messages += 1
        }
        var counts = ByteWriter()
        counts.u64(UInt64(summary.contacts)); counts.u64(UInt64(summary.messages))
        try emit(.end, counts.bytes, final: true)
        try output.write(writer.bytes)
        try output.commit()
        return summary
    }

    // MARK: Import

    /// Restores a backup into a new store at `path`, protected by `unlock`. The device keeps its id but
    /// gets a new device key and prekeys; the device list is re-signed with a higher version.
    public static func restore(from file: String, passphrase: SecretBytes, into path: String, unlock: [UnlockMethod],
                               parameters: Argon2id.Parameters = .moderate,
                               clock: any WallClock = SystemWallClock()) throws(StoreError) -> (EncryptedStore, Summary) {
        try restore(from: file, openedWith: .passphrase(passphrase), into: path, unlock: unlock, parameters: parameters, clock: clock)
    }

    /// Restores a backup opened with `opener` (nothing is written unless every record decrypts and checks).
    public static func restore(from file: String, openedWith opener: Opener, into path: String, unlock: [UnlockMethod],
                               parameters: Argon2id.Parameters = .moderate,
                               clock: any WallClock = SystemWallClock()) throws(StoreError) -> (EncryptedStore, Summary) {
        guard let data = FileManager.default.contents(atPath: file) else { throw .backupInvalid("cannot read \(file)") }
        var r = ByteReader([UInt8](data), structure: "backup")
        let records: [(RecordType, [UInt8])]
        do {
            guard try r.raw(magic.count) == magic else { throw StoreError.backupInvalid("not a Parley backup") }
            let fileVersion = try r.u8()
            let sealing: Sealing
            switch fileVersion {
            case 1: sealing = .passphrase
            case 2:
                guard let known = Sealing(rawValue: try r.u8()) else { throw StoreError.backupInvalid("unknown sealing of the backup key") }
                sealing = known
            default: throw StoreError.backupInvalid("unsupported backup version \(fileVersion)")
            }
            let key = try openKey(sealing, &r, opener)
            let header = try r.raw(SecretStream.headerLength)
            var decryptor = try SecretStream.Decryptor(key: key, header: header)
            var out: [(RecordType, [UInt8])] = []
            var first = true
            while r.remaining > 0 {
                let chunk = try r.raw(Int(try r.u32()))
                guard let plain = try? decryptor.pull(chunk) else {
                    throw first && sealing == .passphrase ? StoreError.wrongPassphrase : StoreError.backupInvalid("the file was altered or damaged")
                }
                first = false
                guard let type = plain.first.flatMap(RecordType.init(rawValue:)) else { throw StoreError.backupInvalid("unknown record") }
                out.append((type, Array(plain.dropFirst())))
            }
            guard decryptor.finished, out.last?.0 == .end else { throw StoreError.backupInvalid("the file is truncated") }
            records = out
        } catch let error as StoreError {
            throw error
        } catch {
            throw .backupInvalid("the file is truncated or malformed")
        }
        return try rebuild(records, path: path, unlock: unlock, parameters: parameters, clock: clock)
    }

    /// Reads the sealing fields and opens the backup key with `opener`.
    private static func openKey(_ sealing: Sealing, _ r: inout ByteReader, _ opener: Opener) throws -> SecretBytes {
        switch (sealing, opener) {
        case (.passphrase, .passphrase(let passphrase)):
            let salt = try r.raw(Argon2id.saltLength)
            let ops = try r.u64(), mem = try r.u64()
            guard ops <= 16, mem <= 4 << 30 else { throw StoreError.backupInvalid("implausible key-derivation parameters") }
            return try Argon2id.deriveKey(password: passphrase, salt: salt, parameters: .init(opsLimit: ops, memLimitBytes: Int(mem)))
        case (.custodian, .custodian(let pair)):
            let sealedTo = try r.raw(X25519.keyLength)
            let sealedKey = try r.raw(sealedKeyLength)
            guard constantTimeEquals(sealedTo, pair.publicKey.bytes), let key = try? SealedBox.open(sealedKey, with: pair) else {
                throw StoreError.backupInvalid("it is sealed to another custodian key (\(Hex.encode(Array(sealedTo.prefix(8))))), "
                                               + "not to this one (\(Hex.encode(Array(pair.publicKey.bytes.prefix(8))))): nothing was restored")
            }
            return key
        case (.custodian, .passphrase):
            throw StoreError.backupInvalid("it is sealed to a custodian's key, not a passphrase: restore it with --custodian-key")
        case (.passphrase, .custodian):
            throw StoreError.backupInvalid("it is sealed with a passphrase, not to a custodian's key")
        }
    }

    private static func rebuild(_ records: [(RecordType, [UInt8])], path: String, unlock: [UnlockMethod],
                                parameters: Argon2id.Parameters, clock: any WallClock) throws(StoreError) -> (EncryptedStore, Summary) {
        guard let (firstType, accountBytes) = records.first, firstType == .account,
              let old = try? LocalAccount(serialized: accountBytes) else { throw .backupInvalid("no account record") }
        var summary = Summary()
        var contacts: [Contact] = []
        var messages: [MessageRecord] = []
        for (type, payload) in records.dropFirst() {
            switch type {
            case .contact: contacts.append(try Contact(serialized: payload))
            case .message:
                guard let stateByte = payload.first, let state = DeliveryState(rawValue: stateByte) else {
                    throw .backupInvalid("message state")
                }
                messages.append(try RecordCodec.decodeMessage(Array(payload.dropFirst()), id: 0, state: state))
            case .end:
                var counts = ByteReader(payload, structure: "backup counts")
                guard (try? counts.u64()) == UInt64(contacts.count), (try? counts.u64()) == UInt64(messages.count) else {
                    throw .backupInvalid("record counts do not match")
                }
            case .account: throw .backupInvalid("second account record")
            }
        }
        summary.contacts = contacts.count
        summary.messages = messages.count

        // A new device key and prekeys; the account key re-signs the list with the new key in place.
        let now = clock.nowMilliseconds()
        let device = DeviceIdentity(deviceId: old.device.deviceId, keyPair: Ed25519.KeyPair())
        let entries = old.deviceList.devices.map {
            $0.deviceId == device.deviceId ? DeviceEntry(deviceId: device.deviceId, identityKey: device.publicKey, createdAt: now) : $0
        }
        let list = SignedDeviceList.sign(devices: entries, version: old.deviceList.version + 1, accountKey: old.accountKey)
        let account = LocalAccount(address: old.address, accountKey: old.accountKey, device: device, deviceList: list,
                                   certificateExpiry: now + LocalAccount.certificateLifetime)
        let store = try EncryptedStore.create(at: path, unlock: unlock, parameters: parameters)
        try store.saveLocalAccount(account, preKeys: .generate(oneTime: LocalPreKeys.defaultOneTimeCount))
        for contact in contacts { try store.saveContact(contact) }
        for batch in stride(from: 0, to: messages.count, by: 1000) {
            try store.insertMessages(Array(messages[batch..<min(batch + 1000, messages.count)]))
        }
        return (store, summary)
    }
}

extension EncryptedStore {
    /// Every message, oldest first, decrypted one at a time (for export).
    func forEachMessage(_ body: (MessageRecord) throws(StoreError) -> Void) throws(StoreError) {
        var after: Int64 = 0
        while true {
            let rows = try read { db in
                try Row.fetchAll(db, sql: "SELECT id, body, state FROM messages WHERE id > ? AND id NOT IN (SELECT message FROM expiring) ORDER BY id LIMIT 1000", arguments: [after])
            }
            guard let last = rows.last else { return }
            var conversations = ConversationCache()
            for row in rows { try body(try decodeMessage(row, &conversations)) }
            after = last["id"]
        }
    }
}

/// Writes to `path.tmp` (mode 0600) and renames over `path` on commit, so a failed export leaves
/// nothing half-written.
struct OutputFile {
    let path: String
    let handle: FileHandle

    init(path: String) throws(StoreError) {
        self.path = path
        let temporary = path + ".tmp"
        FileManager.default.createFile(atPath: temporary, contents: nil, attributes: [.posixPermissions: 0o600])
        guard let handle = FileHandle(forWritingAtPath: temporary) else { throw .io("cannot write \(temporary)") }
        self.handle = handle
    }

    mutating func write(_ bytes: [UInt8]) throws(StoreError) {
        do { try handle.write(contentsOf: bytes) } catch { throw .io("cannot write \(path).tmp: \(error.localizedDescription)") }
    }

    func commit() throws(StoreError) {
        do {
            try handle.synchronize()
            try handle.close()
        } catch { throw .io("cannot finish \(path): \(error.localizedDescription)") }
        // rename(2) replaces a file atomically and refuses a directory (which must never be removed to make
        // room for a backup).
        guard rename(path + ".tmp", path) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(path + ".tmp")
            throw .io("cannot write \(path): \(reason)")
        }
    }
}
