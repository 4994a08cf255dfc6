import Foundation
@testable import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The receiving client's store when its disk fills, and the size of its write-ahead log.
@Suite("The client's store: a full disk and the write-ahead log", .serialized)
struct ClientDiskFullTests {
    @Test("the receiver's home fills: nothing it could not store is acknowledged, the error names the home, and every message arrives once when space returns")
    func receiverHomeFills() async throws {
        try await withRelay { relay, directory in
            guard let small = try await SmallFileSystem.mount(megabytes: 4, at: directory.sub("small"), in: directory) else { return }
            defer { small.unmount() }
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let home = small.path + "/home-bob"
            let engine = try await Engine.createAccount(try AccountAddress("bob@\(relay.name)"), store: try TestDevice.newStore(home: home),
                                                        relay: try RelayClient(endpoint: try TestDevice.endpoint(for: relay)))
            let bob = TestDevice(engine: engine, home: home)
            let aliceAddress = await alice.address, bobAddress = await bob.address
            try await alice.engine.addContact(bobAddress)
            try await bob.engine.addContact(aliceAddress)

            // More than the write-ahead log can take in the space it already holds.
            let texts = (1...200).map { "message \($0) " + String(repeating: "m", count: 8_000) }
            for text in texts { try await alice.engine.send(text: text, to: bobAddress) }
            let filler = try small.fill()

            // The push connection's drain fails: the chat window is told why, in one line.
            let events = await bob.engine.subscribe()
            let told = Told()
            let watcher = Task {
                for await event in events { if case .receiveFailed(let line) = event { told.set(line); return } }
            }
            defer { watcher.cancel() }
            try await bob.connect()
            try await eventually("the failed drain to be reported") { told.line != nil }
            bob.stopConnection()
            #expect(told.line?.contains("the disk holding \(home) is full") == true, "\(told.line ?? "")")

            do {
                try await bob.engine.receivePending()
                Issue.record("a full disk stored everything")
            } catch let error as StoreError {
                guard case .diskFull(let named, _, let needed) = error else { Issue.record("unexpected \(error)"); return }
                #expect(named == home && needed == StoreError.spaceNeeded)
                #expect(error.description.hasPrefix("the disk holding \(home) is full ("), "\(error)")
            }
            let storedWhileFull = try bob.incomingTexts(from: aliceAddress).count
            #expect(storedWhileFull < texts.count)

            try FileManager.default.removeItem(atPath: filler)
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress) == texts, "every message, once, in order")
            print("ClientDiskFullTests: \(storedWhileFull) of \(texts.count) messages stored before the disk filled; all \(texts.count) after")
        }
    }

    @Test("the write-ahead log stays near the data it holds: 200 messages of 1 KB received")
    func writeAheadLogStaysSmall() async throws {
        try await withRelay { relay, directory in
            let (alice, bob, aliceAddress, bobAddress) = try await TestDevice.pair(on: relay, in: directory)
            let texts = (1...200).map { "message \($0) " + String(repeating: "w", count: 1_000) }
            for text in texts { try await alice.engine.send(text: text, to: bobAddress) }
            let before = bob.store.writeAheadLogBytes()
            try await bob.engine.receivePending()
            #expect(try bob.incomingTexts(from: aliceAddress).count == texts.count)
            let after = bob.store.writeAheadLogBytes()
            let database = (try FileManager.default.attributesOfItem(atPath: bob.store.path)[.size] as? Int) ?? 0
            let data = texts.reduce(0) { $0 + $1.utf8.count }
            print("ClientDiskFullTests: WAL \(before) bytes before, \(after) bytes after receiving \(data) bytes of text (database \(database) bytes)")
            #expect(after <= data, "the WAL (\(after) bytes) is no bigger than the text it took in (\(data) bytes)")
        }
    }
}

/// A line set once from another task.
final class Told: @unchecked Sendable {
    private let lock = Lock()
    private var value: String?
    var line: String? { lock.withLock { value } }
    func set(_ line: String) { lock.withLock { if value == nil { value = line } } }
}
