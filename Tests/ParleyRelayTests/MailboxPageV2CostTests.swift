import Foundation
import ParleyProtocol
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

/// What a mailbox page of version 2 (the one every client that knows groups fetches) costs on the way of
/// every delivered message, kept at what version 1's page cost: the KeyPackage count read in the page's own
/// database trip (not one more trip per page), and the page written and read by hand (HotJSON), not by
/// JSONEncoder and JSONDecoder.
@Suite("Mailbox page v2 costs")
struct MailboxPageV2CostTests {
    static let device = DeviceAddress(address: "bob@relay.test", deviceId: 1)

    @Test("a page with groups carries the device's KeyPackage count, fetched and after an acknowledgement; one without does not")
    func pageCountsKeyPackages() async throws {
        let directory = try TemporaryDirectory("page-v2")
        let storage = try SQLiteRelayStorage(path: directory.sub("relay.db"))
        #expect(try await storage.storeKeyPackages([[1], [2], [3]], lastResort: [9], for: Self.device, limit: 10))
        let now: UInt64 = 1_000
        #expect(try await storage.fetch(for: Self.device, now: now, limit: 10, after: 0, groups: true).keyPackages == 3)
        #expect(try await storage.acknowledge([], for: Self.device, thenFetch: 10, after: 0, now: now, groups: true).keyPackages == 3)
        #expect(try await storage.fetch(for: Self.device, now: now, limit: 10, after: 0, groups: false).keyPackages == nil)
        _ = try await storage.claimKeyPackage(for: Self.device)
        #expect(try await storage.fetch(for: Self.device, now: now, limit: 10, after: 0, groups: true).keyPackages == 2)
    }

    static func bytes(_ count: Int, seed: UInt8) -> [UInt8] { (0..<count).map { UInt8(truncatingIfNeeded: $0 &* 31) ^ seed } }

    static let page = FetchResponseV2(messages: [
        MailboxEntry(id: "17", receivedAt: 1_764_000_000_000, envelope: Base64Bytes(bytes(601, seed: 1)), group: nil),
        MailboxEntry(id: "18", receivedAt: UInt64.max, envelope: nil,
                     group: GroupDelivery(groupId: String(repeating: "ab", count: 32), epoch: 4, kind: "commit", message: Base64Bytes(bytes(300, seed: 2)))),
        MailboxEntry(id: "19", receivedAt: 0, envelope: Base64Bytes([]), group: nil),
    ], more: true, preKeysLow: false, keyPackagesLow: true)

    static func same(_ a: FetchResponseV2, _ b: FetchResponseV2) -> Bool {
        a.version == b.version && a.messages == b.messages && a.more == b.more && a.preKeysLow == b.preKeysLow && a.keyPackagesLow == b.keyPackagesLow
    }

    @Test("a page of version 2 is written and read by hand: JSONDecoder reads the same page, and so does the hand reader")
    func versionTwoPageIsHot() throws {
        // Looked up at run time, so that without the codec the test fails rather than not compiling.
        let hot = try #require((FetchResponseV2.self as Any.Type) as? any HotJSON.Type, "FetchResponseV2 goes through JSONEncoder and JSONDecoder")
        let written = try #require(Self.page as Any as? any HotJSON).jsonBytes()
        #expect(Self.same(try JSONDecoder().decode(FetchResponseV2.self, from: Data(written)), Self.page))
        let read = written.withUnsafeBytes { hot.init(fastJSON: $0) } as? FetchResponseV2
        #expect(read.map { Self.same($0, Self.page) } == true)
        // What JSONEncoder writes (slashes unescaped) reads the same; a version-1 page and another version are left
        // to JSONDecoder.
        let encoder = JSONEncoder()
        encoder.outputFormatting = .withoutEscapingSlashes
        let encoded = try encoder.encode(Self.page)
        #expect((encoded.withUnsafeBytes { hot.init(fastJSON: $0) } as? FetchResponseV2).map { Self.same($0, Self.page) } == true)
        let old = FetchResponse(messages: [QueuedMessage(id: "1", envelope: Base64Bytes([1]), receivedAt: 2)], more: false, preKeysLow: false)
        #expect(old.jsonBytes().withUnsafeBytes { hot.init(fastJSON: $0) } == nil)
        let three = Array(String(decoding: written, as: UTF8.self).replacingOccurrences(of: "{\"version\":2", with: "{\"version\":3").utf8)
        #expect(three.withUnsafeBytes { hot.init(fastJSON: $0) } == nil)
    }
}
