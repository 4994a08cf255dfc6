import ParleyCrypto
import ParleyProtocol

/// What a newly linked device receives besides the account (PROTOCOL.md §15): contacts with their trust
/// state, device names, and optionally the newest messages of each conversation. It travels as one
/// encrypted attachment; this is its plaintext:
/// `version ‖ u32 n ‖ bytes32(contact) × n ‖ u32 m ‖ (state u8 ‖ bytes32(message)) × m ‖ u32 k ‖ (id u32 ‖ bytes16(name)) × k`,
/// contacts and messages in the store's own record encodings.
public enum LinkTransfer {
    static let version: UInt8 = 1

    public struct Summary: Sendable, Equatable {
        public var contacts = 0
        public var messages = 0
        public init() {}
    }

    /// `historyPerConversation`: how many of the newest messages of each conversation to include (0: none).
    public static func export(_ store: EncryptedStore, historyPerConversation: Int) throws(StoreError) -> (bytes: [UInt8], summary: Summary) {
        var w = ByteWriter(capacity: 4096)
        var summary = Summary()
        w.u8(version)
        let contacts = try store.contacts()
        w.u32(UInt32(contacts.count))
        for contact in contacts { w.bytes32(contact.serializedForLinkTransfer()) }
        summary.contacts = contacts.count
        var messages: [MessageRecord] = []
        if historyPerConversation > 0 {
            for conversation in try store.conversations() {
                messages += try store.messages(in: conversation, limit: historyPerConversation)
            }
        }
        w.u32(UInt32(messages.count))
        for message in messages {
            w.u8(message.state.rawValue)
            w.bytes32(RecordCodec.encode(message))
        }
        summary.messages = messages.count
        let names = try store.deviceNames()
        w.u32(UInt32(names.count))
        for (id, name) in names.sorted(by: { $0.key < $1.key }) {
            w.u32(id)
            w.bytes16(Array(name.utf8))
        }
        return (w.bytes, summary)
    }

    /// Writes contacts, names and history into `store` (a freshly linked device's).
    @discardableResult
    public static func install(_ bytes: [UInt8], into store: EncryptedStore) throws(StoreError) -> Summary {
        var summary = Summary()
        var contacts: [Contact] = []
        var messages: [MessageRecord] = []
        var names: [UInt32: String] = [:]
        do {
            var r = ByteReader(bytes, structure: "link transfer")
            guard try r.u8() == version else { throw StoreError.malformedRecord(table: "link transfer", detail: "unknown version") }
            for _ in 0..<Int(try r.u32()) { contacts.append(try Contact(serialized: try r.bytes32())) }
            for _ in 0..<Int(try r.u32()) {
                guard let state = DeliveryState(rawValue: try r.u8()) else {
                    throw StoreError.malformedRecord(table: "link transfer", detail: "message state")
                }
                messages.append(try RecordCodec.decodeMessage(try r.bytes32(), id: 0, state: state))
            }
            for _ in 0..<Int(try r.u32()) {
                let id = try r.u32()
                guard let name = String(validating: try r.bytes16(), as: UTF8.self) else {
                    throw StoreError.malformedRecord(table: "link transfer", detail: "device name")
                }
                names[id] = name
            }
            try r.finish()
        } catch let error as StoreError {
            throw error
        } catch {
            throw .malformedRecord(table: "link transfer", detail: "\(error)")
        }
        for contact in contacts { try store.saveContact(contact) }
        try store.insertMessages(messages.sorted { $0.sentAt < $1.sentAt })
        for (id, name) in names { try store.setDeviceName(name, for: id) }
        summary.contacts = contacts.count
        summary.messages = messages.count
        return summary
    }
}

extension EncryptedStore {
    /// The names the user gave this account's devices (a label on this device, copied when linking).
    public func deviceNames() throws(StoreError) -> [UInt32: String] {
        guard let stored = try setting("device-names") else { return [:] }
        var names: [UInt32: String] = [:]
        for line in stored.split(separator: "\n") {
            let parts = line.split(separator: "\t", maxSplits: 1)
            if parts.count == 2, let id = UInt32(parts[0]) { names[id] = String(parts[1]) }
        }
        return names
    }

    /// Names device `id` (nil removes the name). Tabs and line breaks become spaces.
    public func setDeviceName(_ name: String?, for id: UInt32) throws(StoreError) {
        var names = try deviceNames()
        let cleaned = name.map { String($0.map { $0 == "\t" || $0.isNewline ? " " : $0 }) }
        names[id] = cleaned?.isEmpty == true ? nil : cleaned
        let value = names.sorted { $0.key < $1.key }.map { "\($0.key)\t\($0.value)" }.joined(separator: "\n")
        try setSetting("device-names", value.isEmpty ? nil : value)
    }
}
