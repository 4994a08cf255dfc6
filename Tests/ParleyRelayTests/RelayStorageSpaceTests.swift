import Foundation
@testable import ParleyRelay
import ParleyRelayAPI
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The relay on a small file system of the test's own (a tmpfs; skipped, with the reason printed, where
/// the test cannot mount one). Before these changes a full relay answered 500 to everything, sign-in and
/// fetch included, so no mailbox could drain and the relay stayed wedged until an operator added disk.
@Suite("Relay on a full disk", .serialized)
struct RelayStorageSpaceTests {
    /// Fetches and acknowledges everything queued for `token`, in pages of 50 (as a draining client
    /// would), and returns the sequence numbers received.
    static func drain(_ token: String, on relay: RelayProcess) async throws -> [UInt32] {
        let raw = RawHTTP(relay)
        var received: [UInt32] = []
        while true {
            let reply = try await raw.request(.GET, "/v1/mailbox?limit=50", token: token)
            guard reply.status == 200 else { throw FixtureError("fetch answered \(reply.status): \(reply.text)") }
            let page = try reply.decode(FetchResponse.self).messages
            if page.isEmpty { return received }
            received += page.map { sequence(of: $0.envelope.bytes) }
            let ack = try await raw.request(.POST, "/v1/mailbox/ack", json: AckRequest(ids: page.map(\.id)), token: token)
            guard ack.status == 204 else { throw FixtureError("acknowledgement answered \(ack.status): \(ack.text)") }
        }
    }

    /// A 2.5 KB envelope carrying its sequence number in its first four bytes.
    /// Sends numbered envelopes from 0 until the relay refuses one (at most 5,000): the numbers it took, and
    /// the refusal.
    static func sendUntilRefused(_ device: RawDevice, on relay: RelayProcess) async throws -> ([UInt32], RawHTTP.Reply?) {
        var accepted: [UInt32] = []
        for next in UInt32(0)..<5_000 {
            let reply = try await device.send(envelope(next), on: relay)
            guard reply.status == 204 else { return (accepted, reply) }
            accepted.append(next)
        }
        return (accepted, nil)
    }

    /// Sends `count` numbered envelopes from `next` on, each expected to be taken; the numbers taken.
    static func sendAccepted(_ count: Int, from next: inout UInt32, _ device: RawDevice, on relay: RelayProcess) async throws -> [UInt32] {
        var accepted: [UInt32] = []
        for _ in 0..<count {
            let reply = try await device.send(envelope(next), on: relay)
            #expect(reply.status == 204, "\(reply.status) \(reply.text)")
            if reply.status == 204 { accepted.append(next) }
            next += 1
        }
        return accepted
    }

    static func envelope(_ sequence: UInt32) -> [UInt8] {
        withUnsafeBytes(of: sequence.bigEndian, Array.init) + (0..<2_500).map { _ in UInt8.random(in: 0...255) }
    }

    static func sequence(of envelope: [UInt8]) -> UInt32 {
        envelope.prefix(4).reduce(0) { $0 << 8 | UInt32($1) }
    }

    static func health(_ relay: RelayProcess) async throws -> HealthResponse {
        try await RawHTTP(relay).request(.GET, "/v1/health").decode(HealthResponse.self)
    }

    static let unlimited = ["--rate-limit-ip", "100000", "--rate-limit-account", "100000"]

    @Test("under --min-free-space new mail is refused with 507 while sign-in, fetch and acknowledgement go on; once drained, sends succeed again and every message arrives exactly once")
    func reserveKeepsDrainingPossible() async throws {
        let directory = try TemporaryDirectory()
        guard let disk = try await SmallFileSystem.mount(megabytes: 4, at: directory.sub("relay-data"), in: directory) else { return }
        defer { disk.unmount() }
        let relay = try await RelayProcess.start(in: directory, arguments: ["--min-free-space", "1M"] + Self.unlimited)
        defer { relay.kill() }
        let bob = try await RawDevice.register("bob", on: relay)
        #expect(try await Self.health(relay).status == "ok")

        let (accepted, refusal) = try await Self.sendUntilRefused(bob, on: relay)
        var next = UInt32(accepted.count + 1)
        let full = try #require(refusal, "refused before 5000 envelopes of 2.5 KB on 4 MB")
        #expect(full.status == 507 && full.errorCode == "insufficient_storage", "\(full.status) \(full.text)")
        #expect(disk.availableBytes > 512 * 1024, "refused with the reserve still free: \(disk.availableBytes) bytes")
        let health = try await Self.health(relay)
        #expect(health.status == "degraded" && health.reason == "storage_low", "\(health)")
        #expect(relay.errorLog.contains("under --min-free-space"), "the operator is told once: \(relay.errorLog)")

        // New data of every kind is refused; nothing of it is stored.
        let raw = RawHTTP(relay)
        #expect(try await raw.request(.POST, "/v1/attachments", json: AttachmentSlotRequest(size: 10), token: bob.token).status == 507)
        // A request that is wrong on its own stays the client's error (413), whatever the space: found by the
        // relay fuzzer on a machine with less free disk than a 406 GB slot.
        #expect(try await raw.request(.POST, "/v1/attachments", json: AttachmentSlotRequest(size: 406_133_104_668), token: bob.token).status == 413)
        await #expect(throws: FixtureError.self) { _ = try await RawDevice.register("carol", on: relay) }
        #expect(try await raw.request(.GET, raw.accountPath("carol@\(relay.name)")).status == 404)

        // Signing in (a challenge and a token are written) and draining work.
        let token = try await RawDevice.signIn(address: bob.address, key: bob.key, on: relay)
        var received = try await Self.drain(token, on: relay)
        #expect(received.sorted() == accepted, "every accepted message once, none of the refused")

        // Space is back (the database reuses what the drain freed): sends succeed again.
        let more = try await Self.sendAccepted(100, from: &next, bob, on: relay)
        #expect(try await Self.health(relay).status == "ok")
        received += try await Self.drain(token, on: relay)
        #expect(received.sorted() == accepted + more, "exactly once, across the refusal")
        #expect(relay.errorLog.contains("back above --min-free-space"), "\(relay.errorLog)")
        #expect(!relay.errorLog.contains("unexpected error"), "\(relay.errorLog)")
    }

    @Test("a disk that really fills (no reserve) answers 507, not 500; fetching still works, and once space is freed nothing was lost or doubled")
    func fullDiskIsA507() async throws {
        let directory = try TemporaryDirectory()
        guard let disk = try await SmallFileSystem.mount(megabytes: 4, at: directory.sub("relay-data"), in: directory) else { return }
        defer { disk.unmount() }
        let relay = try await RelayProcess.start(in: directory, arguments: ["--min-free-space", "0"] + Self.unlimited)
        defer { relay.kill() }
        let bob = try await RawDevice.register("bob", on: relay)
        // Another tenant of the disk, which the test removes to give the space back.
        let filler = disk.path + "/filler"
        FileManager.default.createFile(atPath: filler, contents: Data(count: 1 << 20))

        let (taken, refusal) = try await Self.sendUntilRefused(bob, on: relay)
        var accepted = taken
        var next = UInt32(accepted.count + 1)
        let full = try #require(refusal, "the disk filled before 5000 envelopes")
        // Before, this was "500 internal error" and the log said "unexpected error: DatabaseError".
        #expect(full.status == 507 && full.errorCode == "insufficient_storage", "\(full.status) \(full.text)")
        #expect(relay.errorLog.contains("storage: the disk holding the data directory is full"), "\(relay.errorLog)")
        #expect(!relay.errorLog.contains("unexpected error"), "\(relay.errorLog)")
        let health = try await Self.health(relay)
        #expect(health.status == "degraded" && health.reason == "storage_full", "\(health)")

        // Reads are not wedged by the failed write.
        let mailbox = try await RawHTTP(relay).mailbox(token: bob.token)
        #expect(mailbox.count == min(500, accepted.count))

        // Space comes back; the mailbox drains and new mail is accepted, each message once.
        try FileManager.default.removeItem(atPath: filler)
        var received = try await Self.drain(bob.token, on: relay)
        accepted += try await Self.sendAccepted(20, from: &next, bob, on: relay)
        received += try await Self.drain(bob.token, on: relay)
        #expect(received.sorted() == accepted)
        #expect(relay.isRunning)
    }
}

/// Storage faults other than a full disk: each its own status, code and log line; 500 is left for bugs.
@Suite("Relay storage faults")
struct RelayStorageFaultTests {
    @Test("a database another process keeps locked answers 503 database_locked with Retry-After, not 500; the relay recovers when the lock goes")
    func lockedDatabase() async throws {
        try await withRelay(RelayStorageSpaceTests.unlimited) { relay, directory in
            let bob = try await RawDevice.register("bob", on: relay)
            // Another process takes the write lock and keeps it past the relay's 10 s busy timeout.
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/sqlite3")
            holder.arguments = [relay.dataDirectory + "/relay.sqlite"]
            let input = Pipe()
            holder.standardInput = input
            holder.standardOutput = FileHandle.nullDevice
            try holder.run()
            defer { if holder.isRunning { holder.terminate() } }
            input.fileHandleForWriting.write(Data("BEGIN IMMEDIATE;\nSELECT 1;\n".utf8))
            try await Task.sleep(for: .milliseconds(500))

            let locked = try await bob.send([1, 2, 3], on: relay)
            #expect(locked.status == 503 && locked.errorCode == "database_locked", "\(locked.status) \(locked.text)")
            let health = try await RelayStorageSpaceTests.health(relay)
            #expect(health.status == "degraded" && health.reason == "database_locked", "\(health)")
            #expect(relay.errorLog.contains("storage: the database stayed locked"), "\(relay.errorLog)")
            #expect(!relay.errorLog.contains("unexpected error"), "\(relay.errorLog)")

            input.fileHandleForWriting.write(Data("COMMIT;\n.quit\n".utf8))
            try input.fileHandleForWriting.close()
            holder.waitUntilExit()
            #expect(try await bob.send([4, 5, 6], on: relay).status == 204)
            #expect(try await RawHTTP(relay).mailbox(token: bob.token).map(\.envelope.bytes) == [[4, 5, 6]])
        }
    }

    @Test("errors are named by what ran out", arguments: [
        (ENOSPC, "storage_full"), (EDQUOT, "storage_full"), (EROFS, "storage_read_only"),
        (EMFILE, "too_many_open_files"), (ENFILE, "too_many_open_files"),
    ])
    func classification(_ code: Int32, _ expected: String) {
        #expect(StorageFault.of(POSIXError(POSIXErrorCode(rawValue: code)!))?.rawValue == expected)
        #expect(StorageFault.of(NSError(domain: NSPOSIXErrorDomain, code: Int(code)))?.rawValue == expected)
        #expect(StorageFault.of(CocoaError(.fileWriteUnknown, userInfo: [NSUnderlyingErrorKey: NSError(domain: NSPOSIXErrorDomain, code: Int(code))]))?.rawValue == expected)
        #expect(StorageFault.of(FixtureError("a bug")) == nil, "anything else stays a 500")
    }
}
