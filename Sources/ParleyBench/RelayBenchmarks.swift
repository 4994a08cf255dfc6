import Foundation
import Logging
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelay
import ParleyRelayAPI
import ParleyStore
#if canImport(Glibc)
import Glibc
#endif

/// End-to-end delivery through a real relay: send → relay → wake → fetch → decrypt → durable store → ack.
///
/// The relay (`RelayServer`, SQLite storage, `PRAGMA synchronous = FULL`) runs in this process on
/// 127.0.0.1 with rate limiting off; the clients are `Engine`s over `EncryptedStore`s in a fresh
/// directory under `TMPDIR` (unlocked with key files, also `synchronous = FULL`), removed at the end. Bob
/// keeps his push channel open (`runConnection`: wake → `receivePending`); so do the senders, which
/// receive Bob's delivery receipts as a real client would.
///
/// A message's latency runs from the moment its send was scheduled (open loop: sends start at fixed
/// times whether or not earlier ones have been delivered) to the moment Bob's engine reports it filed
/// into history (`subscribe()`): decrypted, committed with its ratchet state and filed, durably; the
/// acknowledgement to the relay follows. Clocks: CLOCK_MONOTONIC, one process.
///
///   relay_costs      what single operations cost here (CPU and wall per operation): an HTTP round trip,
///                    a message POST (round trip + relay group commit), one and eight at a time, and a
///                    message sent and delivered with nothing else going on
///   relay_latency    one sender, 1,000 messages/s for `latencySeconds`: p50/p90/p99/max
///   relay_step       the ladder of offered rates (`senderCount` senders, `stepSeconds` each)
///   relay_sustained  the highest offered rate whose every message arrived with p99 latency under
///                    `sustainedP99LimitMs` (a growing backlog shows up as growing latency); a rung that
///                    fails is run once more before the ladder stops
struct RelayBenchmarks {
    struct Results {
        var p50Ms: Double?
        var p99Ms: Double?
        var sustainedPerSecond: Double?
        /// False when the latency run lost or failed to send a message (its percentiles then fail too).
        var latencyComplete = false
    }

    static let p50Target = 3.0              // ms, at most
    static let p99Target = 15.0             // ms, at most
    static let sustainedTarget = 5_000.0    // messages/s, at least

    var latencyRate = 1_000.0
    var latencySeconds = 6.0
    var stepSeconds = 4.0
    var senderCount = 4
    /// A step passes when every message arrived and p99 stayed below this: at a rate the pipeline cannot
    /// carry, the backlog, and with it the latency, grows for the whole step.
    var sustainedP99LimitMs = 250.0
    /// The ladder: from `firstRate`, ×`growth` while steps pass (up to `maxRate`), then up to three halvings
    /// of the gap between the last pass and the lowest failure.
    var firstRate = 250.0
    var growth = 1.4
    var maxRate = 30_000.0
    /// Messages sent one at a time for message_unloaded in the relay_costs line.
    var unloadedMessages = 100

    private(set) var results = Results()

    /// Overrides for profiling, from PARLEY_BENCH_RELAY="key=value,…" (latency_rate, latency_seconds,
    /// step_seconds, senders, first_rate, max_rate, growth, unloaded_messages; latency_seconds=0 or
    /// step_seconds=0 leaves that phase out).
    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        for (key, value) in benchOverrides("PARLEY_BENCH_RELAY", in: environment) {
            switch key {
            case "latency_rate": latencyRate = value
            case "latency_seconds": latencySeconds = value
            case "step_seconds": stepSeconds = value
            case "senders": senderCount = Int(value)
            case "first_rate": firstRate = value
            case "max_rate": maxRate = value
            case "growth": growth = value
            case "unloaded_messages": unloadedMessages = max(1, Int(value))
            default: continue
            }
        }
    }

    /// A copy holding the results.
    func measured() async -> RelayBenchmarks {
        var copy = self
        await copy.run()
        return copy
    }

    private mutating func run() async {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-bench-relay-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let world: BenchWorld
        do {
            world = try await BenchWorld.start(directory: directory, senders: max(1, senderCount))
        } catch {
            results.p50Ms = .nan
            var line = JSONLine(name: "relay_error")
            line.add("error", .string("set-up failed: \(error)"))
            print(line.text)
            return
        }
        await world.costs(unloadedMessages: unloadedMessages)
        if latencySeconds > 0 { await latency(world) }    // 0: skipped (profiling one phase)
        if stepSeconds > 0 { await sustained(world) }
        await world.stop()
    }

    // MARK: Latency at 1,000 messages/s

    private mutating func latency(_ world: BenchWorld) async {
        let run = await world.offer(rate: latencyRate, seconds: latencySeconds, senders: [world.senders[0]])
        let ms = run.latenciesMs.sorted()
        let p50 = Self.percentile(ms, 0.50), p99 = Self.percentile(ms, 0.99)
        results.p50Ms = p50
        results.p99Ms = p99
        results.latencyComplete = run.complete
        var line = JSONLine(name: "relay_latency")
        line.add("value", .number(p50))
        line.add("unit", .string("ms"))
        line.add("target", .number(Self.p50Target))
        line.add("target_is", .string("maximum"))
        line.add("ok", .bool(run.complete && p50 <= Self.p50Target))
        line.add("p90_ms", .number(Self.percentile(ms, 0.90)))
        line.add("p99_ms", .number(p99))
        line.add("p99_target", .number(Self.p99Target))
        line.add("p99_ok", .bool(run.complete && p99 <= Self.p99Target))
        line.add("max_ms", .number(ms.last ?? .nan))
        line.add("description", .string("send -> relay -> wake -> fetch -> decrypt -> durable commit -> ack, one sender, open loop at \(Int(latencyRate)) messages/s; latency from the scheduled send time to Bob's engine reporting the message filed"))
        add(run, to: &line)
        world.describe(&line)
        print(line.text)
    }

    // MARK: Sustained rate

    private mutating func sustained(_ world: BenchWorld) async {
        var passed: Double?
        var failed: Double?
        var rate = firstRate
        var steps = 0
        while true {
            let ok = await carried(world, rate: rate)
            steps += 1
            if ok { passed = rate } else { failed = rate }
            if !ok || rate >= maxRate { break }
            rate = min(maxRate, (rate * growth).rounded())
        }
        // Then halve the gap between the last pass and the first failure, up to three times, while it is
        // wider than 5% of the passing rate: the ladder's ×1.4 rungs alone would understate by up to 40%.
        for _ in 0..<3 {
            guard let low = passed, let high = failed, high > low * 1.05 else { break }
            let middle = ((low + high) / 2).rounded()
            if await carried(world, rate: middle) { passed = middle } else { failed = middle }
            steps += 1
        }
        results.sustainedPerSecond = passed
        var line = JSONLine(name: "relay_sustained")
        line.add("value", .number(passed ?? 0))
        line.add("unit", .string("messages/s"))
        line.add("target", .number(Self.sustainedTarget))
        line.add("target_is", .string("minimum"))
        line.add("ok", .bool((passed ?? 0) >= Self.sustainedTarget))
        line.add("description", .string("highest offered rate (open loop, \(world.senders.count) senders -> Bob, \(stepSeconds) s per step) at which every message arrived, durable on both ends, with p99 latency <= \(sustainedP99LimitMs) ms and not growing during the step; a step that fails is run once more (both relay_step lines are printed), so one stall of the machine does not end the ladder; the ladder grows by ×\(growth), then halves the gap to the lowest failed rate up to three times"))
        if let failed { line.add("lowest_failed_rate", .number(failed)) }
        line.add("steps", .int(steps))
        world.describe(&line)
        print(line.text)
    }

    /// One rung of the ladder; prints a relay_step line. A rate is carried when every message arrived,
    /// p99 stayed under the limit, and latency did not keep growing: the median of the last quarter of
    /// the messages (in send order) at most twice that of the first quarter plus 20 ms.
    /// Whether the pipeline carries `rate`: one step, and a second one if the first fails — a single stall
    /// of this shared machine (a few hundred milliseconds once) must not decide the ladder, while a rate
    /// the pipeline cannot carry fails both.
    private func carried(_ world: BenchWorld, rate: Double) async -> Bool {
        if await step(world, rate: rate) { return true }
        return await step(world, rate: rate, attempt: 2)
    }

    private func step(_ world: BenchWorld, rate: Double, attempt: Int = 1) async -> Bool {
        let run = await world.offer(rate: rate, seconds: stepSeconds, senders: world.senders)
        let ms = run.latenciesMs.sorted()
        let p99 = Self.percentile(ms, 0.99)
        let quarter = max(1, run.latenciesMs.count / 4)
        let first = Self.percentile(run.latenciesMs.prefix(quarter).sorted(), 0.5)
        let last = Self.percentile(run.latenciesMs.suffix(quarter).sorted(), 0.5)
        let growing = !(last <= 2 * first + 20)
        let ok = run.complete && p99 <= sustainedP99LimitMs && !growing
        var line = JSONLine(name: "relay_step")
        line.add("offered_per_s", .number(rate))
        line.add("attempt", .int(attempt))
        line.add("ok", .bool(ok))
        line.add("p50_ms", .number(Self.percentile(ms, 0.50)))
        line.add("p99_ms", .number(p99))
        line.add("max_ms", .number(ms.last ?? .nan))
        line.add("first_quarter_p50_ms", .number(first))
        line.add("last_quarter_p50_ms", .number(last))
        line.add("latency_growing", .bool(growing))
        add(run, to: &line)
        print(line.text)
        return ok
    }

    private func add(_ run: BenchWorld.Run, to line: inout JSONLine) {
        line.add("messages", .int(run.scheduled))
        line.add("delivered", .int(run.delivered))
        line.add("send_errors", .int(run.sendErrors))
        if let reason = run.abandoned { line.add("abandoned", .string(reason)) }
        if let error = run.firstError { line.add("first_send_error", .string(error)) }
        line.add("delivered_per_s", .number(run.deliveredPerSecond))
        line.add("send_p50_ms", .number(Self.percentile(run.sendMs.sorted(), 0.50)))
        line.add("send_p99_ms", .number(Self.percentile(run.sendMs.sorted(), 0.99)))
        line.add("seconds", .number(run.seconds))
        line.add("cpu_seconds", .number(run.cpuSeconds))
    }

    static func percentile(_ sorted: [Double], _ p: Double) -> Double {
        guard !sorted.isEmpty else { return .nan }
        let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(sorted.count - 1, max(0, rank))]
    }
}

/// The relay, Bob and the senders, and the bookkeeping of one offered load.
final class BenchWorld: @unchecked Sendable {
    let directory: String
    let relayName: String
    let bob: Engine
    let senders: [Engine]
    private let bobAddress: AccountAddress
    private let relayTask: Task<Void, any Error>
    private var connectionTasks: [Task<Void, Never>] = []
    private var eventTask: Task<Void, Never>?
    private let tracker = Tracker()

    private init(directory: String, relayName: String, bob: Engine, senders: [Engine], relayTask: Task<Void, any Error>) {
        self.directory = directory
        self.relayName = relayName
        self.bob = bob
        self.senders = senders
        self.relayTask = relayTask
        bobAddress = bob.ownAddress
    }

    static func start(directory: String, senders count: Int) async throws -> BenchWorld {
        let port = try freeLoopbackPort()
        let relayName = "127.0.0.1:\(port)"
        var configuration = RelayConfiguration(name: relayName, host: "127.0.0.1", port: port, dataDirectory: directory + "/relay")
        configuration.removeRateLimits()
        let (listening, listeningContinuation) = AsyncStream.makeStream(of: Int.self)
        let relayTask = Task {
            var logger = Logger(label: "parley-bench.relay")
            logger.logLevel = .critical
            try await RelayServer(configuration: configuration).run(logger: logger) { bound in listeningContinuation.yield(bound) }
        }
        var iterator = listening.makeAsyncIterator()
        guard await iterator.next() == port else { relayTask.cancel(); throw BenchError("the relay did not start on port \(port)") }

        let relay = try RelayClient(endpoint: try RelayEndpoint(relay: relayName))
        func account(_ name: String) async throws -> Engine {
            let path = directory + "/" + name
            try KeyFile.create(at: path + ".key")
            let store = try EncryptedStore.create(at: path + ".db", unlock: [.keyFile(path: path + ".key")])
            return try await Engine.createAccount(try AccountAddress(name + "@" + relayName), store: store, relay: relay)
        }
        let bob = try await account("bob")
        var senders: [Engine] = []
        for i in 0..<count { senders.append(try await account(i == 0 ? "alice" : "sender\(i)")) }
        for sender in senders {
            try await sender.addContact(try AccountAddress("bob@" + relayName))
            try await bob.addContact(try AccountAddress(sender.account.address))
        }
        let world = BenchWorld(directory: directory, relayName: relayName, bob: bob, senders: senders, relayTask: relayTask)
        try await world.connect()
        try await world.warmUp()
        return world
    }

    /// Opens every push channel and starts collecting Bob's events.
    private func connect() async throws {
        for engine in [bob] + senders {
            let events = await engine.subscribe()
            connectionTasks.append(Task { await engine.runConnection() })
            var iterator = events.makeAsyncIterator()
            while let event = await iterator.next() {
                if case .connection(.connected) = event { break }
            }
        }
        let events = await bob.subscribe()
        let tracker = tracker
        eventTask = Task {
            for await event in events {
                guard case .message(let record) = event, record.direction == .incoming else { continue }
                let now = Measure.now()
                let fields = record.text.split(separator: " ", maxSplits: 2)
                if fields.count >= 2, fields[0] == "bench", let seq = Int(fields[1]) { tracker.delivered(seq, at: now) }
            }
        }
    }

    /// Each sender's first messages are PreKeyMessages until Bob's delivery receipt reaches it. The
    /// sessions are started one message at a time (concurrent first sends would each start a session of
    /// their own), then a few hundred messages warm the stores and the relay.
    private func warmUp() async throws {
        for sender in senders {
            for _ in 0..<3 { _ = try await sendAndWait(sender); try await Task.sleep(for: .milliseconds(30)) }
        }
        let run = await offer(rate: 200, seconds: 1, senders: senders)
        guard run.complete else { throw BenchError("warm-up: \(run.delivered) of \(run.scheduled) delivered, \(run.firstError ?? run.abandoned ?? "")") }
    }

    /// One message, closed loop: sent, and waited for until Bob's engine reports it. Returns the wall time.
    private func sendAndWait(_ sender: Engine) async throws -> UInt64 {
        let seq = tracker.reserve(1)
        let start = Measure.now()
        tracker.scheduled(seq, at: start)
        _ = try await sender.send(text: "bench \(seq) " + Self.filler, to: bobAddress)
        tracker.sent(seq, at: Measure.now())
        let arrived = try await withThrowingTaskGroup(of: UInt64?.self) { group in
            group.addTask { [tracker] in await tracker.arrival(of: seq) }
            group.addTask { try await Task.sleep(for: .seconds(5)); return nil }
            defer { group.cancelAll() }
            return try await group.next() ?? nil
        }
        guard let arrived else { throw BenchError("message \(seq) not delivered within 5 s") }
        return arrived - start
    }

    /// The relay_costs line.
    func costs(unloadedMessages: Int) async {
        var line = JSONLine(name: "relay_costs")
        line.add("unit", .string("ms per operation, cpu = whole process"))
        func measure(_ key: String, _ count: Int, _ body: () async throws -> Void) async {
            let cpu = StoreBenchmarks.cpuSeconds(), start = Measure.now()
            do {
                try await body()
                line.add(key + "_cpu_ms", .number((StoreBenchmarks.cpuSeconds() - cpu) / Double(count) * 1e3))
                line.add(key + "_wall_ms", .number(Double(Measure.now() - start) / Double(count) / 1e6))
            } catch {
                line.add(key + "_error", .string(String(describing: error)))
            }
        }
        // What one durable commit waits for at least: the disk acknowledging a flush (4 KiB written, then
        // fdatasync, in the directory the stores live in). Three durable commits lie on a message's path.
        if let flush = Self.diskFlushMs(in: directory) { line.add("disk_flush_p50_ms", .number(flush)) }
        let relay = bob.relay
        await measure("http_get", 200) { for _ in 0..<200 { _ = try await relay.health() } }
        // Posts to a mailbox nobody reads: HTTP plus the relay's enqueue and durable commit.
        do {
            try KeyFile.create(at: directory + "/costs.key")
            let store = try EncryptedStore.create(at: directory + "/costs.db", unlock: [.keyFile(path: directory + "/costs.key")])
            let sink = try await Engine.createAccount(try AccountAddress("costs@" + relayName), store: store, relay: relay).account
            let message = SendRequest(messages: [OutgoingMessage(deviceId: sink.device.deviceId, deviceKey: Base64Bytes(sink.device.publicKey.bytes),
                                                                 envelope: Base64Bytes([UInt8](repeating: 0x5A, count: 600)))])
            await measure("post_message", 300) { for _ in 0..<300 { try await relay.send(message, to: sink.address) } }
            await measure("post_message_8_concurrent", 800) {
                try await withThrowingTaskGroup(of: Void.self) { group in
                    for _ in 0..<8 { group.addTask { for _ in 0..<100 { try await relay.send(message, to: sink.address) } } }
                    try await group.waitForAll()
                }
            }
        } catch {
            line.add("post_message_error", .string(String(describing: error)))
        }
        var walls: [Double] = []
        await measure("message_unloaded", unloadedMessages) {
            for _ in 0..<unloadedMessages { walls.append(Double(try await sendAndWait(senders[0])) / 1e6) }
        }
        walls.sort()
        line.add("message_unloaded_p50_ms", .number(RelayBenchmarks.percentile(walls, 0.5)))
        line.add("description", .string("disk_flush_p50: one fdatasync of a 4 KiB write in the bench directory (the least a durable commit waits); http_get: GET /v1/health round trip; post_message: POST /v1/messages of a 600-byte envelope (round trip, relay group commit, fsync), one at a time and 8 at a time; message_unloaded: one message at a time, send to Bob's engine reporting it filed (cpu includes receipts and everything the message causes)"))
        print(line.text)
        try? await Task.sleep(for: .milliseconds(200))
    }

    /// Median of 50 timed fdatasync calls after 4 KiB writes to a scratch file in `directory`.
    static func diskFlushMs(in directory: String) -> Double? {
        let path = directory + "/flush-probe"
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { return nil }
        defer { close(fd); unlink(path) }
        let block = [UInt8](repeating: 0x5A, count: 4096)
        var times: [Double] = []
        for i in 0..<50 {
            guard pwrite(fd, block, block.count, off_t((i % 16) * 4096)) == block.count else { return nil }
            let start = Measure.now()
            guard fdatasync(fd) == 0 else { return nil }
            times.append(Double(Measure.now() - start) / 1e6)
        }
        return RelayBenchmarks.percentile(times.sorted(), 0.5)
    }

    struct Run {
        var scheduled = 0
        var delivered = 0
        var sendErrors = 0
        var abandoned: String?
        var firstError: String?
        var latenciesMs: [Double] = []
        var sendMs: [Double] = []
        var seconds = 0.0
        var cpuSeconds = 0.0
        var deliveredPerSecond = 0.0
        var complete: Bool { abandoned == nil && sendErrors == 0 && delivered == scheduled }
    }

    /// Offers `rate` messages/s for `seconds`, round-robin over `senders`, open loop: each send starts at
    /// its scheduled time as a task of its own. Then waits for every accepted message to arrive (or for a
    /// timeout) and for the mailboxes and outboxes to settle.
    func offer(rate: Double, seconds: Double, senders: [Engine]) async -> Run {
        let count = max(1, Int(rate * seconds))
        let first = tracker.reserve(count)
        let interval = 1e9 / rate
        let cpuStart = cpuSeconds()
        let start = Measure.now() + 2_000_000
        let tracker = tracker
        let bobAddress = bobAddress
        // More than two seconds of offered load in flight at the senders: they cannot keep up.
        let inFlightLimit = max(2_000, Int(rate * 2))
        // Sends still running this long after the schedule ended are cancelled, and so is the run.
        let grace = max(3.0, seconds)
        let deadline = start + UInt64((seconds + grace) * 1e9)
        let outcome = Outcome()
        // Each send is an unstructured task, not a child of a task group: with thousands of sends in flight,
        // detaching each finished child from its group (a walk of the group's list) took 3% of the process's
        // CPU in a profile at 5,000 offered messages/s.
        let sends = SendTasks()
        await withTaskGroup(of: Void.self) { watch in
            watch.addTask {
                for i in 0..<count {
                    let due = start + UInt64(Double(i) * interval)
                    let now = Measure.now()
                    if due > now + 100_000 { try? await Task.sleep(nanoseconds: due - now) }
                    if Task.isCancelled { break }
                    if tracker.inFlight > inFlightLimit {
                        outcome.abandon("more than \(inFlightLimit) sends in flight")
                        break
                    }
                    let seq = first + i
                    let sender = senders[i % senders.count]
                    tracker.scheduled(seq, at: due)
                    outcome.scheduled += 1
                    sends.add(Task {
                        let text = "bench \(seq) " + Self.filler
                        do {
                            _ = try await sender.send(text: text, to: bobAddress)
                            tracker.sent(seq, at: Measure.now())
                        } catch {
                            tracker.failed(seq, error)
                        }
                    })
                }
                // Every send has returned (or failed).
                while tracker.inFlight > 0 && !Task.isCancelled { try? await Task.sleep(for: .milliseconds(2)) }
            }
            watch.addTask {
                let now = Measure.now()
                if deadline > now { try? await Task.sleep(nanoseconds: deadline - now) }
            }
            await watch.next()
            if Measure.now() >= deadline { outcome.abandon("sends still running \(Int(grace)) s after the schedule ended") }
            watch.cancelAll()
        }
        await sends.cancelAndWait()
        let scheduled = outcome.scheduled
        // Everything the relay accepted must arrive; allow for a backlog of a few seconds.
        while tracker.pending(first..<(first + scheduled)) > 0 && Measure.now() < deadline {
            try? await Task.sleep(for: .milliseconds(5))
        }
        var run = tracker.summary(first..<(first + scheduled))
        run.abandoned = outcome.abandoned ?? (run.delivered + run.sendErrors < run.scheduled ? "not all delivered within \(Int(grace)) s" : nil)
        run.cpuSeconds = cpuSeconds() - cpuStart
        // Let receipts and acknowledgements settle before the next measurement.
        try? await Task.sleep(for: .milliseconds(300))
        return run
    }

    /// About 90 characters of chat text after the "bench SEQ " prefix.
    private static let filler = "see you at the station at half past six, bring the tickets and an umbrella please"

    func describe(_ line: inout JSONLine) {
        line.add("relay", .string("in-process RelayServer on \(relayName), SQLite synchronous=FULL, rate limits off"))
        line.add("clients", .string("Engine + EncryptedStore (key file, synchronous=FULL), push wake -> receivePending"))
        line.add("cores", .int(ProcessInfo.processInfo.activeProcessorCount))
    }

    func stop() async {
        eventTask?.cancel()
        for task in connectionTasks { task.cancel() }
        for task in connectionTasks { await task.value }
        relayTask.cancel()
        _ = await relayTask.result
    }

    private func cpuSeconds() -> Double { StoreBenchmarks.cpuSeconds() }
}

/// The send tasks of one offered load, cancelled and awaited when it ends.
final class SendTasks: @unchecked Sendable {
    private let lock = ParleyCrypto.Lock()
    private var tasks: [Task<Void, Never>] = []
    func add(_ task: Task<Void, Never>) { lock.withLock { tasks.append(task) } }
    func cancelAndWait() async {
        let all = lock.withLock { tasks }
        for task in all { task.cancel() }
        for task in all { await task.value }
    }
}

/// What the scheduling task tells the run.
final class Outcome: @unchecked Sendable {
    private let lock = ParleyCrypto.Lock()
    private var _scheduled = 0
    private var _abandoned: String?
    var scheduled: Int {
        get { lock.withLock { _scheduled } }
        set { lock.withLock { _scheduled = newValue } }
    }
    var abandoned: String? { lock.withLock { _abandoned } }
    func abandon(_ reason: String) { lock.withLock { if _abandoned == nil { _abandoned = reason } } }
}

/// Per-message timestamps (CLOCK_MONOTONIC ns), indexed by sequence number.
final class Tracker: @unchecked Sendable {
    private let lock = ParleyCrypto.Lock()
    private var due: [UInt64] = []
    private var sentAt: [UInt64] = []
    private var arrivedAt: [UInt64] = []
    private var failedSeqs: Set<Int> = []
    private var outstanding = 0

    /// Reserves `count` sequence numbers; returns the first.
    func reserve(_ count: Int) -> Int {
        lock.withLock {
            let first = due.count
            due += Array(repeating: 0, count: count)
            sentAt += Array(repeating: 0, count: count)
            arrivedAt += Array(repeating: 0, count: count)
            return first
        }
    }

    func scheduled(_ seq: Int, at time: UInt64) { lock.withLock { due[seq] = time; outstanding += 1 } }
    func sent(_ seq: Int, at time: UInt64) { lock.withLock { sentAt[seq] = time; outstanding -= 1 } }
    func failed(_ seq: Int, _ error: any Error) {
        lock.withLock {
            failedSeqs.insert(seq)
            outstanding -= 1
            if firstError == nil { firstError = String(describing: error) }
        }
    }
    /// The first send error, for the report.
    private(set) var firstError: String?
    var inFlight: Int { lock.withLock { outstanding } }

    func delivered(_ seq: Int, at time: UInt64) {
        let waiter: CheckedContinuation<UInt64?, Never>? = lock.withLock {
            guard seq < arrivedAt.count, arrivedAt[seq] == 0 else { return nil }
            arrivedAt[seq] = time
            return waiters.removeValue(forKey: seq)
        }
        waiter?.resume(returning: time)
    }

    private var waiters: [Int: CheckedContinuation<UInt64?, Never>] = [:]

    /// When `seq` arrives (at once if it has), or nil if the task is cancelled first. One waiter per message.
    func arrival(of seq: Int) async -> UInt64? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let arrived: UInt64?? = lock.withLock {
                    if arrivedAt[seq] != 0 { return .some(arrivedAt[seq]) }
                    if Task.isCancelled { return .some(nil) }
                    waiters[seq] = continuation
                    return .none
                }
                if let arrived { continuation.resume(returning: arrived) }
            }
        } onCancel: {
            lock.withLock { waiters.removeValue(forKey: seq) }?.resume(returning: nil)
        }
    }

    func pending(_ range: Range<Int>) -> Int {
        lock.withLock { range.filter { arrivedAt[$0] == 0 && !failedSeqs.contains($0) }.count }
    }

    func summary(_ range: Range<Int>) -> BenchWorld.Run {
        lock.withLock {
            var run = BenchWorld.Run()
            run.scheduled = range.count
            run.firstError = firstError
            firstError = nil
            var lastArrival: UInt64 = 0
            for seq in range {
                if failedSeqs.contains(seq) { run.sendErrors += 1 }
                if sentAt[seq] != 0 { run.sendMs.append(Double(sentAt[seq] - due[seq]) / 1e6) }
                guard arrivedAt[seq] != 0 else { continue }
                run.delivered += 1
                run.latenciesMs.append(Double(Int64(arrivedAt[seq]) - Int64(due[seq])) / 1e6)
                lastArrival = max(lastArrival, arrivedAt[seq])
            }
            if let start = range.first.map({ due[$0] }), lastArrival > start {
                run.seconds = Double(lastArrival - start) / 1e9
                run.deliveredPerSecond = Double(run.delivered) / run.seconds
            }
            return run
        }
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// A port the kernel had free a moment ago (the relay's name, and so its accounts' addresses, must
/// contain the port before it listens).
func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { throw BenchError("socket: \(String(cString: strerror(errno)))") }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_port = 0
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } }
    guard bound == 0 else { throw BenchError("bind: \(String(cString: strerror(errno)))") }
    let named = withUnsafeMutablePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) } }
    guard named == 0 else { throw BenchError("getsockname: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}
