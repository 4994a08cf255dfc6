#if canImport(Glibc)
import Glibc
#endif
import ParleyProtocol

/// Leaky-bucket rate limiting keyed by client IP or account. Buckets refill continuously; a request
/// that finds its bucket empty is refused with 429 and changes nothing else.
public actor RateLimiter {
    private struct Bucket {
        var level: Double
        var updated: Double
    }
    private var buckets: [String: Bucket] = [:]
    private let limit: RateLimit
    private var lastSweep = 0.0

    public init(_ limit: RateLimit) { self.limit = limit }

    /// Takes `cost` tokens from `key`'s bucket; false (taking none) when it holds fewer.
    public func allow(_ key: String, cost: Double = 1) -> Bool {
        guard limit.perSecond.isFinite else { return true }
        let now = Self.seconds()
        var bucket = buckets[key] ?? Bucket(level: limit.burst, updated: now)
        bucket.level = min(limit.burst, bucket.level + (now - bucket.updated) * limit.perSecond)
        bucket.updated = now
        let allowed = bucket.level >= cost
        if allowed { bucket.level -= cost }
        buckets[key] = bucket
        if now - lastSweep > 60 { sweep(now) }
        return allowed
    }

    /// Forgets full buckets so memory stays flat with many distinct clients.
    private func sweep(_ now: Double) {
        lastSweep = now
        buckets = buckets.filter { min(limit.burst, $0.value.level + (now - $0.value.updated) * limit.perSecond) < limit.burst }
    }

    private static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
    }
}

/// The budgets of prekey bundle fetches: per client IP and per target device, each its own bucket. A client
/// over its IP budget is refused. A device over its budget is not: the fetch is served without one-time
/// prekeys (signed prekey and last-resort PQ prekey only, as when the stock is used up), so a stranger can
/// neither drain the stock nor, by spending the device's budget, stop others from starting sessions.
public struct BundleLimits: Sendable {
    private let perDevice: RateLimiter
    private let perIP: RateLimiter

    public init(perDevice: RateLimit, perIP: RateLimit) {
        self.perDevice = RateLimiter(perDevice)
        self.perIP = RateLimiter(perIP)
    }

    func allow(ip: String) async -> Bool {
        await perIP.allow(ip)
    }

    /// Whether this fetch may take one-time prekeys of the device.
    func mayTakeOneTimeKeys(of device: DeviceAddress) async -> Bool {
        await perDevice.allow("\(device.address)#\(device.deviceId)")
    }
}
