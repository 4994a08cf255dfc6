import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyStore
import Testing

/// The operations layer in-process against a real relay: the outcomes both front ends report the same way
/// because they are decided once (PENDING after a relay failure, FAILURE for one of several recipients,
/// the typed refusals).
@Suite("Operations: send outcomes and refusals")
struct OperationsTests {
    @Test("one of two recipients fails: SUCCESS and FAILURE (with its code); the first stored message names the result")
    func partialFailure() async throws {
        try await withRelay { relay, directory in
            let (alice, _, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let stranger = try AccountAddress("carol@\(relay.name)")
            let result = try await Operations(engine: alice.engine).send(.init(recipients: [stranger, bobAddress], text: "to both"))
            #expect(result.results.map(\.type) == [.failure, .success])
            #expect(result.results[0].error?.code == ErrorCategory.userError.rpcCode, "an unknown contact is the caller's to fix")
            #expect(result.id != nil && result.id == result.results[1].id && result.timestamp == result.results[1].timestamp)
            // With one recipient the failure is thrown, as both surfaces report it.
            await #expect(throws: ClientError.unknownContact(stranger)) {
                try await Operations(engine: alice.engine).send(.init(recipients: [stranger], text: "only carol"))
            }
        }
    }

    @Test("the relay is down: the message is PENDING in the outbox, with the reason (relay or network) kept for the CLI")
    func pendingWhenTheRelayIsDown() async throws {
        try await withRelay { relay, directory in
            let (alice, _, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            // A session first: without one, the bundles the relay cannot give mean nothing is saved (an error).
            try await alice.engine.send(text: "now", to: bobAddress)
            try await relay.stop()
            let result = try await Operations(engine: alice.engine).send(.init(recipients: [bobAddress], text: "later"))
            let only = try #require(result.results.first)
            #expect(only.type == .pending && only.state == "pending")
            #expect(only.pendingBecause?.code == ErrorCategory.relayOrNetwork.rpcCode)
            let json = try JSONValue(encoding: result).serialized
            #expect(!json.contains("pendingBecause") && json.contains("\"type\":\"PENDING\""), "\(json)")
            #expect(try alice.engine.messages(in: .direct(bobAddress), limit: 1).last?.state == .pending)
        }
    }

    @Test("refusals are typed: no failed message, a search limit out of range, an unknown timestamp, an unknown contact")
    func refusals() async throws {
        try await withRelay { relay, directory in
            let (alice, _, _, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let operations = Operations(engine: alice.engine)
            await #expect(throws: OperationError.refused("no failed message in this conversation")) { try await operations.retryFailed(with: bobAddress) }
            #expect(throws: OperationError.self) { try operations.search("x", limit: 0) }
            #expect(ErrorCategory.of(OperationError.invalidInput("")) == .invalidInput)
            let carol = try AccountAddress("carol@\(relay.name)")
            #expect(throws: ClientError.unknownContact(carol)) { try operations.search("x", with: carol) }
            await #expect(throws: OperationError.self) { try await operations.sendReceipt(to: bobAddress, read: true, timestamps: [1]) }
            await #expect(throws: OperationError.safetyNumberMismatch) {
                try await operations.trust(bobAddress, verifiedSafetyNumber: String(repeating: "1", count: 60))
            }
        }
    }
}
