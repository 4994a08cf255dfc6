import ParleyCrypto

/// What is costly to derive from public bytes, remembered by those bytes: a lock-protected map that is
/// emptied when it reaches its capacity (no eviction order to keep; the working set refills it at once).
final class BoundedCache<Value: Sendable>: @unchecked Sendable {
    private var entries: [[UInt8]: Value] = [:]
    private let lock = Lock()
    let capacity: Int

    init(capacity: Int) {
        self.capacity = capacity
    }

    subscript(key: [UInt8]) -> Value? {
        lock.withLock { entries[key] }
    }

    func store(_ value: Value, for key: [UInt8]) {
        lock.withLock {
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = value
        }
    }
}
