import Testing
import Foundation
import ParleyCrypto
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport

/// `contacts()` opens a contact's cell only when its sealed bytes changed since it was last opened, and
/// still sees every change: this store's, another process's on the same file, a removal.
@Suite struct OpenedContactsTests {
    let directory = try! TemporaryDirectory("store")
    var path: String { directory.sub("parley.db") }

    private func opened(_ store: EncryptedStore) -> Int { store.contactCellsOpened.load(ordering: .relaxed) }

    @Test func unchangedCellsAreNotOpenedAgain() throws {
        let store = try makeStore(path)
        for name in ["bob", "carol", "dave"] {
            try store.saveContact(Contact(address: try AccountAddress("\(name)@relay.test"), account: known(makeAccount("\(name)@relay.test"))))
        }
        #expect(try store.contacts().count == 3)
        #expect(opened(store) == 3)
        #expect(try store.contacts().map(\.address.description) == ["bob@relay.test", "carol@relay.test", "dave@relay.test"])
        #expect(opened(store) == 3, "nothing changed, nothing is opened again")

        var carol = try #require(try store.contact(try AccountAddress("carol@relay.test")))
        carol.blocked = true
        try store.saveContact(carol)
        #expect(try store.contacts().filter(\.blocked).map(\.address.description) == ["carol@relay.test"])
        #expect(opened(store) == 4, "only the changed cell is opened")
    }

    @Test func changesByAnotherStoreOnTheFileAreSeen() throws {
        let store = try makeStore(path)
        try store.saveContact(Contact(address: try AccountAddress("bob@relay.test"), account: known(makeAccount("bob@relay.test"))))
        #expect(try store.contacts().map(\.blocked) == [false])

        // Another process (a one-shot command beside a daemon) blocks bob and adds erin.
        let other = try openStore(path)
        var bob = try #require(try other.contact(try AccountAddress("bob@relay.test")))
        bob.blocked = true
        try other.saveContact(bob)
        try other.saveContact(Contact(address: try AccountAddress("erin@relay.test"), account: known(makeAccount("erin@relay.test"))))
        #expect(try store.contacts().map { "\($0.address) \($0.blocked)" } == ["bob@relay.test true", "erin@relay.test false"])

        #expect(try other.removeContact(try AccountAddress("bob@relay.test")))
        #expect(try store.contacts().map(\.address.description) == ["erin@relay.test"])
    }
}
