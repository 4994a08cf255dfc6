import Testing
import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

@Suite struct BadFileTests {
    let directory = try! TemporaryDirectory("store")
    var path: String { directory.sub("parley.db") }

    /// A closed store holding an account, a contact and `count` messages of about 200 bytes.
    private func populatedStore(messages count: Int = 600) throws {
        let store = try makeStore(path)
        try store.saveLocalAccount(makeAccount("alice@relay.test"), preKeys: .generate(oneTime: 2))
        try store.saveContact(Contact(address: "bob@relay.test", account: known(makeAccount("bob@relay.test"))))
        try store.insertMessages((1...count).map { message("message \($0) " + String(repeating: "·", count: 60), $0) })
    }

    private func openAndVerify() throws {
        _ = try openStore(path).verify()
    }

    @Test func missingFileIsNoStore() {
        #expect(throws: StoreError.noStore(path: path)) { try openStore(path) }
        #expect(!fileExists(path))
    }

    @Test(arguments: ["empty", "random", "text"])
    func nonDatabaseFileIsRefused(kind: String) throws {
        switch kind {
        case "empty": writeFile(path, [])
        case "random": writeFile(path, DeterministicRandom(label: "random file").bytes(4096))
        default: writeFile(path, Array("SQLite is great, but this is a grocery list.\nmilk\neggs\n".utf8))
        }
        let before = sha256(path)
        let error = #expect(throws: StoreError.self) { try openStore(path) }
        #expect(error?.isNotADatabase == true, "\(String(describing: error))")
        #expect(sha256(path) == before)
    }

    @Test func storeTruncatedToHalfIsAClearError() throws {
        try populatedStore()
        let bytes = fileBytes(path)
        #expect(bytes.count > 100_000)
        writeFile(path, bytes.prefix(bytes.count / 2))
        let error = #expect(throws: StoreError.self) { try openAndVerify() }
        #expect(error?.isCorrupt == true || error?.isNotADatabase == true, "\(String(describing: error))")
    }

    @Test func garbagePageInTheMiddleIsDetected() throws {
        try populatedStore()
        var bytes = [UInt8](fileBytes(path))
        let pageSize = 4096
        #expect(bytes.count % pageSize == 0 && bytes.count / pageSize > 20)
        let page = bytes.count / pageSize / 2
        bytes.replaceSubrange(page * pageSize..<(page + 1) * pageSize, with: DeterministicRandom(label: "garbage").bytes(pageSize))
        writeFile(path, bytes)
        let error = #expect(throws: StoreError.self) { try openAndVerify() }
        #expect(error?.isCorrupt == true || error?.isTamperedRow == true, "\(String(describing: error))")
    }

    @Test func healthyStoreVerifiesWithRowCounts() async throws {
        let world = StoreWorld()
        let alice = try world.device("alice@relay.test"), bob = try world.device("bob@relay.test")
        try world.introduce(alice, bob)
        try await exchange("hi", from: alice, to: bob, id: 1)
        try await exchange("hello", from: bob, to: alice, id: 2)
        try alice.store.insertMessages([message("a", 1, peer: "bob@relay.test"), message("b", 2, peer: "carol@relay.test")])

        let report = try alice.store.verify()
        #expect(report.rows == ["local": 2, "contacts": 1, "sessions": 1, "conversations": 2, "inbox": 1, "outbox": 1,
                                "attachments": 0, "settings": 0, "messages": 2, "groups": 0, "key_packages": 0])
        #expect(report.total == 10)
    }
}
