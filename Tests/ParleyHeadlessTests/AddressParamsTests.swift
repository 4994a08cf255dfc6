import Foundation
import ParleyClient
import ParleyHeadless
import ParleyProtocol
import ParleyTestSupport
import Testing

/// An address parameter is parsed where the request comes in: text that is not `NAME@HOST[:PORT]` gets
/// invalid params (-32602, the code for a malformed parameter) naming the parameter, whichever method
/// it is given to, and nothing is tried: no message stored, nothing in the outbox, no contact added.
@Suite("Headless: a malformed address parameter is invalid params")
struct AddressParamsTests {
    static let relayName = "127.0.0.1:7002"
    static let notAnAddress = "not-an-address"

    /// Every method that takes an address, with the address (or one of several) malformed.
    static let calls: [(method: String, params: String, param: String)] = [
        ("send", #"{"recipient":"\#(notAnAddress)","message":"hi"}"#, "recipient"),
        ("send", #"{"recipient":["bob@\#(relayName)","\#(notAnAddress)"],"message":"hi"}"#, "recipient"),
        ("send", #"{"recipient":"bob@\#(relayName)","message":"hi","quoteTimestamp":1,"quoteAuthor":"Bob@@x"}"#, "quoteAuthor"),
        ("sendReceipt", #"{"recipient":"\#(notAnAddress)","targetTimestamp":1}"#, "recipient"),
        ("sendTyping", #"{"recipient":["bob@\#(relayName)","\#(notAnAddress)"]}"#, "recipient"),
        ("addContact", #"{"recipient":"\#(notAnAddress)"}"#, "recipient"),
        ("listIdentities", #"{"recipient":"\#(notAnAddress)"}"#, "recipient"),
        ("verify", #"{"recipient":"\#(notAnAddress)"}"#, "recipient"),
        ("trust", #"{"recipient":"\#(notAnAddress)"}"#, "recipient"),
        ("listDevices", #"{"recipient":"\#(notAnAddress)"}"#, "recipient"),
        ("getAttachment", #"{"recipient":"\#(notAnAddress)","id":"00112233445566778899aabbccddeeff"}"#, "recipient"),
        ("search", #"{"query":"hi","recipient":"\#(notAnAddress)"}"#, "recipient"),
        // Contacts by name: text without '@' that names no contact is as malformed as a bad address.
        ("updateContact", #"{"recipient":"\#(notAnAddress)","name":"x"}"#, "recipient"),
        ("updateContact", #"{"recipient":"Bob@@x","name":"x"}"#, "recipient"),
        ("removeContact", #"{"recipient":"\#(notAnAddress)"}"#, "recipient"),
        ("block", #"{"recipient":["bob","\#(notAnAddress)"]}"#, "recipient"),
        ("unblock", #"{"recipient":"Bob@@x"}"#, "recipient"),
    ]

    @Test("each address-taking method answers -32602 naming the parameter, and changes nothing")
    func malformedAddressIsInvalidParams() async throws {
        let network = InProcessNetwork()
        let relay = try network.addRelay(Self.relayName)
        let directory = try TemporaryDirectory("address-params")
        let alice = try await ClientDevice.create("alice", on: relay, relayName: Self.relayName, in: directory)
        let bob = try await ClientDevice.create("bob", on: relay, relayName: Self.relayName, in: directory)
        let bobAddress = await bob.address
        try await alice.engine.addContact(bobAddress)
        let server = await HeadlessServer(engine: alice.engine)

        for (index, call) in Self.calls.enumerated() {
            let pair = try SocketPair()
            let serving = Task { await server.serve(pair.server) }
            pair.write(#"{"jsonrpc":"2.0","id":\#(index),"method":"\#(call.method)","params":\#(call.params)}"# + "\n")
            let response = try await pair.readJSON()
            pair.closeClient()
            await serving.value
            #expect(response["id"] == .int(Int64(index)))
            #expect(response["error"]?["code"] == -32602, "\(call.method) \(call.params): \(response)")
            let message = response["error"]?["message"]?.stringValue ?? ""
            #expect(message.hasPrefix(call.param + ": "), "\(call.method): the message names the parameter: \(message)")
        }

        #expect(try alice.history(with: bobAddress).isEmpty, "nothing was sent or stored")
        #expect(try alice.store.outboxEntries().isEmpty)
        #expect(try alice.engine.contacts().map(\.address) == [bobAddress], "no contact was added or removed")
        #expect(try alice.engine.contacts().allSatisfy { $0.nickname.isEmpty && !$0.blocked }, "no contact renamed or blocked")
    }
}
