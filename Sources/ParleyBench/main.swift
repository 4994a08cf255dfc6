// parley-bench: each protocol operation beside the summed cost of the libsodium (and ML-KEM) primitives it
// is made of, measured in the same run; one JSON object per line, a summary object last.
//
//   parley-bench [--budget SECONDS] [--only NAME[,NAME…]]
//
// --budget is the time per measurement and side (default 0.4 s); --only runs some of chain_message,
// dh_ratchet_step, pqxdh_session_start, sealed_message, primitives (for profiling one of them).
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
var arguments = CommandLine.arguments.dropFirst().makeIterator()
while let argument = arguments.next() {
    switch argument {
    case "--budget":
        guard let value = arguments.next().flatMap(Double.init), value > 0 else { fatalError("--budget needs seconds") }
        budget = value
    case "--only":
        guard let value = arguments.next() else { fatalError("--only needs a name") }
        only.formUnion(value.split(separator: ",").map(String.init))
    default:
        fatalError("unknown argument \(argument); usage: parley-bench [--budget SECONDS] [--only NAME[,NAME…]]")
    }
}

var bench = Benchmarks(budgetSeconds: budget, only: only)
bench.chainMessage()
bench.ratchetStep()
bench.pqxdh()
bench.sealedSender()
bench.primitives()

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
summary.add("all_ok", .bool(allOk))
summary.add("libsodium", .string(String(cString: sodium_version_string())))
summary.add("budget_s", .number(budget))
if let load = loadAverage() { summary.add("loadavg_1m", .number(load)) }
summary.add("elapsed_s", .number(Double(Measure.now() - started) / 1e9))
summary.add("checksum", .int(Int(bench.measure.checksum)))
print(summary.text)
