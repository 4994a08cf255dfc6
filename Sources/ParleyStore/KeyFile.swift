import ParleyCrypto
#if canImport(Glibc)
import Glibc
#endif

/// Key files let bots unlock a store without a passphrase. A key file holds 32 random bytes as 64 hex
/// digits and a newline, is created with mode 0600, and is refused when others can read it.
public enum KeyFile {
    public static func create(at path: String) throws(StoreError) {
        var secret = SystemRandom().bytes(32)
        defer { wipe(&secret) }
        var text = Array((Hex.encode(secret) + "\n").utf8)
        defer { wipe(&text) }
        if let code = NewFile.create(at: path, holding: text) {
            throw .keyFileUnreadable(path: path, reason: String(cString: strerror(code)))
        }
    }

    /// Reads and checks a key file: owner-only permissions, 64 hex digits.
    static func read(at path: String) throws(StoreError) -> SecretBytes {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .keyFileUnreadable(path: path, reason: String(cString: strerror(errno))) }
        guard info.st_mode & S_IFMT == S_IFREG else { throw .keyFileUnreadable(path: path, reason: "it is not a regular file") }
        guard info.st_mode & 0o077 == 0 else { throw .keyFileTooOpen(path: path, mode: String(info.st_mode & 0o777, radix: 8)) }
        guard let file = fopen(path, "r") else { throw .keyFileUnreadable(path: path, reason: String(cString: strerror(errno))) }
        defer { fclose(file) }
        var buffer = [UInt8](repeating: 0, count: 130)
        defer { wipe(&buffer) }
        let count = fread(&buffer, 1, buffer.count, file)
        var digits = Array(buffer[0..<count])
        defer { wipe(&digits) }
        while let last = digits.last, last == 0x0A || last == 0x0D || last == 0x20 { digits.removeLast() }
        guard digits.count == 64 else { throw .keyFileUnreadable(path: path, reason: "expected 64 hex digits") }
        var failed = false
        let secret = SecretBytes(count: 32) { out in
            for i in 0..<32 {
                guard let hi = hexValue(digits[2 * i]), let lo = hexValue(digits[2 * i + 1]) else { failed = true; return }
                out[i] = hi << 4 | lo
            }
        }
        if failed { throw .keyFileUnreadable(path: path, reason: "expected 64 hex digits") }
        return secret
    }

    private static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case 0x30...0x39: c - 0x30
        case 0x61...0x66: c - 0x61 + 10
        case 0x41...0x46: c - 0x41 + 10
        default: nil
        }
    }
}
