import Foundation
import Testing
@testable import ParleyClient
@testable import ParleyRelay
@testable import ParleyStore
import ParleyProtocol
import ParleyRelayAPI

/// How the outbox drain packs batches into send requests, and how the relay counts and charges them.
@Suite("Send batching")
struct SendBatchingTests {
    private func group(_ batch: UInt8, to address: String, devices: [UInt32], bytes: Int = 100, firstId: Int64) -> [OutboxEntry] {
        devices.enumerated().map { offset, device in
            OutboxEntry(id: firstId + Int64(offset),
                        envelope: OutgoingEnvelope(recipient: DeviceAddress(address: address, deviceId: device),
                                                   envelope: [UInt8](repeating: batch, count: bytes), batch: [batch]),
                        content: [])
        }
    }

    @Test("batches to one account share a request, in outbox order; other accounts and other device sets get their own")
    func packing() {
        let groups = [
            group(1, to: "bob@r", devices: [1, 2], firstId: 1),
            group(2, to: "me@r", devices: [2], firstId: 3),
            group(3, to: "bob@r", devices: [1, 2], firstId: 4),
            group(4, to: "bob@r", devices: [1, 2, 3], firstId: 6),   // Bob's list grew: not with the earlier ones
            group(5, to: "bob@r", devices: [1, 2, 3], firstId: 9),
            group(6, to: "me@r", devices: [2], firstId: 12),
        ]
        let requests = Engine.requests(of: groups).map { $0.map { $0[0].envelope.batch[0] } }
        #expect(requests == [[1, 3], [2, 6], [4, 5]])
    }

    @Test("a request holds at most 64 batches and about a mebibyte of envelopes")
    func limits() {
        let many = (0..<150).map { group(UInt8($0 % 250), to: "bob@r", devices: [1], firstId: Int64($0) + 1) }
        #expect(Engine.requests(of: many).map(\.count) == [64, 64, 22])
        let big = (0..<5).map { group(UInt8($0), to: "bob@r", devices: [1], bytes: 300_000, firstId: Int64($0) + 1) }
        #expect(Engine.requests(of: big).map(\.count) == [3, 2])
    }

    @Test("the relay counts the messages of a send and refuses uneven or oversized ones")
    func messageCount() throws {
        func request(_ devices: [UInt32]) -> SendRequest {
            SendRequest(messages: devices.map { OutgoingMessage(deviceId: $0, deviceKey: Base64Bytes([]), envelope: Base64Bytes([1])) })
        }
        #expect(try RelayCore.messageCount(of: request([1, 2]), limit: 64) == 1)
        #expect(try RelayCore.messageCount(of: request([1, 2, 2, 1, 1, 2]), limit: 64) == 3)
        #expect(throws: RelayError.self) { try RelayCore.messageCount(of: request([1, 1, 2]), limit: 64) }
        #expect(throws: RelayError.self) { try RelayCore.messageCount(of: request(Array(repeating: 7, count: 65)), limit: 64) }
        #expect(try RelayCore.messageCount(of: request(Array(repeating: 7, count: 64)), limit: 64) == 64)
    }

    @Test("a send of several messages takes one rate-limit token per message, and none when it cannot have them all")
    func rateCost() async {
        // Refills so slowly that nothing comes back during the test.
        let limiter = RateLimiter(RateLimit(perSecond: 0.0001, burst: 10))
        #expect(await limiter.allow("a", cost: 11) == false)
        #expect(await limiter.allow("a", cost: 10))
        #expect(await limiter.allow("a") == false)
        #expect(await limiter.allow("b", cost: 4))
        #expect(await limiter.allow("b", cost: 6))
        #expect(await limiter.allow("b") == false)
    }
}
