import CSodium

/// One-time libsodium initialisation. Every entry point of this module calls `Sodium.ready()` first;
/// `sodium_init` is itself thread-safe and idempotent, the static makes the call once per process.
enum Sodium {
    private static let initialised: Bool = sodium_init() >= 0

    @inline(__always)
    static func ready() {
        precondition(initialised, "libsodium failed to initialise")
    }
}

/// libsodium's pointer parameters are non-null even for zero-length inputs; an empty Swift buffer has a
/// nil base address. These give a valid pointer in every case (never dereferenced when the count is 0).
nonisolated(unsafe) private let emptyByte = UnsafeMutablePointer<UInt8>.allocate(capacity: 1)

extension UnsafeRawBufferPointer {
    var bytePointer: UnsafePointer<UInt8> {
        baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? UnsafePointer(emptyByte)
    }
}

extension UnsafeMutableRawBufferPointer {
    var bytePointer: UnsafeMutablePointer<UInt8> {
        baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? emptyByte
    }
}
