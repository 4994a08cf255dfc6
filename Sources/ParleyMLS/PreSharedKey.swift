import ParleyCrypto

/// PreSharedKeyID (RFC 9420 §8.4): an external PSK named by the application, or a resumption PSK of an
/// earlier epoch of some group, each with a fresh nonce.
public struct PreSharedKeyID: TLSCodable, Hashable, Sendable {
    public enum Kind: Hashable, Sendable {
        case external(pskID: [UInt8])
        case resumption(usage: ResumptionUsage, groupID: [UInt8], epoch: UInt64)
    }

    public enum ResumptionUsage: UInt8, Sendable {
        case application = 1
        case reinit = 2
        case branch = 3
    }

    public var kind: Kind
    public var nonce: [UInt8]

    public init(kind: Kind, nonce: [UInt8]) {
        self.kind = kind
        self.nonce = nonce
    }

    public func encode(to writer: inout TLSWriter) {
        switch kind {
        case .external(let pskID):
            writer.writeUInt8(1)
            writer.writeOpaque(pskID)
        case .resumption(let usage, let groupID, let epoch):
            writer.writeUInt8(2)
            writer.writeUInt8(usage.rawValue)
            writer.writeOpaque(groupID)
            writer.writeUInt64(epoch)
        }
        writer.writeOpaque(nonce)
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        switch try reader.readUInt8() {
        case 1:
            kind = .external(pskID: try reader.readOpaque())
        case 2:
            guard let usage = ResumptionUsage(rawValue: try reader.readUInt8()) else { throw .invalidValue("resumption PSK usage") }
            kind = .resumption(usage: usage, groupID: try reader.readOpaque(), epoch: try reader.readUInt64())
        default:
            throw .invalidValue("PSK type")
        }
        nonce = try reader.readOpaque()
    }
}

public enum PSKSecret {
    /// psk_secret from the PSKs of a Commit, in order (§8.4):
    ///   psk_extracted[i] = Extract(0, psk[i]);
    ///   psk_input[i] = ExpandWithLabel(psk_extracted[i], "derived psk", PSKLabel{id, index, count}, Nh);
    ///   psk_secret[i+1] = Extract(psk_input[i], psk_secret[i]), psk_secret[0] = 0.
    /// With no PSK the result is the zero vector.
    public static func derive(suite: CipherSuite, psks: [(id: PreSharedKeyID, secret: SecretBytes)]) -> SecretBytes {
        var accumulated = suite.zeroSecret
        for (index, psk) in psks.enumerated() {
            let extracted = suite.extract(salt: suite.zeroSecret, ikm: psk.secret)
            var label = TLSWriter()
            psk.id.encode(to: &label)
            label.writeUInt16(UInt16(index))
            label.writeUInt16(UInt16(psks.count))
            let input = suite.expandWithLabel(secret: extracted, label: "derived psk", context: label.bytes, length: suite.hashLength)
            accumulated = suite.extract(salt: input, ikm: accumulated)
        }
        return accumulated
    }
}
