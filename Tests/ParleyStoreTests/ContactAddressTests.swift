import Foundation
import GRDB
import ParleyCrypto
import ParleyProtocol
@testable import ParleyStore
import ParleyTestSupport
import Testing

/// The contacts table keeps an address as its text (the format is unchanged); reading one back parses it,
/// and a row whose text is no account address is a typed store error, never a trap or a contact with it.
@Suite struct ContactAddressTests {
    @Test("a contact row whose address does not parse is StoreError.malformedRecord; the other contacts still read")
    func malformedAddressRowIsATypedError() throws {
        let directory = try TemporaryDirectory("contact-address")
        let store = try makeStore(directory.sub("parley.db"))
        let bob = makeAccount("bob@relay.test")
        let bobAddress = try AccountAddress("bob@relay.test")
        try store.saveContact(Contact(address: bobAddress, account: known(bob)))

        // A damaged row, written as the store writes contacts but with text no AccountAddress would give.
        let text = "Not An Address"
        var w = ByteWriter()
        w.u8(RecordCodec.version)
        w.bytes16(Array(text.utf8))
        w.bytes32(known(bob).serialized())
        w.u8(TrustState.unverified.rawValue)
        w.bytes16([])
        let key = store.lookup(text, "contacts")
        try store.write { db in
            try db.execute(sql: "INSERT INTO contacts (lookup, body) VALUES (?, ?)",
                           arguments: [key, store.seal(w.bytes, "contacts", "body", .key([UInt8](key)))])
        }

        #expect(throws: StoreError.malformedRecord(table: "contacts", detail: "address: expected NAME@HOST[:PORT]")) {
            try store.contacts()
        }
        #expect(try store.contact(bobAddress)?.address == bobAddress, "a good row reads as before")
    }
}
