/// A group send or commit (`POST /v1/groups/{groupId}/messages` and `…/commits`), written and read by hand
/// as the 1:1 send is (HotJSON.swift). A commit adding a device to a 1,000-device group carries 1,000
/// recipients and a Welcome holding the whole ratchet tree (about 250 KB of base64): through JSONEncoder
/// and JSONDecoder that body cost the client and the relay several milliseconds each (issue #22, item 6).
/// Optional fields are left out when nil, as JSONEncoder leaves them; a document in any other form (an
/// explicit null, an unknown key) is left to JSONDecoder.
extension GroupSend: HotJSON {
    public var expectedJSONLength: Int {
        64 + Base64.encodedLength(message.bytes.count) + GroupRecipient.expectedJSONLength(recipients)
            + (nextVerifier.map { 24 + Base64.encodedLength($0.bytes.count) } ?? 0)
            + (groupInfo.map { 24 + Base64.encodedLength($0.bytes.count) } ?? 0)
            + (rejoiners.map { 16 + GroupRecipient.expectedJSONLength($0) } ?? 0)
            + (welcome.map { 48 + Base64.encodedLength($0.message.bytes.count) + GroupRecipient.expectedJSONLength($0.recipients) } ?? 0)
    }

    public func writeJSON(into out: inout HotJSONWriter) {
        out.raw("{\"epoch\":"); out.number(epoch)
        out.raw(",\"message\":"); out.base64(message.bytes)
        out.raw(",\"recipients\":"); GroupRecipient.write(recipients, into: &out)
        if let nextVerifier { out.raw(",\"nextVerifier\":"); out.base64(nextVerifier.bytes) }
        if let groupInfo { out.raw(",\"groupInfo\":"); out.base64(groupInfo.bytes) }
        if let rejoiners { out.raw(",\"rejoiners\":"); GroupRecipient.write(rejoiners, into: &out) }
        if let welcome {
            out.raw(",\"welcome\":{\"message\":"); out.base64(welcome.message.bytes)
            out.raw(",\"recipients\":"); GroupRecipient.write(welcome.recipients, into: &out)
            out.byte(UInt8(ascii: "}"))
        }
        out.byte(UInt8(ascii: "}"))
    }

    public init?(reading reader: inout HotJSONReader) {
        var epoch: UInt64?, message: [UInt8]?, recipients: [GroupRecipient]?, nextVerifier: [UInt8]?, groupInfo: [UInt8]?
        var rejoiners: [GroupRecipient]?, welcome: GroupWelcome?
        guard reader.object({ key, reader in
            switch key {
            case "epoch" where epoch == nil: epoch = reader.number(); return epoch != nil
            case "message" where message == nil: message = reader.base64(); return message != nil
            case "recipients" where recipients == nil: recipients = GroupRecipient.read(&reader); return recipients != nil
            case "nextVerifier" where nextVerifier == nil: nextVerifier = reader.base64(); return nextVerifier != nil
            case "groupInfo" where groupInfo == nil: groupInfo = reader.base64(); return groupInfo != nil
            case "rejoiners" where rejoiners == nil: rejoiners = GroupRecipient.read(&reader); return rejoiners != nil
            case "welcome" where welcome == nil: welcome = Self.welcome(&reader); return welcome != nil
            default: return false
            }
        }), let epoch, let message, let recipients else { return nil }
        self.init(epoch: epoch, message: Base64Bytes(message), recipients: recipients, nextVerifier: nextVerifier.map { Base64Bytes($0) },
                  groupInfo: groupInfo.map { Base64Bytes($0) }, rejoiners: rejoiners, welcome: welcome)
    }

    private static func welcome(_ reader: inout HotJSONReader) -> GroupWelcome? {
        var message: [UInt8]?, recipients: [GroupRecipient]?
        guard reader.object({ key, reader in
            switch key {
            case "message" where message == nil: message = reader.base64(); return message != nil
            case "recipients" where recipients == nil: recipients = GroupRecipient.read(&reader); return recipients != nil
            default: return false
            }
        }), let message, let recipients else { return nil }
        return GroupWelcome(message: Base64Bytes(message), recipients: recipients)
    }
}

extension GroupRecipient {
    static func expectedJSONLength(_ recipients: [GroupRecipient]) -> Int {
        recipients.reduce(2) { $0 + 32 + $1.address.utf8.count }
    }

    static func write(_ recipients: [GroupRecipient], into out: inout HotJSONWriter) {
        out.byte(UInt8(ascii: "["))
        for (index, recipient) in recipients.enumerated() {
            if index > 0 { out.byte(UInt8(ascii: ",")) }
            out.raw("{\"address\":"); out.string(recipient.address)
            out.raw(",\"deviceId\":"); out.number(UInt64(recipient.deviceId))
            out.byte(UInt8(ascii: "}"))
        }
        out.byte(UInt8(ascii: "]"))
    }

    static func read(_ reader: inout HotJSONReader) -> [GroupRecipient]? {
        reader.array { reader in
            var address: String?, deviceId: UInt32?
            guard reader.object({ key, reader in
                switch key {
                case "address" where address == nil: address = reader.string(); return address != nil
                case "deviceId" where deviceId == nil: deviceId = reader.number().flatMap { UInt32(exactly: $0) }; return deviceId != nil
                default: return false
                }
            }), let address, let deviceId else { return nil }
            return GroupRecipient(address: address, deviceId: deviceId)
        }
    }
}
