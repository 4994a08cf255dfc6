import ParleyCrypto

/// Safety numbers: libsignal's NumericFingerprint construction, exactly (PROTOCOL.md §14).
///
/// Per party: `h = SHA-512(0x00 0x00 ‖ key ‖ id ‖ key)`, then `iterations − 1` more rounds of
/// `h = SHA-512(h ‖ key)`. The party's 30 digits are six 5-byte big-endian chunks of `h`, each mod
/// 100000, zero-padded. Both parties' digits are joined smaller first, so both sides see the same 60.
public enum SafetyNumber {
    public static let defaultIterations = 5200
    /// Parley's scannable-payload version (libsignal's own codes use 1 and 2).
    public static let scannableVersion = 80

    /// The 5200-round hash of one party.
    public static func partyHash(key: [UInt8], id: [UInt8], iterations: Int = defaultIterations) -> [UInt8] {
        precondition(iterations >= 1)
        var hash = SHA512.hash([0x00, 0x00] + key + id + key)
        var input = [UInt8]()
        input.reserveCapacity(64 + key.count)
        for _ in 1..<iterations {
            input.removeAll(keepingCapacity: true)
            input.append(contentsOf: hash)
            input.append(contentsOf: key)
            hash = SHA512.hash(input)
        }
        return hash
    }

    /// 30 digits from a party hash.
    public static func digits(of hash: [UInt8]) -> String {
        stride(from: 0, to: 30, by: 5).map { offset in
            let chunk = hash[offset..<(offset + 5)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            let text = String(chunk % 100_000)
            return String(repeating: "0", count: 5 - text.count) + text
        }.joined()
    }

    /// The 60 digits both parties see.
    public static func displayable(localKey: [UInt8], localId: [UInt8], remoteKey: [UInt8], remoteId: [UInt8],
                                   iterations: Int = defaultIterations) -> String {
        let local = digits(of: partyHash(key: localKey, id: localId, iterations: iterations))
        let remote = digits(of: partyHash(key: remoteKey, id: remoteId, iterations: iterations))
        return local <= remote ? local + remote : remote + local
    }

    /// `12345 67890 …`: the 60 digits in 12 groups of 5.
    public static func grouped(_ digits: String) -> String {
        var groups: [String] = []
        var index = digits.startIndex
        while index < digits.endIndex {
            let end = digits.index(index, offsetBy: 5, limitedBy: digits.endIndex) ?? digits.endIndex
            groups.append(String(digits[index..<end]))
            index = end
        }
        return groups.joined(separator: " ")
    }

    /// libsignal's CombinedFingerprints protobuf: `08 version 12 22 0a 20 <local 32> 1a 22 0a 20 <remote 32>`
    /// (the version as a varint).
    public static func scannable(version: Int, localHash: [UInt8], remoteHash: [UInt8]) -> [UInt8] {
        var out: [UInt8] = [0x08]
        var v = UInt64(version)
        repeat {
            let byte = UInt8(v & 0x7F)
            v >>= 7
            out.append(v == 0 ? byte : byte | 0x80)
        } while v != 0
        for (tag, hash) in [(UInt8(0x12), localHash), (UInt8(0x1A), remoteHash)] {
            out += [tag, 0x22, 0x0A, 0x20] + Array(hash.prefix(32))
        }
        return out
    }

    public enum ComparisonResult: Equatable, Sendable {
        case match
        case mismatch
        case versionMismatch(theirs: Int, ours: Int)
        case malformed
    }

    /// Compares a scanned payload with ours. The scanner's "local" is our "remote" and the other way round;
    /// the fingerprints are compared in constant time.
    public static func compare(scanned: [UInt8], version: Int, localHash: [UInt8], remoteHash: [UInt8]) -> ComparisonResult {
        var r = ByteReader(scanned, structure: "scannable safety number")
        guard (try? r.u8()) == 0x08 else { return .malformed }
        var theirVersion: UInt64 = 0
        var shift: UInt64 = 0
        while true {
            guard let byte = try? r.u8(), shift < 63 else { return .malformed }
            theirVersion |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { break }
            shift += 7
        }
        guard theirVersion == UInt64(version) else { return .versionMismatch(theirs: Int(theirVersion), ours: version) }
        func field(_ tag: UInt8) -> [UInt8]? {
            guard (try? r.raw(4)) == [tag, 0x22, 0x0A, 0x20] else { return nil }
            return try? r.raw(32)
        }
        guard let theirLocal = field(0x12), let theirRemote = field(0x1A), r.remaining == 0 else { return .malformed }
        // Both halves are always compared (no early exit on the first mismatch).
        let first = constantTimeEquals(theirLocal, Array(remoteHash.prefix(32)))
        let second = constantTimeEquals(theirRemote, Array(localHash.prefix(32)))
        return first && second ? .match : .mismatch
    }
}

extension SafetyNumber {
    /// The inputs Parley uses for an account: `Encode(AIK)` (0x06 ‖ key, §2) and the address as UTF-8.
    public static func accountKey(_ key: Ed25519.PublicKey) -> [UInt8] { KeyEncoding.encode(key) }
    public static func accountId(_ address: String) -> [UInt8] { Array(address.utf8) }
}
