#if canImport(Glibc)
import Glibc
#endif

/// Timing on CLOCK_MONOTONIC. An operation is a closure returning one byte of its result; every byte is
/// folded into `checksum`, which the program prints, so the optimiser cannot drop the work.
struct Measure {
    /// Wall time one measurement is allowed (per side, for a paired measurement).
    var budgetSeconds: Double
    /// Length of one batch; the reported cost is the median over the batches.
    var batchSeconds = 0.005
    private(set) var checksum: UInt8 = 0

    init(budgetSeconds: Double) { self.budgetSeconds = budgetSeconds }

    struct Result {
        /// Median nanoseconds per operation over the batches.
        var nanoseconds: Double
        var iterations: Int
        /// Batches the median is taken over, and batches set aside because the thread was preempted.
        var batches: Int
        var preemptedBatches: Int
    }

    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
    }

    /// One operation, time-bounded: warm-up and calibration, then median ns/op of the batches.
    mutating func run(_ op: () -> UInt8) -> Result {
        let n = calibrate(op)
        var samples = Samples()
        let end = Self.now() + UInt64(budgetSeconds * 1e9)
        while Self.now() < end || samples.count < 5 {
            samples.add(batch(n, op))
        }
        return samples.result(perBatch: n)
    }

    /// Two operations measured in alternating batches (a b a b …), so that frequency changes and load from
    /// other processes hit both alike; each gets its own median.
    mutating func paired(_ a: () -> UInt8, _ b: () -> UInt8) -> (Result, Result) {
        let na = calibrate(a)
        let nb = calibrate(b)
        var sa = Samples()
        var sb = Samples()
        let end = Self.now() + UInt64(2 * budgetSeconds * 1e9)
        while Self.now() < end || sa.count < 5 || sb.count < 5 {
            sa.add(batch(na, a))
            sb.add(batch(nb, b))
        }
        return (sa.result(perBatch: na), sb.result(perBatch: nb))
    }

    /// Batch timings. A batch during which the scheduler preempted this thread measured someone else's
    /// work too; such batches are set aside, and used only when too few clean ones remain.
    private struct Samples {
        var clean: [Double] = []
        var preempted: [Double] = []
        var count: Int { clean.count + preempted.count }

        mutating func add(_ sample: (nanoseconds: Double, preempted: Bool)) {
            if sample.preempted { preempted.append(sample.nanoseconds) } else { clean.append(sample.nanoseconds) }
        }

        func result(perBatch n: Int) -> Result {
            let used = clean.count >= 5 ? clean : clean + preempted
            return Result(nanoseconds: Measure.median(used), iterations: n * used.count,
                          batches: used.count, preemptedBatches: preempted.count)
        }
    }

    /// Warm-up: doubles the count until a run takes half a batch, times that count once more, and sizes a
    /// batch from the faster of the two runs (a run slowed by preemption would give too small a batch).
    private mutating func calibrate(_ op: () -> UInt8) -> Int {
        var n = 1
        while true {
            let first = batch(n, op).nanoseconds
            if first * Double(n) >= batchSeconds * 0.5e9 {
                let perOp = Swift.min(first, batch(n, op).nanoseconds)
                return Swift.max(1, Int(batchSeconds * 1e9 / perOp))
            }
            n *= 2
        }
    }

    /// ns per operation over one batch of `n`, and whether the thread was preempted meanwhile.
    private mutating func batch(_ n: Int, _ op: () -> UInt8) -> (nanoseconds: Double, preempted: Bool) {
        var sink: UInt8 = 0
        let switches = Self.involuntaryContextSwitches()
        let start = Self.now()
        for _ in 0..<n { sink ^= op() }
        let elapsed = Self.now() - start
        checksum ^= sink
        return (Double(elapsed) / Double(n), Self.involuntaryContextSwitches() != switches)
    }

    /// getrusage(RUSAGE_THREAD).ru_nivcsw (RUSAGE_THREAD = 1 on Linux; Glibc does not export the name).
    private static func involuntaryContextSwitches() -> Int {
        var usage = rusage()
        getrusage(1, &usage)
        return usage.ru_nivcsw
    }

    fileprivate static func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}

/// One JSON object per line, keys in the order given. Only what the bench prints: strings, numbers,
/// booleans and arrays of strings.
struct JSONLine {
    enum Value {
        case string(String)
        case number(Double)
        case int(Int)
        case bool(Bool)
        case strings([String])
    }

    private var fields: [(String, Value)] = []

    init(name: String) { fields.append(("name", .string(name))) }

    mutating func add(_ key: String, _ value: Value) { fields.append((key, value)) }

    var text: String {
        "{" + fields.map { "\(Self.quote($0.0)):\(Self.render($0.1))" }.joined(separator: ",") + "}"
    }

    private static func render(_ v: Value) -> String {
        switch v {
        case .string(let s): return quote(s)
        case .number(let d): return format(d)
        case .int(let i): return String(i)
        case .bool(let b): return b ? "true" : "false"
        case .strings(let xs): return "[" + xs.map(quote).joined(separator: ",") + "]"
        }
    }

    /// Three decimal places are plenty for nanoseconds and ratios.
    private static func format(_ d: Double) -> String {
        guard d.isFinite else { return "null" }
        let scaled = (d * 1000).rounded() / 1000
        return scaled == scaled.rounded() && abs(scaled) < 1e15 ? String(Int(scaled)) : String(scaled)
    }

    private static func quote(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case _ where u.value < 0x20: out += unicodeEscape(u.value)
            default: out.unicodeScalars.append(u)
            }
        }
        return out + "\""
    }
}

/// `\u00XX` for a control character.
private func unicodeEscape(_ value: UInt32) -> String {
    let hex = String(value, radix: 16)
    return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
}

/// The `key=value,…` pairs of an override variable such as PARLEY_BENCH_RELAY whose values are numbers
/// (the others are ignored).
func benchOverrides(_ variable: String, in environment: [String: String]) -> [(key: Substring, value: Double)] {
    (environment[variable] ?? "").split(separator: ",").compactMap { pair in
        let kv = pair.split(separator: "=", maxSplits: 1)
        guard kv.count == 2, let value = Double(kv[1]) else { return nil }
        return (kv[0], value)
    }
}
