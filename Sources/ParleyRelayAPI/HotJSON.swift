/// Hand-written JSON for the bodies every message crosses: a send, a mailbox page, an acknowledgement.
/// Foundation's JSONEncoder and JSONDecoder, with base64 through `Data`, were about 6% of all CPU time when
/// the relay benchmark ran at its highest rate; with this codec the CPU per message fell by 2–3%.
///
/// It writes the document JSONEncoder writes, but for "/" left unescaped (JSON allows both). It reads only
/// that compact form: the known keys, each once, in any order, JSON whitespace, no string escapes, plain
/// non-negative integers, canonical base64. Anything else gives nil, and the caller then decodes with
/// JSONDecoder — so what is accepted, and every error message for what is not, stays that of Codable.
public protocol HotJSON: Codable {
    /// About how many bytes the JSON takes (what the writer reserves).
    var expectedJSONLength: Int { get }
    func writeJSON(into out: inout HotJSONWriter)
    init?(reading reader: inout HotJSONReader)
}

extension HotJSON {
    /// This value as JSON bytes.
    public func jsonBytes() -> [UInt8] {
        var writer = HotJSONWriter(expected: expectedJSONLength)
        writeJSON(into: &writer)
        return writer.bytes
    }

    /// The value in `bytes` when they hold the compact form, else nil (decode with JSONDecoder then).
    public init?(fastJSON bytes: UnsafeRawBufferPointer) {
        var reader = HotJSONReader(bytes)
        guard let value = Self(reading: &reader), reader.atEnd() else { return nil }
        self = value
    }
}

extension SendRequest: HotJSON {
    public var expectedJSONLength: Int {
        messages.reduce(16) { $0 + 64 + Base64.encodedLength($1.deviceKey.bytes.count) + Base64.encodedLength($1.envelope.bytes.count) }
    }

    public func writeJSON(into out: inout HotJSONWriter) {
        out.raw("{\"messages\":[")
        for (index, message) in messages.enumerated() {
            if index > 0 { out.byte(UInt8(ascii: ",")) }
            out.raw("{\"deviceId\":"); out.number(UInt64(message.deviceId))
            out.raw(",\"deviceKey\":"); out.base64(message.deviceKey.bytes)
            out.raw(",\"envelope\":"); out.base64(message.envelope.bytes)
            out.byte(UInt8(ascii: "}"))
        }
        out.raw("]}")
    }

    public init?(reading reader: inout HotJSONReader) {
        var messages: [OutgoingMessage]?
        guard reader.object({ key, reader in
            guard key == "messages", messages == nil else { return false }
            messages = reader.array { reader in
                var deviceId: UInt32?, deviceKey: [UInt8]?, envelope: [UInt8]?
                guard reader.object({ key, reader in
                    switch key {
                    case "deviceId" where deviceId == nil: deviceId = reader.number().flatMap { UInt32(exactly: $0) }; return deviceId != nil
                    case "deviceKey" where deviceKey == nil: deviceKey = reader.base64(); return deviceKey != nil
                    case "envelope" where envelope == nil: envelope = reader.base64(); return envelope != nil
                    default: return false
                    }
                }), let deviceId, let deviceKey, let envelope else { return nil }
                return OutgoingMessage(deviceId: deviceId, deviceKey: Base64Bytes(deviceKey), envelope: Base64Bytes(envelope))
            }
            return messages != nil
        }), let messages else { return nil }
        self.init(messages: messages)
    }
}

extension FetchResponse: HotJSON {
    public var expectedJSONLength: Int {
        messages.reduce(48) { $0 + 64 + $1.id.utf8.count + Base64.encodedLength($1.envelope.bytes.count) }
    }

    public func writeJSON(into out: inout HotJSONWriter) {
        out.raw("{\"messages\":[")
        for (index, message) in messages.enumerated() {
            if index > 0 { out.byte(UInt8(ascii: ",")) }
            out.raw("{\"id\":"); out.string(message.id)
            out.raw(",\"envelope\":"); out.base64(message.envelope.bytes)
            out.raw(",\"receivedAt\":"); out.number(message.receivedAt)
            out.byte(UInt8(ascii: "}"))
        }
        out.raw("],\"more\":"); out.raw(more ? "true" : "false")
        out.raw(",\"preKeysLow\":"); out.raw(preKeysLow ? "true" : "false")
        out.byte(UInt8(ascii: "}"))
    }

    public init?(reading reader: inout HotJSONReader) {
        var messages: [QueuedMessage]?, more: Bool?, preKeysLow: Bool?
        guard reader.object({ key, reader in
            switch key {
            case "more" where more == nil: more = reader.bool(); return more != nil
            case "preKeysLow" where preKeysLow == nil: preKeysLow = reader.bool(); return preKeysLow != nil
            case "messages" where messages == nil:
                messages = reader.array { reader in
                    var id: String?, envelope: [UInt8]?, receivedAt: UInt64?
                    guard reader.object({ key, reader in
                        switch key {
                        case "id" where id == nil: id = reader.string(); return id != nil
                        case "envelope" where envelope == nil: envelope = reader.base64(); return envelope != nil
                        case "receivedAt" where receivedAt == nil: receivedAt = reader.number(); return receivedAt != nil
                        default: return false
                        }
                    }), let id, let envelope, let receivedAt else { return nil }
                    return QueuedMessage(id: id, envelope: Base64Bytes(envelope), receivedAt: receivedAt)
                }
                return messages != nil
            default: return false
            }
        }), let messages, let more, let preKeysLow else { return nil }
        self.init(messages: messages, more: more, preKeysLow: preKeysLow)
    }
}

extension AckRequest: HotJSON {
    public var expectedJSONLength: Int { ids.reduce(12) { $0 + 3 + $1.utf8.count } }

    public func writeJSON(into out: inout HotJSONWriter) {
        out.raw("{\"ids\":[")
        for (index, id) in ids.enumerated() {
            if index > 0 { out.byte(UInt8(ascii: ",")) }
            out.string(id)
        }
        out.raw("]}")
    }

    public init?(reading reader: inout HotJSONReader) {
        var ids: [String]?
        guard reader.object({ key, reader in
            guard key == "ids", ids == nil else { return false }
            ids = reader.array { $0.string() }
            return ids != nil
        }), let ids else { return nil }
        self.init(ids: ids)
    }
}
