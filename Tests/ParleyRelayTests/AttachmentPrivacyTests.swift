import Foundation
import Hummingbird
import Logging
import NIOCore
import ParleyClient
import ParleyCrypto
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// What the relay keeps about an attachment: no uploader (a slot is filled with its upload secret, of which
/// only a hash is stored), a padded size, and per-account quotas counted apart from the blobs. Stores made
/// before this lose the uploader columns when they migrate.
@Suite("Relay: attachments keep no uploader")
struct AttachmentPrivacyTests {
    private let log = Logger(label: "attachment-privacy-tests")

    @Test("after a sent attachment, no row of the relay's database that names the blob names its sender; its size is a bucket")
    func noUploaderStored() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, a, b) = try await TestDevice.pair(on: relay, in: directory)
            let file = directory.sub("notes.txt")
            FileManager.default.createFile(atPath: file, contents: Data(SystemRandom().bytes(3000)))
            let sent = try await alice.engine.sendAttachment(file: file, to: b)
            let id = try #require(sent.attachment?.id)
            try await bob.engine.receivePending()
            #expect(try await bob.engine.attachmentBytes(of: try #require(try bob.history(with: a).last)).count == 3000)

            let dump = try await run("/usr/bin/sqlite3", ["-readonly", relay.dataDirectory + "/relay.sqlite", ".dump"], in: directory)
            #expect(dump.status == 0, "\(dump.summary)")
            let naming = dump.stdout.split(separator: "\n").filter { $0.contains(id) }
            #expect(naming.count == 1, "one row names the blob: \(naming)")
            let aliceName = a.name
            #expect(naming.allSatisfy { !$0.contains(aliceName) && !$0.contains(a.description) }, "the blob's row names its uploader: \(naming)")
            let columns = try await run("/usr/bin/sqlite3", ["-readonly", relay.dataDirectory + "/relay.sqlite", "PRAGMA table_info(attachments)"],
                                        in: directory)
            #expect(!columns.stdout.contains("address") && !columns.stdout.contains("device_id"), "\(columns.stdout)")

            let size = try #require(FileManager.default.attributesOfItem(atPath: relay.dataDirectory + "/attachments/" + id)[.size] as? Int)
            #expect(AttachmentPadding.isBucket(size) && size == AttachmentCipher.paddedSize(of: 3000), "stored \(size) bytes")
            // A slot of a size that is not a bucket is refused, with the next bucket named.
            let refused = try await RawHTTP(relay).request(.POST, "/v1/attachments", json: AttachmentSlotRequest(size: 3000),
                                                           token: try await alice.token())
            #expect(refused.status == 400 && refused.text.contains("\(AttachmentPadding.padded(3000))"), "\(refused.status) \(refused.text)")
        }
    }

    func core(_ directory: TemporaryDirectory, clock: ManualClock, quota: AttachmentQuota) throws -> RelayCore {
        var configuration = RelayConfiguration(name: "relay.test", host: "127.0.0.1", port: 1, dataDirectory: directory.path)
        configuration.attachmentQuota = quota
        return RelayCore(configuration: configuration, storage: try SQLiteRelayStorage(path: directory.sub("relay.db")),
                         broker: LocalWakeBroker(), clock: clock)
    }

    @Test("an account's slots and bytes per day are capped, other accounts and the next day are not affected")
    func quotas() async throws {
        let directory = try TemporaryDirectory("quota")
        let clock = ManualClock()
        let files = try AttachmentFiles(core: try core(directory, clock: clock, quota: AttachmentQuota(bytes: 1000, slots: 3)))
        for _ in 0..<3 { _ = try await files.createSlot(AttachmentSlotRequest(size: 10), account: "alice@relay.test", logger: log) }
        await #expect(throws: RelayError.rateLimited) { try await files.createSlot(AttachmentSlotRequest(size: 10), account: "alice@relay.test", logger: log) }
        _ = try await files.createSlot(AttachmentSlotRequest(size: 896), account: "bob@relay.test", logger: log)
        await #expect(throws: RelayError.rateLimited) { try await files.createSlot(AttachmentSlotRequest(size: 112), account: "bob@relay.test", logger: log) }
        _ = try await files.createSlot(AttachmentSlotRequest(size: 104), account: "bob@relay.test", logger: log)
        clock.advance(by: AttachmentQuota.period)
        _ = try await files.createSlot(AttachmentSlotRequest(size: 10), account: "alice@relay.test", logger: log)
    }

    @Test("a slot is filled only with its upload secret, whose hash alone is stored")
    func uploadSecret() async throws {
        let directory = try TemporaryDirectory("secret")
        let core = try core(directory, clock: ManualClock(), quota: AttachmentQuota(bytes: 1 << 20, slots: 10))
        let files = try AttachmentFiles(core: core)
        let slot = try await files.createSlot(AttachmentSlotRequest(size: 5), account: "alice@relay.test", logger: log)
        #expect(slot.uploadSecret.count == 64 && slot.uploadSecret.allSatisfy(\.isHexDigit))
        let stored = try #require(try await core.storage.attachment(slot.id, now: core.clock.nowMilliseconds()))
        #expect(stored.uploadSecretHash == SHA256.hash(Array(slot.uploadSecret.utf8)))
        let body = { RequestBody(buffer: ByteBuffer(bytes: [1, 2, 3, 4, 5])) }
        await #expect(throws: RelayError.self) { try await files.upload(id: slot.id, from: body(), secret: nil, logger: log) }
        await #expect(throws: RelayError.notFound("no attachment slot \(slot.id)")) {
            try await files.upload(id: slot.id, from: body(), secret: String(slot.uploadSecret.reversed()), logger: log)
        }
        try await files.upload(id: slot.id, from: body(), secret: slot.uploadSecret, logger: log)
        #expect(try await core.storage.attachment(slot.id, now: core.clock.nowMilliseconds())?.complete == true)
    }

    @Test("a store from before keeps its blobs and loses the uploader columns (their bytes too); old empty slots cannot be filled")
    func migration() async throws {
        let directory = try TemporaryDirectory("migrate")
        let path = directory.sub("relay.db")
        let (done, open) = (String(repeating: "a", count: 64), String(repeating: "b", count: 64))
        let old = """
            CREATE TABLE grdb_migrations (identifier TEXT NOT NULL PRIMARY KEY);
            INSERT INTO grdb_migrations VALUES ('v1'), ('v2 mailbox counts'), ('v3 provisioning');
            CREATE TABLE accounts (address TEXT PRIMARY KEY, account_key BLOB NOT NULL, device_list BLOB NOT NULL);
            CREATE TABLE attachments (id TEXT PRIMARY KEY, address TEXT NOT NULL, device_id INTEGER NOT NULL,
              size INTEGER NOT NULL, complete INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL);
            INSERT INTO attachments VALUES ('\(done)', 'uploader-ghost@relay.test', 1, 41, 1, 9000000000000);
            INSERT INTO attachments VALUES ('\(open)', 'uploader-ghost@relay.test', 1, 41, 0, 9000000000000);
            CREATE TABLE provisioning (id TEXT PRIMARY KEY, message BLOB, expires_at INTEGER NOT NULL);
            CREATE TABLE messages (id INTEGER PRIMARY KEY AUTOINCREMENT, address TEXT NOT NULL, device_id INTEGER NOT NULL,
              envelope BLOB NOT NULL, received_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
            CREATE INDEX messages_by_device ON messages (address, device_id, id);
            CREATE INDEX messages_by_expiry ON messages (expires_at);
            CREATE TABLE mailbox_counts (address TEXT NOT NULL, device_id INTEGER NOT NULL, count INTEGER NOT NULL,
              PRIMARY KEY (address, device_id)) WITHOUT ROWID;
            """
        let created = try await run("/usr/bin/sqlite3", [path, old], in: directory)
        #expect(created.status == 0, "\(created.summary)")
        do {
            let storage = try SQLiteRelayStorage(path: path)
            #expect(try await storage.attachment(done, now: 1) == StoredAttachment(size: 41, complete: true, uploadSecretHash: nil))
            #expect(try await storage.attachment(open, now: 1) == StoredAttachment(size: 41, complete: false, uploadSecretHash: nil))
        }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path)) + ((try? Data(contentsOf: URL(fileURLWithPath: path + "-wal"))) ?? Data())
        #expect(bytes.range(of: Data("uploader-ghost".utf8)) == nil, "the dropped addresses are overwritten, not left in free pages")
    }
}
