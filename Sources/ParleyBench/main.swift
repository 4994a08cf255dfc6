// parley-bench: each protocol operation beside the summed cost of the libsodium (and ML-KEM) primitives it
// is made of, measured in the same run; one JSON object per line, a summary object last.
//
//   parley-bench [--budget SECONDS] [--only NAME[,NAME…]] [--store-messages N] [--soak-messages N] [--mls-members N,N…]
//                [--group-devices N] [--group-adds N]
//
// --budget is the time per measurement and side (default 0.4 s); --only runs some of chain_message,
// dh_ratchet_step, pqxdh_session_start, sealed_message, primitives, store, relay, push, relay-postgres, mls, groups (for profiling
// one of them).
// mls (MLSBenchmarks.swift) times group commits, their processing and application messages at 10 to 10,000 members.
// groups (GroupBenchmarks.swift) puts a parley-relay child process under one text message to a group of
// --group-devices devices (default 1000) beside the 1:1 fan-out of it to the same devices (sender CPU, relay
// CPU from /proc, relay bytes stored from SQLite's dbstat, their ratios), and times adding one device to that
// group end to end (claim, commit, relay accept, Welcome delivered and joined), --group-adds times (default 15).
// The store benchmarks (StoreBenchmarks.swift) put --store-messages messages (default 100000) in one
// conversation of an encrypted store created under $TMPDIR and removed at the end. The relay benchmarks
// (RelayBenchmarks.swift) run a relay in this process and client engines against it, all under $TMPDIR.
// push (PushChurnBenchmarks.swift) churns push connections through a parley-relay child process and reports
// the memory it keeps per connection, and per connection held. relay-postgres (RelayPostgresBenchmarks.swift) puts
// parley-relay child processes on a private PostgreSQL cluster (one node, three nodes) beside one on SQLite: messages/s,
// CPU per message and the cross-node wake delay; without PostgreSQL it prints a line saying it was skipped.
// headless (HeadlessBenchmarks.swift) times one-shot `parley` commands and `send` over `parley daemon`'s HTTP
// endpoint and its socket, and SSE delivery (HeadlessTransportBenchmarks.swift); soak streams --soak-messages
// messages (default 20000; the issue's figure is 100000) through `parley daemon` and reports its RSS.
import CSodium

#if canImport(Glibc)
import Glibc
#endif

/// The 1-minute load average: other processes on the machine make every number noisier.
func loadAverage() -> Double? {
    var load = [0.0, 0.0, 0.0]
    return getloadavg(&load, 3) > 0 ? load[0] : nil
}

let started = Measure.now()
precondition(sodium_init() >= 0, "libsodium failed to initialise")

var budget = 0.4
var only = Set<String>()
var storeMessages = 100_000
var soakMessages = 20_000
var mlsMembers = MLSBenchmarks.sizes
var groupDevices = 1_000
var groupAdds = 15
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--budget":
        guard let value = arguments.next().flatMap(Double.init), value > 0 else { usageError("--budget needs seconds") }
        budget = value
    case "--only":
        guard let value = arguments.next() else { usageError("--only needs a name") }
        only.formUnion(value.split(separator: ",").map(String.init))
    case "--store-messages":
        guard let value = arguments.next().flatMap(Int.init), value >= 1_000 else { usageError("--store-messages needs a count of at least 1000") }
        storeMessages = value
    case "--mls-members":
        let sizes = arguments.next().map { $0.split(separator: ",").compactMap { Int($0) } } ?? []
        guard !sizes.isEmpty, sizes.allSatisfy({ $0 >= 2 }) else { usageError("--mls-members needs group sizes of at least 2, comma-separated") }
        mlsMembers = sizes
    case "--group-devices":
        guard let value = arguments.next().flatMap(Int.init), value >= 4 else { usageError("--group-devices needs a count of at least 4") }
        groupDevices = value
    case "--group-adds":
        guard let value = arguments.next().flatMap(Int.init), value >= 1 else { usageError("--group-adds needs a count of at least 1") }
        groupAdds = value
    case "--soak-messages":
        guard let value = arguments.next().flatMap(Int.init), value >= 1_000 else { usageError("--soak-messages needs a count of at least 1000") }
        soakMessages = value
    default:
        usageError("unknown argument \(argument); usage: parley-bench [--budget SECONDS] [--only NAME[,NAME…]] [--store-messages N] [--soak-messages N] [--mls-members N,N…] [--group-devices N] [--group-adds N]")
    }
}

var bench = Benchmarks(budgetSeconds: budget, only: only)
bench.chainMessage()
bench.ratchetStep()
bench.pqxdh()
bench.sealedSender()
bench.primitives()
var store = StoreBenchmarks(messageCount: storeMessages)
if only.isEmpty || only.contains("store") { store.run() }
var relay = RelayBenchmarks()
if only.isEmpty || only.contains("relay") { relay = await relay.measured() }
if only.isEmpty || only.contains("push") { await PushChurnBenchmarks().run() }
let relayPostgres = only.isEmpty || only.contains("relay-postgres") ? await RelayPostgresBenchmarks().run() : []
var mls = MLSBenchmarks(budgetSeconds: budget, sizes: mlsMembers)
if only.isEmpty || only.contains("mls") { mls.run() }
var groups = GroupBenchmarks()
groups.devices = groupDevices
groups.adds = groupAdds
if only.isEmpty || only.contains("groups") { groups = await groups.measured() }
var headless = HeadlessBenchmarks()
headless.soakMessages = soakMessages
headless = await headless.measured(startup: only.isEmpty || only.contains("headless"), soak: only.isEmpty || only.contains("soak"))

let targets: [(name: String, limit: Double)] = [("chain_message", 1.5), ("sealed_message", 1.3)]
var summary = JSONLine(name: "targets")
var allOk = true
for (name, limit) in targets {
    guard let ratio = bench.ratios[name] else { continue }
    summary.add("\(name)_ratio", .number(ratio))
    summary.add("\(name)_target", .number(limit))
    summary.add("\(name)_ratio_ok", .bool(ratio <= limit))
    allOk = allOk && ratio <= limit
}
let storeTargets: [(name: String, value: Double?, limit: Double, atLeast: Bool)] = [
    ("store_insert_msgs_per_s", store.results.insertPerSecond, StoreBenchmarks.insertTarget, true),
    ("store_newest_page_cold_ms", store.results.newestPageColdMs, StoreBenchmarks.newestPageTarget, false),
    ("store_newest_page_warm_ms", store.results.newestPageWarmMs, StoreBenchmarks.newestPageTarget, false),
    ("store_search_few_ms", store.results.searchFewMs, StoreBenchmarks.searchTarget, false),
    ("store_search_none_ms", store.results.searchNoneMs, StoreBenchmarks.searchTarget, false),
    ("store_search_none_all_ms", store.results.searchNoneAllMs, StoreBenchmarks.searchTarget, false),
]
for (name, value, limit, atLeast) in storeTargets {
    guard let value else { continue }
    let ok = atLeast ? value >= limit : value <= limit
    summary.add(name, .number(value))
    summary.add("\(name)_target", .number(limit))
    summary.add("\(name)_ok", .bool(ok))
    allOk = allOk && ok
}
let relayTargets: [(name: String, value: Double?, limit: Double, atLeast: Bool)] = [
    ("relay_latency_p50_ms", relay.results.p50Ms, RelayBenchmarks.p50Target, false),
    ("relay_latency_p99_ms", relay.results.p99Ms, RelayBenchmarks.p99Target, false),
    ("relay_sustained_msgs_per_s", relay.results.sustainedPerSecond, RelayBenchmarks.sustainedTarget, true),
]
for (name, value, limit, atLeast) in relayTargets {
    guard let value else { continue }
    let complete = name == "relay_sustained_msgs_per_s" || relay.results.latencyComplete
    let ok = complete && (atLeast ? value >= limit : value <= limit)
    summary.add(name, .number(value))
    summary.add("\(name)_target", .number(limit))
    summary.add("\(name)_ok", .bool(ok))
    allOk = allOk && ok
}
for target in relayPostgres {
    summary.add(target.name, .number(target.value))
    summary.add("\(target.name)_target", .number(target.limit))
    summary.add("\(target.name)_ok", .bool(target.ok))
    allOk = allOk && target.ok
}
if let p50 = headless.sendP50Ms {
    summary.add("headless_send_p50_ms", .number(p50))
    summary.add("headless_send_p50_ms_target", .number(HeadlessBenchmarks.sendTargetMs))
    summary.add("headless_send_p50_ms_ok", .bool(p50 <= HeadlessBenchmarks.sendTargetMs))
    allOk = allOk && p50 <= HeadlessBenchmarks.sendTargetMs
}
if let ratio = mls.ratio {
    summary.add("mls_application_message_ratio", .number(ratio))
    summary.add("mls_application_message_ratio_target", .number(1.5))
    summary.add("mls_application_message_ratio_ok", .bool(ratio <= 1.5))
    allOk = allOk && ratio <= 1.5
    for (name, limit) in [("add_member_commit@1000", 10.0), ("add_member_process@1000", 10.0),
                          ("add_member_commit@10000", 100.0), ("add_member_process@10000", 100.0)] {
        guard let ms = mls.milliseconds[name] else { continue }
        let key = "mls_" + name.split(separator: "@").joined(separator: "_at_") + "_ms"
        summary.add(key, .number(ms))
        summary.add("\(key)_target", .number(limit))
        summary.add("\(key)_ok", .bool(ms <= limit))
        allOk = allOk && ms <= limit
    }
}
if let p50 = groups.addP50Ms {
    summary.add("groups_add_member_p50_ms", .number(p50))
    summary.add("groups_add_member_p50_ms_target", .number(GroupBenchmarks.addTargetMs))
    summary.add("groups_add_member_p50_ms_ok", .bool(p50 <= GroupBenchmarks.addTargetMs))
    allOk = allOk && p50 <= GroupBenchmarks.addTargetMs
}
if let growth = headless.soakGrowthKB { summary.add("headless_soak_rss_settled_growth_kb", .int(growth)) }
if let read = store.results.readPerSecond { summary.add("store_read_msgs_per_s", .number(read)) }
if store.results.insertPerSecond != nil { summary.add("store_messages", .int(storeMessages)) }
summary.add("all_ok", .bool(allOk))
summary.add("libsodium", .string(String(cString: sodium_version_string())))
summary.add("budget_s", .number(budget))
if let load = loadAverage() { summary.add("loadavg_1m", .number(load)) }
summary.add("elapsed_s", .number(Double(Measure.now() - started) / 1e9))
summary.add("checksum", .int(Int(bench.measure.checksum ^ store.checksum)))
print(summary.text)

/// Bad arguments: a one-line message and exit status 1 (not a crash).
func usageError(_ problem: String) -> Never {
    let line = "parley-bench: \(problem)\n"
    _ = line.withCString { write(2, $0, strlen($0)) }
    exit(1)
}
