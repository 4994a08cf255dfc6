import ParleyClient
import ParleyProtocol
import ParleyStore

/// A group's members as the chat window's `/members` lists them: each account once, with how far this
/// device trusts it and how many of its devices are leaves of the group.
extension Operations {
    public func groupMembers(_ id: GroupId) throws -> [GroupMemberResult] {
        let record = try engine.group(id)
        let own = engine.ownAddress.description
        var devices: [String: Int] = [:]
        for member in record.members { devices[member.address, default: 0] += 1 }
        return try record.accounts.map { account in
            let contact = try (try? AccountAddress(account)).flatMap { try engine.contact($0) }
            return GroupMemberResult(address: account, name: PeerText.forName(contact?.nickname ?? ""), isSelf: account == own,
                                     isContact: contact != nil, trustLevel: contact.map { TrustLevel.name($0.trust) } ?? "",
                                     devices: devices[account] ?? 0)
        }
    }
}

/// One member account of a group.
public struct GroupMemberResult: Codable, Sendable, Equatable {
    /// The account's address (from its leaves' credentials, each checked against its signed device list).
    public let address: String
    /// The nickname this device gave the account, neutralised; "" for none.
    public let name: String
    public let isSelf: Bool
    /// Whether the account is among this device's contacts (a member another member added may not be).
    public let isContact: Bool
    /// The contact's trust level (`TrustLevel`); "" for this account and for one that is not a contact.
    public let trustLevel: String
    /// The account's devices in the group: each is a leaf.
    public let devices: Int

    public var trust: TrustState? { TrustLevel.state(trustLevel) }

    public init(address: String, name: String, isSelf: Bool, isContact: Bool, trustLevel: String, devices: Int) {
        self.address = address
        self.name = name
        self.isSelf = isSelf
        self.isContact = isContact
        self.trustLevel = trustLevel
        self.devices = devices
    }
}
