import ParleyCrypto

/// What a group leaves on its relay for rejoining (PROTOCOL.md §17.9), sealed from the relay: the next
/// epoch's GroupInfo, and a rejoiner's external commit. Both are sealed under the group's GroupInfo key, a
/// 32-byte key every member keeps beside (not inside) its MLS state, so that a member whose state no longer
/// opens still has it.
///
/// `sealed = 0x01 ‖ key_epoch u64 ‖ nonce[24] ‖ XChaCha20-Poly1305(key, nonce, ad, plaintext)`,
/// `ad = label ‖ 0x00 ‖ group_id[32] ‖ epoch u64 ‖ sealed[0..<9]`, all integers big-endian. `key_epoch`
/// names the key (the epoch it was derived in); `epoch` is the epoch the plaintext is of, which the opener
/// knows from the relay's answer. An MLSMessage or a GroupInfo starts with 0x00 (their version, u16 1), so a
/// sealed value is never taken for one.
public enum GroupSeal {
    public static let version: UInt8 = 1
    /// The key: MLS-Exporter(keyLabel, group_id, 32) in the epoch named by `key_epoch`.
    public static let keyLabel = "parley group info key v1"
    public enum Kind: Sendable {
        /// A GroupInfo; `epoch` is its epoch.
        case groupInfo
        /// An external commit; `epoch` is the epoch it ends.
        case externalCommit

        public var label: String {
            switch self {
            case .groupInfo: "parley group info v1"
            case .externalCommit: "parley external commit v1"
            }
        }
    }

    public static let headerLength = 1 + 8
    public static let overhead = headerLength + XChaCha20Poly1305.nonceLength + XChaCha20Poly1305.tagLength

    /// Whether `bytes` is sealed (first byte 0x01) rather than a plain GroupInfo or MLSMessage (0x00).
    public static func isSealed(_ bytes: [UInt8]) -> Bool { bytes.first == version }

    /// The key epoch a sealed value names, or nil when it is not one.
    public static func keyEpoch(of sealed: [UInt8]) -> UInt64? {
        guard sealed.count >= overhead, isSealed(sealed) else { return nil }
        return sealed[1..<headerLength].reduce(0) { $0 << 8 | UInt64($1) }
    }

    public static func seal(_ plaintext: [UInt8], _ kind: Kind, key: SecretBytes, keyEpoch: UInt64, groupId: GroupId, epoch: UInt64,
                            random: any RandomSource = SystemRandom()) throws(ProtocolError) -> [UInt8] {
        var header = ByteWriter(capacity: overhead)
        header.u8(version)
        header.u64(keyEpoch)
        let nonce = random.bytes(XChaCha20Poly1305.nonceLength)
        let box = try ProtocolError.wrap { () throws(CryptoError) in
            try XChaCha20Poly1305.seal(plaintext, associatedData: associatedData(kind, groupId: groupId, epoch: epoch, header: header.bytes),
                                       nonce: nonce, key: key)
        }
        return header.bytes + nonce + box
    }

    /// The plaintext, or an error when `sealed` is not one, names another key epoch than `keyEpoch`, or does
    /// not open under `key` for this group, kind and epoch.
    public static func open(_ sealed: [UInt8], _ kind: Kind, key: SecretBytes, keyEpoch: UInt64, groupId: GroupId,
                            epoch: UInt64) throws(ProtocolError) -> [UInt8] {
        guard let named = self.keyEpoch(of: sealed) else { throw .malformed("a sealed group value is too short or of an unknown version") }
        guard named == keyEpoch else { throw .malformed("sealed under the group key of epoch \(named), not \(keyEpoch)") }
        let header = Array(sealed[0..<headerLength])
        let nonce = Array(sealed[headerLength..<(headerLength + XChaCha20Poly1305.nonceLength)])
        let box = Array(sealed[(headerLength + XChaCha20Poly1305.nonceLength)...])
        return try ProtocolError.wrap { () throws(CryptoError) in
            try XChaCha20Poly1305.open(box, associatedData: associatedData(kind, groupId: groupId, epoch: epoch, header: header), nonce: nonce, key: key)
        }
    }

    static func associatedData(_ kind: Kind, groupId: GroupId, epoch: UInt64, header: [UInt8]) -> [UInt8] {
        var w = ByteWriter(capacity: 96)
        w.raw(Array(kind.label.utf8))
        w.u8(0)
        w.raw(groupId.bytes)
        w.u64(epoch)
        w.raw(header)
        return w.bytes
    }
}
