import Foundation
import ParleyClient
import ParleyProtocol
import ParleyHeadless
import ParleyStore
import Testing

/// `ErrorCategory` is the one table from an error to its exit status and JSON-RPC code; both man pages document
/// exactly its codes.
@Suite("ErrorCategory: one table for exit statuses and JSON-RPC codes")
struct ErrorCategoryTests {
    static func page(_ name: String) -> String {
        var url = URL(fileURLWithPath: #filePath)
        for _ in 0..<3 { url.deleteLastPathComponent() }
        return (try? String(contentsOfFile: url.path + "/man/" + name, encoding: .utf8)) ?? ""
    }

    @Test("every row's JSON-RPC code is one the daemon declares, and Parley's own codes are the negated statuses")
    func rpcCodes() {
        for failure in ErrorCategory.allCases {
            #expect(RPCErrorCode(rawValue: failure.rpcCode) != nil, "\(failure)")
            if failure != .invalidInput { #expect(failure.rpcCode == -Int64(failure.exitCode)) }
        }
    }

    @Test("parley(1)'s EXIT STATUS lists exactly 0 and the table's statuses")
    func exitStatuses() {
        var codes: Set<Int32> = []
        var inside = false, afterTP = false
        for line in Self.page("parley.1").split(separator: "\n") {
            if line.hasPrefix(".SH ") { inside = line == ".SH EXIT STATUS" }
            guard inside else { continue }
            if afterTP, line.hasPrefix(".B "), let code = Int32(line.dropFirst(3)) { codes.insert(code) }
            afterTP = line == ".TP"
        }
        #expect(codes == Set(ErrorCategory.allCases.map(\.exitCode)).union([0]))
    }

    @Test("errors fall in their rows: the same cause gives the same status and code on both surfaces")
    func rows() {
        #expect(ErrorCategory.of(ClientError.unknownContact(try! AccountAddress("x@y:1"))) == .userError)
        #expect(ErrorCategory.of(ClientError.network("refused")) == .relayOrNetwork)
        #expect(ErrorCategory.of(ClientError.identityChanged(try! AccountAddress("x@y:1"))).exitCode == 4)
        #expect(ErrorCategory.of(StoreError.wrongPassphrase).exitCode == 1)
        #expect(ErrorCategory.of(StoreError.io("x")).exitCode == 2)
        #expect(ErrorCategory.of(OperationError.invalidInput("x")).rpcCode == -32602)
        #expect(ErrorCategory.of(OperationError.safetyNumberMismatch).rpcCode == -1)
        #expect(RPCError.from(OperationError.refused("no such message")).code == .userError)
        #expect(ErrorCategory.of(CancellationError()) == .unexpected)
    }
}
