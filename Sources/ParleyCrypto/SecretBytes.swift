import CSodium

/// Secret key material. The bytes live in one heap buffer that is wiped with `sodium_memzero` when the
/// last reference goes away, and equality is decided in constant time.
///
/// The class is immutable after construction, which is what makes sharing it across tasks safe.
public final class SecretBytes: @unchecked Sendable {
    private let buffer: UnsafeMutableRawBufferPointer

    /// Fills a new buffer of `count` bytes by calling `fill`.
    public init(count: Int, fill: (UnsafeMutableRawBufferPointer) throws -> Void) rethrows {
        Sodium.ready()
        buffer = .allocate(byteCount: Swift.max(count, 1), alignment: 16)
        let view = UnsafeMutableRawBufferPointer(rebasing: buffer[0..<count])
        do { try fill(view) } catch {
            sodium_memzero(buffer.baseAddress, buffer.count)
            buffer.deallocate()
            throw error
        }
        self.count = count
    }

    /// Copies `bytes` into a new secret buffer. The caller remains responsible for wiping its copy.
    public convenience init(_ bytes: some Collection<UInt8>) {
        self.init(count: bytes.count) { out in
            _ = out.initializeMemory(as: UInt8.self, from: bytes)
        }
    }

    /// `count` bytes from the operating system's CSPRNG.
    public static func random(count: Int) -> SecretBytes {
        SecretBytes(count: count) { randombytes_buf($0.bytePointer, $0.count) }
    }

    public let count: Int

    deinit {
        sodium_memzero(buffer.baseAddress, buffer.count)
        buffer.deallocate()
    }

    public func withUnsafeBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
    }

    /// A copy of the bytes as an array. Use only where the bytes leave the process on purpose
    /// (serialisation into the encrypted store, test vectors); the array is not wiped.
    public var unprotectedBytes: [UInt8] {
        withUnsafeBytes { Array($0) }
    }

    /// Constant-time equality (`sodium_memcmp`); lengths are not secret.
    public func constantTimeEquals(_ other: SecretBytes) -> Bool {
        guard count == other.count else { return false }
        return withUnsafeBytes { a in other.withUnsafeBytes { b in sodium_memcmp(a.baseAddress, b.baseAddress, count) == 0 } }
    }

    /// A new secret made of bytes `range` of this one.
    public func slice(_ range: Range<Int>) -> SecretBytes {
        precondition(range.lowerBound >= 0 && range.upperBound <= count)
        return SecretBytes(count: range.count) { out in
            out.copyMemory(from: UnsafeRawBufferPointer(rebasing: buffer[range]))
        }
    }
}

extension SecretBytes: CustomStringConvertible, CustomDebugStringConvertible {
    // Never print key material, not even by accident in a log line or a test failure.
    public var description: String { "SecretBytes(\(count) bytes, redacted)" }
    public var debugDescription: String { description }
}

/// Constant-time comparison of two public byte strings (MACs, fingerprints, codes typed by a user).
public func constantTimeEquals(_ a: [UInt8], _ b: [UInt8]) -> Bool {
    a.withUnsafeBytes { pa in
        b.withUnsafeBytes { pb in
            pa.count == pb.count && (pa.count == 0 || sodium_memcmp(pa.baseAddress, pb.baseAddress, pa.count) == 0)
        }
    }
}

/// Wipes a byte array in place (for transient secret copies that had to be arrays).
public func wipe(_ bytes: inout [UInt8]) {
    bytes.withUnsafeMutableBytes { sodium_memzero($0.baseAddress, $0.count) }
}
