import CSodium
#if canImport(Glibc)
import Glibc
#endif

/// Where randomness comes from. Production code uses `SystemRandom`; tests and known-answer vectors
/// pass a deterministic source so that every derived byte can be checked.
public protocol RandomSource: Sendable {
    func fill(_ buffer: UnsafeMutableRawBufferPointer)
}

extension RandomSource {
    public func bytes(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { fill($0) }
        return out
    }

    public func secret(_ count: Int) -> SecretBytes {
        SecretBytes(count: count) { fill($0) }
    }

    public func uint64() -> UInt64 {
        var value: UInt64 = 0
        withUnsafeMutableBytes(of: &value) { fill($0) }
        return value
    }
}

/// libsodium's `randombytes_buf` (getrandom(2) on Linux).
public struct SystemRandom: RandomSource {
    public init() { Sodium.ready() }
    public func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        randombytes_buf(buffer.bytePointer, buffer.count)
    }
}

/// A deterministic stream for tests: ChaCha20 keystream (`randombytes_buf_deterministic`) under a seed,
/// advanced by a counter so successive calls never repeat output. Never use outside tests and vectors.
public final class DeterministicRandom: RandomSource, @unchecked Sendable {
    private let seed: [UInt8]
    private var counter: UInt64 = 0
    private let lock = Lock()

    public init(seed: [UInt8]) {
        Sodium.ready()
        precondition(seed.count == 32, "seed must be 32 bytes")
        self.seed = seed
    }

    /// A seed from a label, so tests can write `DeterministicRandom(label: "alice")`.
    public convenience init(label: String) {
        self.init(seed: SHA256.hash(Array(label.utf8)))
    }

    public func fill(_ buffer: UnsafeMutableRawBufferPointer) {
        lock.withLock {
            counter += 1
            var stepSeed = seed
            withUnsafeBytes(of: counter.bigEndian) { c in
                for i in 0..<8 { stepSeed[24 + i] ^= c[i] }
            }
            randombytes_buf_deterministic(buffer.bytePointer, buffer.count, stepSeed)
        }
    }
}

/// A pthread mutex: a minimal lock that needs neither Foundation nor Synchronization's availability
/// annotations. Used by the few classes whose state is guarded by hand.
public final class Lock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    public init() {
        mutex = .allocate(capacity: 1)
        pthread_mutex_init(mutex, nil)
    }
    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }
    public func withLock<R>(_ body: () throws -> R) rethrows -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body()
    }
}

/// A flag set once and read from any thread: whether something has happened (a connection came up, a
/// relay started listening, a push connection was ended).
public final class OnceFlag: @unchecked Sendable {
    private var value = false
    private let lock = Lock()
    public init() {}
    public var isSet: Bool { lock.withLock { value } }
    /// Sets the flag; true if this call was the one that set it.
    @discardableResult
    public func setIfUnset() -> Bool { lock.withLock { defer { value = true }; return !value } }
}
