import ParleyCrypto
import ParleyProtocol

/// A test clock that stands still unless told otherwise.
public struct FixedClock: WallClock {
    public var now: UInt64
    public init(now: UInt64 = 1_800_000_000_000) { self.now = now }
    public func nowMilliseconds() -> UInt64 { now }
}

/// A clock a test moves by hand, shared by everything holding it.
public final class ManualClock: WallClock, @unchecked Sendable {
    private let lock = Lock()
    private var current: UInt64
    public init(_ start: UInt64 = 1_800_000_000_000) { current = start }
    public func nowMilliseconds() -> UInt64 { lock.withLock { current } }
    public func advance(by milliseconds: UInt64) { lock.withLock { current += milliseconds } }
}
