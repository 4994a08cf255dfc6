import AsyncHTTPClient
import Foundation
import NIOCore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `parley daemon --http` as users start it: the binary, several homes each with its own key file, a token
/// file, against `parley-relay` on loopback.
@Suite("End to end: the daemon's HTTP endpoint")
struct HeadlessHTTPEndToEndTests {
    @Test("two homes in one daemon behind a bearer token exchange messages; an open address without a token is refused")
    func twoHomesWithToken() async throws {
        try await withRelay { relay, directory in
            let one = try await CLIHome.create("one", on: relay, in: directory)
            let two = try await CLIHome.create("two", on: relay, in: directory)
            let oneAddress = "one@\(relay.name)", twoAddress = "two@\(relay.name)"
            let parley = one.parley

            // Off loopback without a token file: refused before anything listens.
            let open = try await ParleyRelayTests.run(parley, ["daemon", "--http", "0.0.0.0:\(try RelayProcess.freePort())"] + one.options,
                                                      in: directory, timeout: .seconds(30))
            #expect(open.status != 0)
            #expect(open.stderr.contains("needs --http-token-file"), "\(open.summary)")
            // Unlock options must pair with the homes.
            let unpaired = try await ParleyRelayTests.run(parley, ["daemon", "--http", "127.0.0.1:1", "--home", one.path, "--home", two.path,
                                                                   "--key-file", one.keyFile], in: directory, timeout: .seconds(30))
            #expect(unpaired.status != 0 && unpaired.stderr.contains("once per --home"), "\(unpaired.summary)")

            let token = "a-token-of-enough-length-0123"
            let tokenFile = directory.sub("token")
            FileManager.default.createFile(atPath: tokenFile, contents: Data((token + "\n").utf8), attributes: [.posixPermissions: 0o600])
            let port = try RelayProcess.freePort()
            let daemon = try ChildProcess(parley, ["daemon", "--http", "127.0.0.1:\(port)", "--http-token-file", tokenFile,
                                                   "--home", one.path, "--home", two.path, "--key-file", one.keyFile, "--key-file", two.keyFile],
                                          in: directory)
            let http = RawHTTP(url: "http://127.0.0.1:\(port)")
            try await eventually("the daemon to answer on port \(port) (stderr: \(daemon.stderr))") {
                guard daemon.process.isRunning else { throw FixtureError("the daemon exited: \(daemon.stderr)") }
                return (try? await http.request(.GET, "/api/v1/check", token: token).status) == 200
            }
            #expect(try await http.request(.GET, "/api/v1/check").status == 401)

            func rpc(_ method: String, _ params: [String: Any]) async throws -> [String: Any] {
                let body = try JSONSerialization.data(withJSONObject: ["jsonrpc": "2.0", "id": 1, "method": method, "params": params])
                let reply = try await http.request(.POST, "/api/v1/rpc", body: [UInt8](body), token: token)
                #expect(reply.status == 200)
                return try #require(try JSONSerialization.jsonObject(with: Data(reply.body)) as? [String: Any])
            }
            let accounts = try await rpc("listAccounts", [:])["result"] as? [[String: String]]
            #expect(accounts == [["number": oneAddress], ["number": twoAddress]])
            let refused = try await rpc("listContacts", [:])["error"] as? [String: Any]
            #expect(refused?["code"] as? Int == -32602)

            _ = try await rpc("addContact", ["account": oneAddress, "recipient": twoAddress])
            let sent = try await rpc("send", ["account": oneAddress, "recipient": twoAddress, "message": "from one to two"])
            #expect(sent["result"] != nil, "\(sent)")
            try await eventually("two to have the message") {
                let found = try await rpc("search", ["account": twoAddress, "query": "from one to two"])["result"] as? [[String: Any]]
                return found?.first?["source"] as? String == oneAddress
            }
            #expect(try await daemon.stop() == 0)
        }
    }
}

extension RawHTTP {
    init(url: String) { baseURL = url }
}
