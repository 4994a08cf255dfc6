/// The mailbox page of fetch version 2 (`?version=2`), which every client that knows groups asks for: the
/// body every delivered message crosses, written and read by hand as version 1's page is (HotJSON.swift).
/// An entry holds `envelope` or `group`, whichever it has (JSONEncoder leaves a nil one out); a document in
/// another form, or of another version than 2, is left to JSONDecoder.
extension FetchResponseV2: HotJSON {
    public var expectedJSONLength: Int {
        messages.reduce(96) { length, entry in
            length + 64 + entry.id.utf8.count + Base64.encodedLength(entry.envelope?.bytes.count ?? 0)
                + (entry.group.map { 96 + $0.groupId.utf8.count + $0.kind.utf8.count + Base64.encodedLength($0.message.bytes.count) } ?? 0)
        }
    }

    public func writeJSON(into out: inout HotJSONWriter) {
        out.raw("{\"version\":"); out.number(UInt64(clamping: version))
        out.raw(",\"messages\":[")
        for (index, entry) in messages.enumerated() {
            if index > 0 { out.byte(UInt8(ascii: ",")) }
            out.raw("{\"id\":"); out.string(entry.id)
            out.raw(",\"receivedAt\":"); out.number(entry.receivedAt)
            if let envelope = entry.envelope { out.raw(",\"envelope\":"); out.base64(envelope.bytes) }
            if let group = entry.group {
                out.raw(",\"group\":{\"groupId\":"); out.string(group.groupId)
                out.raw(",\"epoch\":"); out.number(group.epoch)
                out.raw(",\"kind\":"); out.string(group.kind)
                out.raw(",\"message\":"); out.base64(group.message.bytes)
                out.byte(UInt8(ascii: "}"))
            }
            out.byte(UInt8(ascii: "}"))
        }
        out.raw("],\"more\":"); out.raw(more ? "true" : "false")
        out.raw(",\"preKeysLow\":"); out.raw(preKeysLow ? "true" : "false")
        out.raw(",\"keyPackagesLow\":"); out.raw(keyPackagesLow ? "true" : "false")
        out.byte(UInt8(ascii: "}"))
    }

    public init?(reading reader: inout HotJSONReader) {
        var version: UInt64?, messages: [MailboxEntry]?, more: Bool?, preKeysLow: Bool?, keyPackagesLow: Bool?
        guard reader.object({ key, reader in
            switch key {
            case "version" where version == nil: version = reader.number(); return version != nil
            case "more" where more == nil: more = reader.bool(); return more != nil
            case "preKeysLow" where preKeysLow == nil: preKeysLow = reader.bool(); return preKeysLow != nil
            case "keyPackagesLow" where keyPackagesLow == nil: keyPackagesLow = reader.bool(); return keyPackagesLow != nil
            case "messages" where messages == nil: messages = reader.array { Self.entry(&$0) }; return messages != nil
            default: return false
            }
        }), version == 2, let messages, let more, let preKeysLow, let keyPackagesLow else { return nil }
        self.init(messages: messages, more: more, preKeysLow: preKeysLow, keyPackagesLow: keyPackagesLow)
    }

    private static func entry(_ reader: inout HotJSONReader) -> MailboxEntry? {
        var id: String?, receivedAt: UInt64?, envelope: [UInt8]?, group: GroupDelivery?
        guard reader.object({ key, reader in
            switch key {
            case "id" where id == nil: id = reader.string(); return id != nil
            case "receivedAt" where receivedAt == nil: receivedAt = reader.number(); return receivedAt != nil
            case "envelope" where envelope == nil: envelope = reader.base64(); return envelope != nil
            case "group" where group == nil: group = Self.group(&reader); return group != nil
            default: return false
            }
        }), let id, let receivedAt else { return nil }
        return MailboxEntry(id: id, receivedAt: receivedAt, envelope: envelope.map { Base64Bytes($0) }, group: group)
    }

    private static func group(_ reader: inout HotJSONReader) -> GroupDelivery? {
        var groupId: String?, epoch: UInt64?, kind: String?, message: [UInt8]?
        guard reader.object({ key, reader in
            switch key {
            case "groupId" where groupId == nil: groupId = reader.string(); return groupId != nil
            case "epoch" where epoch == nil: epoch = reader.number(); return epoch != nil
            case "kind" where kind == nil: kind = reader.string(); return kind != nil
            case "message" where message == nil: message = reader.base64(); return message != nil
            default: return false
            }
        }), let groupId, let epoch, let kind, let message else { return nil }
        return GroupDelivery(groupId: groupId, epoch: epoch, kind: kind, message: Base64Bytes(message))
    }
}
