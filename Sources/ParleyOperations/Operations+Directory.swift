import ParleyClient
import ParleyProtocol

/// signal-cli's getUserStatus: whether an address is an account on its relay.
public struct UserStatusResult: Codable, Sendable, Equatable {
    public let recipient: String
    /// signal-cli's member for the account's identifier; here the address again.
    public let number: String
    public let isRegistered: Bool
}

extension Operations {
    public func userStatus(of recipients: [String]) async throws -> [UserStatusResult] {
        var out: [UserStatusResult] = []
        for recipient in recipients {
            let address: AccountAddress
            do { address = try AccountAddress(recipient) } catch { throw OperationError.invalidInput("\(recipient) is not an address: \(error)") }
            out.append(UserStatusResult(recipient: recipient, number: recipient, isRegistered: try await engine.isRegistered(address)))
        }
        return out
    }
}
