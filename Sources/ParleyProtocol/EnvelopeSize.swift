import ParleyCrypto

/// How long a sealed envelope (PROTOCOL.md §6–7) is for a content of a given length, so that a sender can
/// refuse a message the relay would refuse, before anything is encrypted or stored. The figures are those
/// of a session start (a PreKeyMessage), the longer form: any content may be the first to a new device.
public enum EnvelopeSize {
    /// The envelope carrying `contentBytes` of content (before padding) from the account `senderAddressBytes`
    /// long, as a session start: 0x01 ‖ E ‖ Pad(Inner) ‖ tag, Inner = bytes16(certificate) ‖ type ‖ PreKeyMessage.
    public static func sessionStart(contentBytes: Int, senderAddressBytes: Int) -> Int {
        let ratchet = RatchetHeader.length + padded(contentBytes) + XChaCha20Poly1305.tagLength
        let preKey = 1 + 32 + 32 + 4 + 4 + 4 + 1 + MLKEM1024KEM.ciphertextLength + ratchet
        let certificate = 1 + 2 + senderAddressBytes + 32 + 4 + 32 + 8 + Ed25519.signatureLength
        let inner = 2 + certificate + 1 + preKey
        return 1 + 32 + padded(inner) + XChaCha20Poly1305.tagLength
    }

    /// The most content bytes whose session-start envelope is at most `limit` bytes (0 when not even an
    /// empty content fits).
    public static func largestContent(within limit: Int, senderAddressBytes: Int) -> Int {
        // The size only grows with the content, in steps of the padding block: search for the last that fits.
        var low = 0, high = max(0, limit)
        guard sessionStart(contentBytes: 0, senderAddressBytes: senderAddressBytes) <= limit else { return 0 }
        while low < high {
            let middle = (low + high + 1) / 2
            let fits = sessionStart(contentBytes: middle, senderAddressBytes: senderAddressBytes) <= limit
            if fits { low = middle } else { high = middle - 1 }
        }
        return low
    }

    /// A length after the padding of §6.3 (at least one byte is added).
    static func padded(_ length: Int) -> Int {
        (length / ProtocolConstants.paddingBlock + 1) * ProtocolConstants.paddingBlock
    }
}
