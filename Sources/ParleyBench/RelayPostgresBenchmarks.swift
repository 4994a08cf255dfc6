import Foundation
import ParleyClient
import ParleyCrypto
import ParleyRelayAPI
import ParleyTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// The relay on PostgreSQL beside the relay on SQLite, measured in the same run (issue #23): `parley-relay
/// serve` child processes (the binary beside parley-bench) on loopback, rate limits off, and one private
/// PostgreSQL 15 cluster (`PostgresCluster`, Debian's package: `initdb` in a temporary directory, a Unix
/// socket, PostgreSQL's durable defaults: fsync and synchronous_commit on) for the PostgreSQL relays.
///
/// Three set-ups, one after the other: `sqlite` (one relay, its SQLite file, synchronous=FULL), `postgres_1`
/// (one node) and `postgres_3` (three nodes on one database, serving one relay name). The clients are this
/// process: raw relay calls (no end-to-end encryption: the relay never sees any), 600-byte envelopes
/// posted without a token, as a sealed-sender client posts; every recipient holds a push connection and, on
/// each wake, fetches its mailbox and acknowledges what it fetched (pages of up to 100) until it is empty.
/// With three nodes, recipient r's push connection is on node r mod 3 and every message to it is posted
/// through another node.
///
///   relay_pg_throughput  closed loop: `senders` concurrent senders post for `throughputSeconds`, then
///                        every message is waited for until fetched and acknowledged. messages/s = posted /
///                        (last acknowledgement − start). CPU per message = CPU time of the relay processes
///                        (/proc/PID/stat utime+stime) over the same interval / messages; for PostgreSQL
///                        also that of the whole cluster (the postmaster and all its children — backends,
///                        WAL writer, checkpointer, autovacuum — live ones' utime+stime plus the
///                        postmaster's cutime+cstime, which holds the CPU of children that exited)
///   relay_pg_wake        open loop at `wakeRate` messages/s for `wakeSeconds` over `wakeRecipients`
///                        recipients: the delay from the start of a send (and from its answer, the
///                        acceptance) to the recipient's push connection reading the wake; then again at
///                        `wakeLowRate`, a rate the relays carry on a busy machine: the wake's own delay
///                        without the queueing of a relay past its capacity
///   relay_pg_summary     the ratios of CPU per message, PostgreSQL over SQLite, and the targets; for a
///                        target missed, what dominates (`*_dominant`)
///
/// Overrides from PARLEY_BENCH_RELAY_PG="key=value,…": throughput_seconds, senders, recipients, wake_rate,
/// wake_seconds, wake_recipients, wake_low_rate (0: no second open loop); commit_delay_us and commit_siblings
/// set PostgreSQL's group commit (its defaults: none) for a run that measures it.
struct RelayPostgresBenchmarks {
    static let cpuRatioTarget = 2.0      // PostgreSQL CPU per message over SQLite's, at most
    static let wakeP99TargetMs = 20.0    // cross-node wake p99 at 1,000 messages/s, at most

    // Two senders and four recipients: with a dozen requests at once the SQLite relay stopped answering on
    // a 2-core machine (both cooperative threads blocked waiting for a GRDB reader, an open relay bug),
    // and the comparison needs it.
    var throughputSeconds = 5.0
    var senders = 2
    var recipients = 4
    var wakeRate = 1_000.0
    var wakeLowRate = 200.0
    var commitDelayMicroseconds = 0
    var commitSiblings = 0
    var wakeSeconds = 5.0
    var wakeRecipients = 20
    static let envelopeBytes = 600
    /// The relay name every node serves.
    static let relayName = "relay.bench"

    init(environment: [String: String] = ProcessInfo.processInfo.environment) {
        for (key, value) in benchOverrides("PARLEY_BENCH_RELAY_PG", in: environment) where value > 0 || key == "wake_low_rate" {
            switch key {
            case "throughput_seconds": throughputSeconds = value
            case "senders": senders = max(1, Int(value))
            case "recipients": recipients = max(1, Int(value))
            case "wake_rate": wakeRate = value
            case "wake_low_rate": wakeLowRate = value
            case "commit_delay_us": commitDelayMicroseconds = Int(value)
            case "commit_siblings": commitSiblings = Int(value)
            case "wake_seconds": wakeSeconds = value
            case "wake_recipients": wakeRecipients = max(1, Int(value))
            default: continue
            }
        }
    }

    /// What one set-up measured.
    struct Figures {
        var perSecond = Double.nan
        var relayCPUPerMessageMs = Double.nan
        /// Relay processes plus the PostgreSQL cluster; the relay's alone for SQLite.
        var totalCPUPerMessageMs = Double.nan
        var wakeP99Ms = Double.nan
        var wakeLowRateP99Ms = Double.nan
        /// CPU per message in the open loop at `wakeLowRate`: every set-up at the same rate.
        var lowRateRelayCPUPerMessageMs = Double.nan
        var lowRateTotalCPUPerMessageMs = Double.nan
        var complete = false
        /// The open loop at `wakeRate`, for saying what made its wake-ups late.
        var wake: WakeParts?
    }

    /// Where the open loop's time and CPU went.
    struct WakeParts {
        var sendP99Ms: Double
        var fromAcceptedP99Ms: Double
        var attributable: Bool
        var delivered: Int
        var messages: Int
        var coresNeeded: Double
    }

    /// A target's figure, its limit (a maximum) and whether it was met, for the summary line of the run.
    typealias TargetFigure = (name: String, value: Double, limit: Double, ok: Bool)

    /// The targets' figures (none when PostgreSQL is missing).
    func run() async -> [TargetFigure] {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-bench-relay-pg-\(UUID().uuidString)").path
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let cluster: PostgresCluster
        do {
            cluster = try await PostgresCluster.startPrivate(durable: true)
        } catch {
            var line = JSONLine(name: "relay_postgres")
            line.add("skipped", .bool(true))
            line.add("reason", .string("\(error)"))
            print(line.text)
            return []
        }
        defer { cluster.destroy() }
        // The time PostgreSQL spends waiting for WAL flushes (pg_stat_wal.wal_sync_time), for the report.
        _ = try? cluster.psql("ALTER SYSTEM SET track_wal_io_timing = on")
        // Planning time per statement beside execution time (what named prepared statements save).
        _ = try? cluster.psql("ALTER SYSTEM SET pg_stat_statements.track_planning = on")
        if commitDelayMicroseconds > 0 { _ = try? cluster.psql("ALTER SYSTEM SET commit_delay = \(commitDelayMicroseconds)") }
        if commitSiblings > 0 { _ = try? cluster.psql("ALTER SYSTEM SET commit_siblings = \(commitSiblings)") }
        _ = try? cluster.psql("SELECT pg_reload_conf()")
        // Statements (each one round trip between a relay and the database), counted cluster-wide.
        _ = try? cluster.psql("CREATE EXTENSION IF NOT EXISTS pg_stat_statements")
        var figures: [String: Figures] = [:]
        for setup in ["sqlite", "postgres_1", "postgres_3"] {
            do {
                figures[setup] = try await measure(setup, cluster: cluster, directory: directory + "/" + setup)
            } catch {
                var line = JSONLine(name: "relay_pg_error")
                line.add("setup", .string(setup))
                line.add("error", .string("\(error)"))
                print(line.text)
            }
        }
        return summarise(figures)
    }

    private func summarise(_ figures: [String: Figures]) -> [TargetFigure] {
        var targets: [TargetFigure] = []
        var line = JSONLine(name: "relay_pg_summary")
        let sqlite = figures["sqlite"] ?? Figures()
        var allOk = true
        for setup in ["postgres_1", "postgres_3"] {
            let pg = figures[setup] ?? Figures()
            let total = pg.totalCPUPerMessageMs / sqlite.totalCPUPerMessageMs
            let relayOnly = pg.relayCPUPerMessageMs / sqlite.relayCPUPerMessageMs
            line.add("\(setup)_msgs_per_s", .number(pg.perSecond))
            line.add("\(setup)_cpu_ratio", .number(total))
            line.add("\(setup)_relay_only_cpu_ratio", .number(relayOnly))
            line.add("\(setup)_cpu_ratio_ok", .bool(total <= Self.cpuRatioTarget))
            if !(total <= Self.cpuRatioTarget) { line.add("\(setup)_cpu_dominant", .string(cpuDominant(pg, sqlite))) }
            allOk = allOk && total <= Self.cpuRatioTarget
            targets.append(("relay_\(setup)_cpu_ratio", total, Self.cpuRatioTarget, total <= Self.cpuRatioTarget))
            if wakeLowRate > 0 {
                // The closed loop's PostgreSQL runs carry fewer messages a second than SQLite's (each send waits
                // for its commit's flush), so the CPU of idle work weighs more on each of their messages; at one
                // rate for all, it weighs the same.
                line.add("\(setup)_cpu_ratio_at_\(Int(wakeLowRate))_per_s", .number(pg.lowRateTotalCPUPerMessageMs / sqlite.lowRateTotalCPUPerMessageMs))
                line.add("\(setup)_relay_only_cpu_ratio_at_\(Int(wakeLowRate))_per_s",
                         .number(pg.lowRateRelayCPUPerMessageMs / sqlite.lowRateRelayCPUPerMessageMs))
            }
        }
        line.add("sqlite_msgs_per_s", .number(sqlite.perSecond))
        line.add("cpu_ratio_target", .number(Self.cpuRatioTarget))
        let wake = figures["postgres_3"]?.wakeP99Ms ?? .nan
        let wakeOk = figures["postgres_3"]?.complete == true && wake <= Self.wakeP99TargetMs
        line.add("cross_node_wake_p99_ms", .number(wake))
        line.add("cross_node_wake_p99_target_ms", .number(Self.wakeP99TargetMs))
        line.add("cross_node_wake_p99_ok", .bool(wakeOk))
        if !wakeOk { line.add("cross_node_wake_dominant", .string(wakeDominant(figures["postgres_3"]?.wake))) }
        if wakeLowRate > 0 {
            line.add("cross_node_wake_p99_ms_at_\(Int(wakeLowRate))_per_s", .number(figures["postgres_3"]?.wakeLowRateP99Ms ?? .nan))
            line.add("sqlite_wake_p99_ms_at_\(Int(wakeLowRate))_per_s", .number(figures["sqlite"]?.wakeLowRateP99Ms ?? .nan))
        }
        targets.append(("relay_postgres_cross_node_wake_p99_ms", wake, Self.wakeP99TargetMs, wakeOk))
        line.add("all_ok", .bool(allOk && wakeOk))
        line.add("description", .string("cpu_ratio: CPU per message of the relay nodes and the whole PostgreSQL cluster over that of the SQLite relay process, in the closed-loop runs of this process; relay_only_cpu_ratio: the relay nodes' CPU alone over the SQLite relay's; cross_node_wake: from the start of a send through one node to the wake on the recipient's push connection on another, postgres_3 at \(Int(wakeRate)) messages/s; *_at_\(Int(wakeLowRate))_per_s: the same from the open loops at \(Int(wakeLowRate)) messages/s, every set-up at one rate"))
        if let load = loadAverage() { line.add("loadavg_1m", .number(load)) }
        print(line.text)
        return targets
    }

    /// What makes a PostgreSQL set-up's CPU per message miss the target: the larger of its two parts, the
    /// relay nodes' and the cluster's, each beside what the SQLite relay spends.
    private func cpuDominant(_ pg: Figures, _ sqlite: Figures) -> String {
        let relay = pg.relayCPUPerMessageMs, postgres = pg.totalCPUPerMessageMs - pg.relayCPUPerMessageMs
        guard relay.isFinite, postgres.isFinite, sqlite.totalCPUPerMessageMs.isFinite else { return "not measured" }
        let parts = String(format: "relay nodes %.2f ms/msg (%.1fx the SQLite relay's %.2f), PostgreSQL %.2f ms/msg", relay,
                           relay / sqlite.relayCPUPerMessageMs, sqlite.relayCPUPerMessageMs, postgres)
        return (relay >= postgres ? "the relay nodes: " : "PostgreSQL: ") + parts
    }

    /// What makes the cross-node wake miss its target: messages not delivered, relays past their capacity
    /// (sends queue, and a wake stands for several messages), the send's answer (its durable commit), or
    /// the way from the commit to the push connection.
    private func wakeDominant(_ parts: WakeParts?) -> String {
        guard let parts else { return "not measured" }
        if parts.delivered < parts.messages { return "not every message was delivered (\(parts.delivered) of \(parts.messages))" }
        let cores = ProcessInfo.processInfo.activeProcessorCount
        if !parts.attributable {
            return String(format: "relays past their capacity at %.0f messages/s: sends queued (send p99 %.0f ms); carrying the rate takes %.2f cores of %d, load %.1f",
                          wakeRate, parts.sendP99Ms, parts.coresNeeded, cores, loadAverage() ?? .nan)
        }
        return parts.sendP99Ms >= parts.fromAcceptedP99Ms
            ? String(format: "the send's answer (its durable commit): send p99 %.1f ms, wake p99 after the answer %.1f ms", parts.sendP99Ms, parts.fromAcceptedP99Ms)
            : String(format: "from the answer to the wake (NOTIFY, the listening node, the push connection): p99 %.1f ms, send p99 %.1f ms",
                     parts.fromAcceptedP99Ms, parts.sendP99Ms)
    }

    // MARK: One set-up

    private func measure(_ setup: String, cluster: PostgresCluster, directory: String) async throws -> Figures {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let nodeCount = setup == "postgres_3" ? 3 : 1
        var arguments: [String] = []
        if setup != "sqlite" {
            try cluster.psql("CREATE DATABASE bench_\(setup)")
            arguments = ["--database", cluster.url(database: "bench_\(setup)")]
        }
        var nodes: [ChildRelay] = []
        defer { for node in nodes { node.stop() } }
        for _ in 0..<nodeCount {
            nodes.append(try await ChildRelay.start(directory: directory, name: Self.relayName, arguments: arguments))
        }
        let postgres = setup == "sqlite" ? nil : cluster
        let world = try await LoadWorld.start(nodes: nodes, recipients: max(recipients, wakeRecipients))
        defer { world.stop() }

        // The CPU the set-up spends doing nothing (push connections open, no messages): what a message's
        // share of it is depends on the rate.
        let idleMeter = CPUMeter(relays: nodes.map(\.pid), postgres: postgres)
        let idleStart = Measure.now()
        try await Task.sleep(for: .seconds(2))
        let idle = idleMeter.figures(since: idleStart)

        var figures = Figures()
        let throughput = await world.closedLoop(senders: senders, recipients: recipients, seconds: throughputSeconds, postgres: postgres)
        figures.perSecond = throughput.perSecond
        figures.relayCPUPerMessageMs = throughput.relayCPUPerMessageMs
        figures.totalCPUPerMessageMs = throughput.totalCPUPerMessageMs
        var line = JSONLine(name: "relay_pg_throughput")
        line.add("setup", .string(setup))
        line.add("nodes", .int(nodeCount))
        throughput.add(to: &line)
        line.add("idle_relay_cpu_ms_per_s", .number(idle.relayCPUSeconds / idle.seconds * 1e3))
        if let postgresIdle = idle.postgresCPUSeconds { line.add("idle_postgres_cpu_ms_per_s", .number(postgresIdle / idle.seconds * 1e3)) }
        line.add("senders", .int(senders))
        line.add("recipients", .int(recipients))
        describe(setup, &line)
        print(line.text)
        if let postgres { printStatements(of: postgres, setup: setup, messages: throughput.messages) }

        let wake = wakeLine(await world.openLoop(rate: wakeRate, seconds: wakeSeconds, recipients: wakeRecipients, postgres: postgres),
                            rate: wakeRate, setup: setup, nodeCount: nodeCount)
        figures.wakeP99Ms = wake.p99
        figures.complete = wake.complete
        figures.wake = wake.parts
        if wakeLowRate > 0 {
            let low = await world.openLoop(rate: wakeLowRate, seconds: wakeSeconds, recipients: wakeRecipients, postgres: postgres)
            figures.wakeLowRateP99Ms = wakeLine(low, rate: wakeLowRate, setup: setup, nodeCount: nodeCount).p99
            figures.lowRateRelayCPUPerMessageMs = low.load.relayCPUPerMessageMs
            figures.lowRateTotalCPUPerMessageMs = low.load.totalCPUPerMessageMs
        }
        return figures
    }

    /// Prints one open loop's line; its p99 from the start of a send, and whether it counts (complete and
    /// attributable).
    private func wakeLine(_ wake: LoadWorld.WakeRun, rate: Double, setup: String, nodeCount: Int) -> (p99: Double, complete: Bool, parts: WakeParts) {
        // A wake stands for every message to its device that started before it: the figures mean something
        // only while sends to one device do not overlap, i.e. a send takes less than the time between two
        // messages to the same recipient. Past that (the relay cannot carry the rate) they are not reported
        // as met.
        let attributable = wake.sendMs.p99 < Double(wakeRecipients) / rate * 1e3
        let complete = wake.load.complete && attributable
        var line = JSONLine(name: "relay_pg_wake")
        line.add("setup", .string(setup))
        line.add("nodes", .int(nodeCount))
        line.add("cross_node", .bool(nodeCount > 1))
        line.add("offered_per_s", .number(rate))
        line.add("p50_ms", .number(wake.fromStartMs.p50))
        line.add("p90_ms", .number(wake.fromStartMs.p90))
        line.add("p99_ms", .number(wake.fromStartMs.p99))
        line.add("max_ms", .number(wake.fromStartMs.max))
        line.add("attributable", .bool(attributable))
        if nodeCount > 1 {
            line.add("p99_target", .number(Self.wakeP99TargetMs))
            line.add("p99_ok", .bool(complete && wake.fromStartMs.p99 <= Self.wakeP99TargetMs))
        }
        line.add("from_accepted_p50_ms", .number(wake.fromAcceptedMs.p50))
        line.add("from_accepted_p99_ms", .number(wake.fromAcceptedMs.p99))
        line.add("woken_before_accepted", .int(wake.wokenBeforeAccepted))
        line.add("send_p50_ms", .number(wake.sendMs.p50))
        line.add("send_p99_ms", .number(wake.sendMs.p99))
        line.add("not_woken", .int(wake.notWoken))
        wake.load.add(to: &line)
        line.add("recipients", .int(wakeRecipients))
        // What carrying the offered rate takes: the CPU of relays, database and this process per message
        // times the rate, in cores, beside the cores there are and the load average (other work on them).
        let cpuPerMessageMs = wake.load.totalCPUPerMessageMs + wake.load.benchCPUSeconds / Double(max(1, wake.load.messages)) * 1e3
        let coresNeeded = cpuPerMessageMs * rate / 1e3
        line.add("cores_needed_at_offered_rate", .number(coresNeeded))
        line.add("description", .string("open loop; p*_ms from the start of a send (POST /v1/messages through node i) to the wake read on the recipient's push connection (on node i+1 mod nodes); from_accepted_*: from the sender reading the 200 answer, negative when the wake came first; attributable: sends to one recipient did not overlap (send p99 under recipients/rate), else the relay did not carry the rate and the delays mean little; cores_needed_at_offered_rate: CPU per message of relays, PostgreSQL and the bench's clients times the offered rate (past cores minus the load of other work, the machine cannot carry the rate)"))
        describe(setup, &line)
        print(line.text)
        return (wake.fromStartMs.p99, complete, WakeParts(sendP99Ms: wake.sendMs.p99, fromAcceptedP99Ms: wake.fromAcceptedMs.p99, attributable: attributable,
                                                          delivered: wake.load.delivered, messages: wake.load.messages, coresNeeded: coresNeeded))
    }

    /// The statements the closed loop ran, most frequent first, per message: what a message costs in round
    /// trips, and the backend's time in them (wall time of planning and of execution, waits included;
    /// parameters are `$n`: no data of the bench's accounts is in the text).
    private func printStatements(of cluster: PostgresCluster, setup: String, messages: Int) {
        guard let text = try? cluster.psql("""
            SELECT calls || E'\t' || plans || E'\t' || round(total_plan_time::numeric, 3) || E'\t' || round(total_exec_time::numeric, 3)
              || E'\t' || left(regexp_replace(query, '\\s+', ' ', 'g'), 100) FROM pg_stat_statements
            WHERE query NOT LIKE '%pg_stat_statements%' AND query NOT LIKE '%pg_stat_database%' ORDER BY calls DESC LIMIT 12
            """) else { return }
        var line = JSONLine(name: "relay_pg_statements")
        line.add("setup", .string(setup))
        let perMessage = Double(max(1, messages))
        for (rank, row) in text.split(separator: "\n").enumerated() {
            let fields = row.split(separator: "\t", maxSplits: 4)
            guard fields.count == 5, let calls = Double(fields[0]), let plans = Double(fields[1]), let planMs = Double(fields[2]),
                  let execMs = Double(fields[3]) else { continue }
            line.add("s\(rank + 1)_per_msg", .number(calls / perMessage))
            line.add("s\(rank + 1)_plans_per_msg", .number(plans / perMessage))
            line.add("s\(rank + 1)_plan_ms_per_msg", .number(planMs / perMessage))
            line.add("s\(rank + 1)_exec_ms_per_msg", .number(execMs / perMessage))
            line.add("s\(rank + 1)", .string(String(fields[4])))
        }
        print(line.text)
    }

    private func describe(_ setup: String, _ line: inout JSONLine) {
        line.add("storage", .string(setup == "sqlite" ? "SQLite file, synchronous=FULL" : "PostgreSQL 15, private cluster on a Unix socket, fsync and synchronous_commit on"
                 + (commitDelayMicroseconds > 0 ? ", commit_delay \(commitDelayMicroseconds) us, commit_siblings \(commitSiblings > 0 ? commitSiblings : 5)" : "")))
        line.add("cores", .int(ProcessInfo.processInfo.activeProcessorCount))
        if let load = loadAverage() { line.add("loadavg_1m", .number(load)) }
    }
}

// MARK: Load

/// Percentiles of a set of milliseconds.
struct Spread {
    var p50 = Double.nan, p90 = Double.nan, p99 = Double.nan, max = Double.nan
    init(_ values: [Double]) {
        let sorted = values.sorted()
        p50 = RelayBenchmarks.percentile(sorted, 0.5)
        p90 = RelayBenchmarks.percentile(sorted, 0.9)
        p99 = RelayBenchmarks.percentile(sorted, 0.99)
        max = sorted.last ?? .nan
    }
}

/// What one load measured: messages, time and CPU.
struct LoadFigures {
    var messages = 0
    var delivered = 0
    var sendErrors = 0
    var firstError: String?
    var seconds = 0.0
    var relayCPUSeconds = 0.0
    var postgresCPUSeconds: Double?
    var benchCPUSeconds = 0.0
    var postgresCommits: Double?
    var postgresStatements: Double?
    var postgresWALSyncs: Double?
    var postgresWALSyncMs: Double?
    var complete: Bool { sendErrors == 0 && delivered == messages }
    var perSecond: Double { seconds > 0 ? Double(delivered) / seconds : .nan }
    var relayCPUPerMessageMs: Double { relayCPUSeconds / Double(max(1, messages)) * 1e3 }
    var totalCPUPerMessageMs: Double { (relayCPUSeconds + (postgresCPUSeconds ?? 0)) / Double(max(1, messages)) * 1e3 }

    func add(to line: inout JSONLine) {
        line.add("messages", .int(messages))
        line.add("delivered", .int(delivered))
        line.add("send_errors", .int(sendErrors))
        if let firstError { line.add("first_send_error", .string(firstError)) }
        line.add("seconds", .number(seconds))
        line.add("msgs_per_s", .number(perSecond))
        line.add("relay_cpu_ms_per_msg", .number(relayCPUPerMessageMs))
        if let postgresCPUSeconds {
            line.add("postgres_cpu_ms_per_msg", .number(postgresCPUSeconds / Double(max(1, messages)) * 1e3))
            line.add("total_cpu_ms_per_msg", .number(totalCPUPerMessageMs))
        }
        if let postgresCommits { line.add("postgres_commits_per_msg", .number(postgresCommits / Double(max(1, messages)))) }
        if let postgresStatements { line.add("postgres_statements_per_msg", .number(postgresStatements / Double(max(1, messages)))) }
        if let postgresWALSyncs { line.add("postgres_wal_syncs_per_msg", .number(postgresWALSyncs / Double(max(1, messages)))) }
        if let postgresWALSyncMs {
            line.add("postgres_wal_sync_ms_per_msg", .number(postgresWALSyncMs / Double(max(1, messages))))
            line.add("postgres_wal_sync_ms_per_sync", .number(postgresWALSyncMs / max(1, postgresWALSyncs ?? 1)))
        }
        line.add("bench_cpu_ms_per_msg", .number(benchCPUSeconds / Double(max(1, messages)) * 1e3))
    }
}

/// The relay nodes and the recipients (push connection, fetch and acknowledge), and the loads offered.
final class LoadWorld: @unchecked Sendable {
    struct Recipient {
        let address: String
        let deviceKey: [UInt8]
        /// The node holding its push connection.
        let node: Int
    }

    let nodes: [ChildRelay]
    let clients: [RelayClient]
    let recipients: [Recipient]
    private let drains: [Drain]
    private var listeners: [Task<Void, Never>] = []
    private var drainers: [Task<Void, Never>] = []
    let ledger = Ledger()

    private init(nodes: [ChildRelay], clients: [RelayClient], recipients: [Recipient], drains: [Drain]) {
        self.nodes = nodes
        self.clients = clients
        self.recipients = recipients
        self.drains = drains
    }

    static func start(nodes: [ChildRelay], recipients count: Int) async throws -> LoadWorld {
        let clients = try nodes.map { try RelayClient(endpoint: try RelayEndpoint(relay: $0.listen)) }
        let accounts = try await nodes[0].registerAccounts(count, prefix: "r")
        let recipients = accounts.enumerated().map { Recipient(address: $0.element.address, deviceKey: $0.element.deviceKey, node: $0.offset % nodes.count) }
        let drains = accounts.map { _ in Drain() }
        let world = LoadWorld(nodes: nodes, clients: clients, recipients: recipients, drains: drains)
        let connected = Counter()
        let ledger = world.ledger
        for (index, account) in accounts.enumerated() {
            let drain = drains[index], node = recipients[index].node, token = account.token
            let once = OnceFlag()
            world.listeners.append(Task {
                await PushListener(endpoint: clients[node].endpoint, token: { token }, onWake: {
                    ledger.woken(index, at: Measure.now())
                    drain.poke()
                }, onState: { state in
                    if state == .connected, once.setIfUnset() { connected.add() }
                }).run()
            })
            let client = clients[node]
            world.drainers.append(Task {
                for await _ in drain.pokes {
                    let acknowledged = await Self.empty(mailboxOf: token, through: client)
                    ledger.acknowledged(acknowledged)
                }
            })
        }
        for _ in 0..<600 where connected.value < accounts.count { try await Task.sleep(for: .milliseconds(50)) }
        guard connected.value == accounts.count else { throw BenchError("only \(connected.value) of \(accounts.count) push connections opened") }
        return world
    }

    /// Fetches and acknowledges until the mailbox is empty; how many envelopes were acknowledged.
    private static func empty(mailboxOf token: String, through client: RelayClient) async -> Int {
        var count = 0
        do {
            var page = try await client.fetch(limit: 100, token: token)
            while !page.messages.isEmpty {
                count += page.messages.count
                guard let next = try await client.acknowledge(page.messages.map(\.id), fetch: 100, token: token) else { break }
                page = next
            }
        } catch {
            // Counted as not delivered; the next wake tries again.
        }
        return count
    }

    func stop() {
        for task in listeners + drainers { task.cancel() }
        for drain in drains { drain.finish() }
    }

    private func envelope(to recipient: Recipient) -> SendRequest {
        SendRequest(messages: [OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(recipient.deviceKey),
                                               envelope: Base64Bytes([UInt8](repeating: 0x5A, count: RelayPostgresBenchmarks.envelopeBytes)))])
    }

    /// The node a message to `recipient` is posted through: another than the one holding its push connection.
    private func sendingNode(for recipient: Recipient) -> Int { (recipient.node + 1) % nodes.count }

    // MARK: Closed loop

    func closedLoop(senders: Int, recipients count: Int, seconds: Double, postgres: PostgresCluster?) async -> LoadFigures {
        let ledger = ledger
        ledger.reset()
        let meter = CPUMeter(relays: nodes.map(\.pid), postgres: postgres)
        let start = Measure.now()
        let end = start + UInt64(seconds * 1e9)
        let next = Counter()
        let errors = ErrorLog()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<senders {
                group.addTask {
                    while Measure.now() < end {
                        let index = next.next()
                        let recipient = self.recipients[index % count]
                        do {
                            try await self.clients[self.sendingNode(for: recipient)].send(self.envelope(to: recipient), to: recipient.address)
                        } catch {
                            errors.add(error)
                        }
                    }
                }
            }
        }
        let posted = next.value - errors.count
        let deadline = Measure.now() + 30_000_000_000
        while ledger.acknowledgedCount < posted && Measure.now() < deadline { try? await Task.sleep(for: .milliseconds(2)) }
        var figures = meter.figures(since: start)
        figures.messages = next.value
        figures.delivered = ledger.acknowledgedCount
        figures.sendErrors = errors.count
        figures.firstError = errors.first
        try? await Task.sleep(for: .milliseconds(300))
        return figures
    }

    // MARK: Open loop

    struct WakeRun {
        var load = LoadFigures()
        var fromStartMs = Spread([])
        var fromAcceptedMs = Spread([])
        var sendMs = Spread([])
        var wokenBeforeAccepted = 0
        var notWoken = 0
    }

    /// `rate` messages/s for `seconds`, message i to recipient i mod `count`, each send a task of its own
    /// started at its scheduled time.
    func openLoop(rate: Double, seconds: Double, recipients count: Int, postgres: PostgresCluster?) async -> WakeRun {
        let ledger = ledger
        let total = max(1, Int(rate * seconds))
        ledger.reset(messages: total, recipients: recipients.count)
        let errors = ErrorLog()
        let meter = CPUMeter(relays: nodes.map(\.pid), postgres: postgres)
        let start = Measure.now() + 2_000_000
        let interval = 1e9 / rate
        var sends: [Task<Void, Never>] = []
        sends.reserveCapacity(total)
        for i in 0..<total {
            let due = start + UInt64(Double(i) * interval)
            let now = Measure.now()
            if due > now + 100_000 { try? await Task.sleep(nanoseconds: due - now) }
            let recipientIndex = i % count
            let recipient = recipients[recipientIndex]
            let client = clients[sendingNode(for: recipient)]
            let request = envelope(to: recipient)
            sends.append(Task {
                ledger.started(i, recipient: recipientIndex, at: Measure.now())
                do {
                    try await client.send(request, to: recipient.address)
                    ledger.accepted(i, at: Measure.now())
                } catch {
                    errors.add(error)
                }
            })
        }
        for send in sends { await send.value }
        let posted = total - errors.count
        let deadline = Measure.now() + 30_000_000_000
        while ledger.acknowledgedCount < posted && Measure.now() < deadline { try? await Task.sleep(for: .milliseconds(2)) }
        var run = WakeRun()
        run.load = meter.figures(since: start)
        run.load.messages = total
        run.load.delivered = ledger.acknowledgedCount
        run.load.sendErrors = errors.count
        run.load.firstError = errors.first
        let delays = ledger.delays()
        run.fromStartMs = Spread(delays.fromStart)
        run.fromAcceptedMs = Spread(delays.fromAccepted)
        run.sendMs = Spread(delays.send)
        run.wokenBeforeAccepted = delays.fromAccepted.filter { $0 < 0 }.count
        run.notWoken = delays.notWoken
        try? await Task.sleep(for: .milliseconds(300))
        return run
    }
}

/// One recipient's pending drain: wakes coalesce into one.
final class Drain: Sendable {
    let pokes: AsyncStream<Void>
    private let continuation: AsyncStream<Void>.Continuation
    init() { (pokes, continuation) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1)) }
    func poke() { continuation.yield() }
    func finish() { continuation.finish() }
}

/// Acknowledged envelopes, and for the open loop each message's start, acceptance and wake (CLOCK_MONOTONIC
/// ns). A wake read on a recipient's push connection is the wake of every message to it that started
/// before and was not woken yet (a wake stands for all mail queued when it was sent).
final class Ledger: @unchecked Sendable {
    private let lock = ParleyCrypto.Lock()
    private var acknowledged = 0
    private var startedAt: [UInt64] = []
    private var acceptedAt: [UInt64] = []
    private var wokenAt: [UInt64] = []
    private var waiting: [[Int]] = []

    func reset(messages: Int = 0, recipients: Int = 0) {
        lock.withLock {
            acknowledged = 0
            startedAt = Array(repeating: 0, count: messages)
            acceptedAt = Array(repeating: 0, count: messages)
            wokenAt = Array(repeating: 0, count: messages)
            waiting = Array(repeating: [], count: recipients)
        }
    }

    func acknowledged(_ count: Int) { lock.withLock { acknowledged += count } }
    var acknowledgedCount: Int { lock.withLock { acknowledged } }

    func started(_ message: Int, recipient: Int, at time: UInt64) {
        lock.withLock {
            guard message < startedAt.count, recipient < waiting.count else { return }
            startedAt[message] = time
            waiting[recipient].append(message)
        }
    }

    func accepted(_ message: Int, at time: UInt64) { lock.withLock { if message < acceptedAt.count { acceptedAt[message] = time } } }

    func woken(_ recipient: Int, at time: UInt64) {
        lock.withLock {
            guard recipient < waiting.count, !waiting[recipient].isEmpty else { return }
            var still: [Int] = []
            for message in waiting[recipient] {
                if startedAt[message] < time { wokenAt[message] = time } else { still.append(message) }
            }
            waiting[recipient] = still
        }
    }

    func delays() -> (fromStart: [Double], fromAccepted: [Double], send: [Double], notWoken: Int) {
        lock.withLock {
            var fromStart: [Double] = [], fromAccepted: [Double] = [], send: [Double] = []
            var notWoken = 0
            for message in startedAt.indices where startedAt[message] != 0 {
                if acceptedAt[message] != 0 { send.append(Double(acceptedAt[message] - startedAt[message]) / 1e6) }
                guard wokenAt[message] != 0 else { notWoken += 1; continue }
                fromStart.append(Double(wokenAt[message] - startedAt[message]) / 1e6)
                if acceptedAt[message] != 0 { fromAccepted.append(Double(Int64(wokenAt[message]) - Int64(acceptedAt[message])) / 1e6) }
            }
            return (fromStart, fromAccepted, send, notWoken)
        }
    }
}

final class ErrorLog: @unchecked Sendable {
    private let lock = ParleyCrypto.Lock()
    private var errors = 0
    private var firstError: String?
    func add(_ error: any Error) { lock.withLock { errors += 1; if firstError == nil { firstError = String(describing: error) } } }
    var count: Int { lock.withLock { errors } }
    var first: String? { lock.withLock { firstError } }
}

// MARK: CPU

/// CPU time of the relay processes and of a PostgreSQL cluster, read from /proc at the start and at
/// `figures(since:)`.
struct CPUMeter {
    let relays: [Int32]
    let postgres: PostgresCluster?
    private let relayStart: Double
    private let postgresStart: Double?
    private let benchStart: Double
    private let statisticsStart: Statistics?

    init(relays: [Int32], postgres: PostgresCluster?) {
        self.relays = relays
        self.postgres = postgres
        // (The per-statement breakdown printed after a run counts from here.)
        _ = try? postgres?.psql("SELECT pg_stat_statements_reset()")
        statisticsStart = postgres.flatMap(Self.statistics)
        relayStart = Self.relaySeconds(relays)
        postgresStart = postgres.flatMap(Self.clusterSeconds)
        benchStart = StoreBenchmarks.cpuSeconds()
    }

    func figures(since start: UInt64) -> LoadFigures {
        var figures = LoadFigures()
        figures.seconds = Double(Measure.now() - start) / 1e9
        figures.relayCPUSeconds = Self.relaySeconds(relays) - relayStart
        figures.benchCPUSeconds = StoreBenchmarks.cpuSeconds() - benchStart
        if let postgres, let postgresStart, let now = Self.clusterSeconds(postgres) { figures.postgresCPUSeconds = now - postgresStart }
        // (Read after the CPU: psql's own backend is not counted.)
        if let postgres, let before = statisticsStart, let after = Self.statistics(postgres) {
            figures.postgresCommits = after.commits - before.commits
            figures.postgresStatements = after.statements - before.statements
            figures.postgresWALSyncs = after.walSyncs - before.walSyncs
            figures.postgresWALSyncMs = after.walSyncMs - before.walSyncMs
        }
        return figures
    }

    private static func relaySeconds(_ pids: [Int32]) -> Double {
        pids.reduce(0) { $0 + (ProcessStat(pid: $1).map { $0.seconds } ?? 0) }
    }

    /// The postmaster with the CPU of its children that exited, plus every live child's own.
    private static func clusterSeconds(_ cluster: PostgresCluster) -> Double? {
        guard let postmaster = cluster.serverProcessIdentifier, let main = ProcessStat(pid: postmaster) else { return nil }
        var total = main.seconds + main.reapedChildrenSeconds
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let stat = ProcessStat(pid: pid), stat.parent == postmaster else { continue }
            total += stat.seconds
        }
        return total
    }

    typealias Statistics = (commits: Double, walSyncs: Double, walSyncMs: Double, statements: Double)

    /// Committed transactions (all databases), WAL flushes to disk and the milliseconds spent in them, and
    /// statements run (pg_stat_statements: top-level ones, each a round trip), from PostgreSQL's statistics.
    private static func statistics(_ cluster: PostgresCluster) -> Statistics? {
        guard let text = try? cluster.psql("""
            SELECT (SELECT sum(xact_commit) FROM pg_stat_database)::text || ' ' || wal_sync::text || ' ' || wal_sync_time::text
              || ' ' || (SELECT COALESCE(sum(calls), 0) FROM pg_stat_statements)::text FROM pg_stat_wal
            """)
        else { return nil }
        let fields = text.split(whereSeparator: { $0 == " " || $0 == "\n" }).compactMap { Double($0) }
        return fields.count == 4 ? (fields[0], fields[1], fields[2], fields[3]) : nil
    }
}

/// The fields of /proc/PID/stat this bench reads.
struct ProcessStat {
    static let ticksPerSecond = Double(sysconf(Int32(_SC_CLK_TCK)))
    let parent: Int32
    /// utime + stime.
    let seconds: Double
    /// cutime + cstime: children that exited and were waited for.
    let reapedChildrenSeconds: Double

    init?(pid: Int32) {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
              let close = text.lastIndex(of: ")") else { return nil }
        // Fields after the command name (which may hold spaces): state, ppid, …; utime is field 14 of the line.
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 14, let parent = Int32(fields[1]),
              let utime = Double(fields[11]), let stime = Double(fields[12]),
              let cutime = Double(fields[13]), let cstime = Double(fields[14]) else { return nil }
        self.parent = parent
        seconds = (utime + stime) / Self.ticksPerSecond
        reapedChildrenSeconds = (cutime + cstime) / Self.ticksPerSecond
    }
}
