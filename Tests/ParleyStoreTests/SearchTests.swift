import Testing
import Foundation
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

@Suite struct SearchTests {
    let directory = try! TemporaryDirectory("store")
    let store: EncryptedStore

    init() throws {
        store = try makeStore(directory.sub("parley.db"))
        try store.insertMessages([
            message("Lunch at noon?", 1, peer: "bob@relay.test"),
            message("the LUNCH menu", 2, peer: "carol@relay.test"),
            message("no food talk", 3, peer: "bob@relay.test"),
            message("after-lunch walk", 4, peer: "bob@relay.test"),
            message("Grüße, LUNCHTIME", 5, peer: "carol@relay.test"),
        ])
    }

    @Test func caseInsensitiveSubstringNewestFirst() throws {
        #expect(try store.search("lunch").map(\.text) == ["Grüße, LUNCHTIME", "after-lunch walk", "the LUNCH menu", "Lunch at noon?"])
        #expect(try store.search("LuNcH mEnU").map(\.text) == ["the LUNCH menu"])
        #expect(try store.search("grüße").map(\.text) == ["Grüße, LUNCHTIME"])
    }

    @Test func limitKeepsTheNewest() throws {
        #expect(try store.search("lunch", limit: 2).map(\.text) == ["Grüße, LUNCHTIME", "after-lunch walk"])
        #expect(try store.search("lunch", limit: 0).isEmpty)
    }

    @Test func scopedToOneConversation() throws {
        let bob = try store.search("lunch", in: "bob@relay.test")
        #expect(bob.map(\.text) == ["after-lunch walk", "Lunch at noon?"])
        #expect(bob.allSatisfy { $0.conversation == "bob@relay.test" })
        #expect(try store.search("lunch", in: "carol@relay.test").map(\.text) == ["Grüße, LUNCHTIME", "the LUNCH menu"])
        #expect(try store.search("lunch", in: "dave@relay.test").isEmpty)
    }

    @Test func noMatchIsEmpty() throws {
        #expect(try store.search("dinner").isEmpty)
        #expect(try store.search("food", in: "carol@relay.test").isEmpty)
        #expect(try store.search("").isEmpty)
    }

    @Test func resultsAreCompleteRecords() throws {
        let hit = try #require(try store.search("noon").first)
        #expect(hit == (try store.messages(with: "bob@relay.test").first))
        #expect(hit.state == .received && hit.sender.address == "bob@relay.test")
    }
}
