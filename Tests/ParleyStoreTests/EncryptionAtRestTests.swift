import Testing
import Foundation
import ParleyCrypto
import GRDB
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

@Suite struct EncryptionAtRestTests {
    let directory = try! TemporaryDirectory("store")
    var path: String { directory.sub("parley.db") }

    @Test func messageBodyCopiedToAnotherRowIsTampered() throws {
        let store = try makeStore(path)
        try store.insertMessages([message("first", 1), message("second", 2)])
        let first = try rawCell(path, "SELECT body FROM messages WHERE id = 1")
        try raw(path) { try $0.execute(sql: "UPDATE messages SET body = ? WHERE id = 2", arguments: [first]) }

        #expect(throws: StoreError.tamperedRow(table: "messages", column: "body", row: "2")) {
            try store.messages(with: "bob@relay.test")
        }
        #expect(throws: StoreError.tamperedRow(table: "messages", column: "body", row: "2")) { try store.verify() }
    }

    @Test func cellCopiedToAnotherColumnIsTampered() throws {
        let store = try makeStore(path)
        try store.insertMessages([message("only", 1)])
        let body = try rawCell(path, "SELECT body FROM messages WHERE id = 1")
        try raw(path) { try $0.execute(sql: "UPDATE messages SET state = ? WHERE id = 1", arguments: [body]) }

        #expect(throws: StoreError.tamperedRow(table: "messages", column: "state", row: "1")) {
            try store.messages(with: "bob@relay.test")
        }
    }

    @Test func messageMovedToAnotherConversationIsTampered() throws {
        let store = try makeStore(path)
        try store.insertMessages([message("for bob", 1, peer: "bob@relay.test"), message("for carol", 2, peer: "carol@relay.test")])
        // The conversation column is in the clear; moving Bob's message under Carol must not go unnoticed.
        try raw(path) { try $0.execute(sql: "UPDATE messages SET conversation = (SELECT conversation FROM messages WHERE id = 2) WHERE id = 1") }

        let expected = StoreError.tamperedRow(table: "messages", column: "conversation", row: "1")
        #expect(throws: expected) { try store.messages(with: "carol@relay.test") }
        #expect(throws: expected) { try store.search("for", in: "carol@relay.test") }
        #expect(throws: expected) { try store.verify() }
        #expect(try store.messages(with: "bob@relay.test").isEmpty)
    }

    @Test func swappedConversationLookupsAreTampered() throws {
        let store = try makeStore(path)
        try store.insertMessages([message("for bob", 1, peer: "bob@relay.test"), message("for carol", 2, peer: "carol@relay.test")])
        let bob = store.conversationLookup("bob@relay.test"), carol = store.conversationLookup("carol@relay.test")
        try raw(path) { db in
            try db.execute(sql: "UPDATE conversations SET lookup = x'00' WHERE lookup = ?", arguments: [bob])
            try db.execute(sql: "UPDATE conversations SET lookup = ? WHERE lookup = ?", arguments: [bob, carol])
            try db.execute(sql: "UPDATE conversations SET lookup = ? WHERE lookup = x'00'", arguments: [carol])
        }
        #expect(throws: StoreError.tamperedRow(table: "messages", column: "conversation", row: "2")) {
            try store.messages(with: "bob@relay.test")
        }
        #expect(throws: StoreError.tamperedRow(table: "messages", column: "conversation", row: "1")) {
            try store.messages(with: "carol@relay.test")
        }
    }

    @Test func contactBodyCopiedToAnotherLookupIsTampered() throws {
        let store = try makeStore(path)
        let bob = makeAccount("bob@relay.test"), carol = makeAccount("carol@relay.test")
        try store.saveContact(Contact(address: "bob@relay.test", account: known(bob), trust: .verified))
        try store.saveContact(Contact(address: "carol@relay.test", account: known(carol)))
        let bobKey = store.lookup("bob@relay.test", "contacts"), carolKey = store.lookup("carol@relay.test", "contacts")
        let bobBody = try rawCell(path, "SELECT body FROM contacts WHERE lookup = ?", [bobKey])
        // Carol's row now holds Bob's (verified) record: it must not be accepted as Carol's.
        try raw(path) { try $0.execute(sql: "UPDATE contacts SET body = ? WHERE lookup = ?", arguments: [bobBody, carolKey]) }

        let expected = StoreError.tamperedRow(table: "contacts", column: "body", row: CellCipher.Row.key([UInt8](carolKey)).description)
        #expect(throws: expected) { try store.contact("carol@relay.test") }
        #expect(throws: expected) { try store.account("carol@relay.test") }
        #expect(try store.contact("bob@relay.test")?.trust == .verified)
    }

    @Test func flippedByteInSessionBodyIsTampered() throws {
        let store = try makeStore(path)
        let alice = makeAccount("alice@relay.test"), bob = makeAccount("bob@relay.test")
        let bobDevice = bob.deviceAddress
        var changes = SessionChanges()
        changes.sessions[bobDevice] = PeerDeviceSessions(active: try ratchetSession(from: alice, to: bob, remoteKeys: .generate(oneTime: 0)))
        try store.commit(changes)
        #expect(try store.sessions(for: bobDevice).active != nil)

        let (lookup, body) = try raw(path) { db in
            let row = try #require(try Row.fetchOne(db, sql: "SELECT lookup, body FROM sessions"))
            return (row["lookup"] as Data, row["body"] as Data)
        }
        var flipped = [UInt8](body)
        flipped[flipped.count / 2] ^= 0x01
        try raw(path) { try $0.execute(sql: "UPDATE sessions SET body = ? WHERE lookup = ?", arguments: [Data(flipped), lookup]) }

        let expected = StoreError.tamperedRow(table: "sessions", column: "body", row: CellCipher.Row.key([UInt8](lookup)).description)
        #expect(throws: expected) { try store.sessions(for: bobDevice) }
        #expect(throws: expected) { try store.verify() }
    }

    @Test func noPersonalTextAppearsInTheFiles() throws {
        let secrets = ["zanzibar-quokka-7781", "Marmalade Skyline Whisper", "carol.hidden@relay.test", "Carol Q. Confidential",
                       "dave.secret@relay.test", "Davey Nickname", "alice.private@relay.test"]
        func assertAbsent(in file: String) {
            let bytes = fileBytes(file)
            for text in secrets {
                for encoding in [String.Encoding.utf8, .utf16LittleEndian, .utf16BigEndian] {
                    let needle = text.data(using: encoding)!
                    #expect(bytes.range(of: needle) == nil, "\(text) (\(encoding)) found in \(file)")
                }
            }
        }
        do {
            let store = try makeStore(path)
            try store.saveLocalAccount(makeAccount("alice.private@relay.test"), preKeys: .generate(oneTime: 2))
            try store.saveContact(Contact(address: "carol.hidden@relay.test", account: known(makeAccount("carol.hidden@relay.test")),
                                          trust: .verified, displayName: "Carol Q. Confidential"))
            try store.saveContact(Contact(address: "dave.secret@relay.test", account: known(makeAccount("dave.secret@relay.test")),
                                          displayName: "Davey Nickname"))
            try store.insertMessages([message("we meet at zanzibar-quokka-7781", 1, peer: "carol.hidden@relay.test"),
                                      message("Marmalade Skyline Whisper", 2, peer: "dave.secret@relay.test")])
            #expect(try store.search("quokka").count == 1)  // the data really is there
            // While open, recent writes sit in the WAL.
            assertAbsent(in: path)
            if fileExists(path + "-wal") { assertAbsent(in: path + "-wal") }
        }
        // Closed: everything is checkpointed into the main file.
        #expect(fileBytes(path).range(of: Data("CREATE TABLE contacts".utf8)) != nil)  // the scan does see clear text
        assertAbsent(in: path)
        if fileExists(path + "-wal") { assertAbsent(in: path + "-wal") }
    }
}
