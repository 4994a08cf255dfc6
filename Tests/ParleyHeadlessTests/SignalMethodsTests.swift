import Foundation
import ParleyClient
import ParleyHeadless
import ParleyProtocol
import ParleyTestSupport
import Testing

/// The signal-cli methods bots call, over HTTP: the ones Parley honours with signal-cli's names, and the
/// ones it refuses with a documented error.
@Suite("Headless: signal-cli's methods")
struct SignalMethodsTests {
    @Test("getUserStatus asks the relay; unknown accounts are not registered; nothing becomes a contact")
    func userStatus() async throws {
        let daemon = try await DaemonFixture(served: ["bot"], others: ["alice"])
        let alice = await daemon.others[0].address.description, nobody = "nobody@" + DaemonFixture.relayName
        let body = #"{"jsonrpc":"2.0","id":1,"method":"getUserStatus","params":{"recipient":["\#(alice)","\#(nobody)"]}}"#
        let result = try #require(try await daemon.rpc(body).json?["result"])
        #expect(result == [["recipient": .string(alice), "number": .string(alice), "isRegistered": true],
                           ["recipient": .string(nobody), "number": .string(nobody), "isRegistered": false]])
        #expect(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"listContacts"}"#).json?["result"] == [])
        #expect(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"getUserStatus","params":{"recipient":"not an address"}}"#)
            .json?["error"] != nil)
    }

    @Test("methods Parley cannot honour answer -32000 with the reason, never a silent success")
    func unsupported() async throws {
        let daemon = try await DaemonFixture(served: ["bot"])
        for method in ["register", "updateProfile", "submitRateLimitChallenge", "joinGroup", "receive"] {
            let response = try #require(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":{"account":"x"}}"#).json)
            #expect(response["error"]?["code"] == -32000, "\(method)")
            #expect(response["error"]?["message"]?.stringValue?.hasPrefix("\(method) is not supported by Parley") == true)
            #expect(response["result"] == nil)
        }
        // Every refused name is in the man page's table, and none is also a method Parley serves.
        for name in SignalCompatibility.unsupported.keys {
            #expect(ManPageTests.page.contains(".B \(name)\n"), "\(name) is missing from parley-jsonrpc(5)")
            #expect(!HeadlessMethods.table.contains { $0.name == name }, "\(name)")
        }
    }

    @Test("a new account is in no group: listGroups is [], quitGroup and updateGroup of a group id fail as signal-cli's unknown group")
    func groups() async throws {
        let daemon = try await DaemonFixture(served: ["bot"])
        #expect(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"listGroups"}"#).json?["result"] == [])
        #expect(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"listGroups","params":{"detailed":true}}"#).json?["result"] == [])
        let id = Data((0..<32).map { UInt8($0) }).base64EncodedString()
        for method in ["quitGroup", "updateGroup"] {
            let response = try #require(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"\#(method)","params":{"groupId":"\#(id)"}}"#).json)
            #expect(response["result"] == nil, "\(method) succeeded on a group that does not exist")
            #expect(response["error"]?["code"] == -1, "\(method)")
            #expect(response["error"]?["message"] == .string("Failed to send to group: Group not found: \(id)"), "\(method)")
        }
        // A group id that is not base64 is not echoed back.
        let bad = try #require(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"quitGroup","params":{"groupId":"\u001b[2J"}}"#).json)
        #expect(bad["error"]?["code"] == -1)
        #expect(bad["error"]?["message"] == "Invalid group id: not base64")
        // Creating a group needs a name; without one nothing is created.
        let create = try #require(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"updateGroup","params":{"description":"team"}}"#).json)
        #expect(create["error"]?["code"] == -32000, "a description is refused before the missing name")
        let unnamed = try #require(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"updateGroup","params":{}}"#).json)
        #expect(unnamed["error"]?["code"] == -32602)
        #expect(try await daemon.rpc(#"{"jsonrpc":"2.0","id":1,"method":"listGroups"}"#).json?["result"] == [])
    }

    @Test("send with a data: URI: its size is checked from its length before decoding; a bad one changes nothing")
    func dataURIs() async throws {
        let png = DataURI.parseForTest("data:image/png;filename=../../etc/pic.png;base64," + Data([1, 2, 3, 4, 5]).base64EncodedString())
        #expect(png?.bytes == [1, 2, 3, 4, 5])
        #expect(png?.fileName == "pic.png")
        #expect(png?.mediaType == "image/png")
        #expect(DataURI.parseForTest("data:,hello%20there")?.bytes == Array("hello there".utf8))
        #expect(DataURI.parseForTest("data:,hello")?.fileName == "attachment.txt")
        #expect(DataURI.parseForTest("data:application/pdf;base64,AAAA")?.fileName == "attachment.pdf")
        #expect(DataURI.parseForTest("data:image/png;filename=.hidden%0Aname;base64,AAAA")?.fileName == "hiddenname")
        // 4 MiB of base64 claims 3 MiB: refused by its length with a 1 MiB limit (the payload is not even base64).
        #expect(throws: OperationError.self) { _ = try DataURI.parse("data:;base64," + String(repeating: "!", count: 4 << 20), maxBytes: 1 << 20) }
        #expect(throws: OperationError.self) { _ = try DataURI.parse("data:;base64,@@@@") }
        #expect(throws: OperationError.self) { _ = try DataURI.parse("data:no-comma") }

        let daemon = try await DaemonFixture(served: ["bot"], others: ["alice"])
        let alice = await daemon.others[0].address.description, bot = daemon.served[0]
        _ = try await bot.engine.addContact(try AccountAddress(alice))
        let bad = try #require(try await daemon.rpc(#"""
            {"jsonrpc":"2.0","id":1,"method":"send","params":{"recipient":"\#(alice)","attachment":"data:text/plain;base64,%%%"}}
            """#).json)
        #expect(bad["error"]?["message"]?.stringValue?.contains("base64") == true)
        #expect(try bot.history(with: try AccountAddress(alice)).isEmpty, "a refused attachment left a message behind")
    }
}

extension DataURI {
    static func parseForTest(_ text: String) -> DataURI? { try? parse(text) }
}
