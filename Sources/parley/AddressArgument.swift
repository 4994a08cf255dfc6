import ArgumentParser
import ParleyOperations
import ParleyProtocol

/// Addresses on the command line are parsed as the arguments are, before any store is opened: text that
/// is not `NAME@HOST[:PORT]` is a usage error (exit status 1) naming the argument, and nothing is tried.
/// Use as `@Argument(transform: accountAddress)`.
func accountAddress(_ text: String) throws -> AccountAddress {
    do { return try AccountAddress(text) } catch { throw ValidationError(error.reason) }
}

/// A contact as the user names it: an address (parsed with the arguments, as `accountAddress` does, so a
/// malformed one is a usage error before any store is opened), or a short name — a nickname or the local
/// part of one contact's address — that `Operations.resolve` turns into the address once the store is open.
/// Use as `@Argument(transform: contactName)`.
func contactName(_ text: String) throws -> String {
    if text.contains("@") { _ = try accountAddress(text) }
    return text
}

/// A conversation as the user names it: `group:ID` for a group (its id as `parley group list` shows it, checked
/// once the store is open), else a contact as `contactName` takes it.
func conversationName(_ text: String) throws -> String {
    if text.hasPrefix(groupPrefix) { return text }
    return try contactName(text)
}

private let groupPrefix = "group:"

extension Operations {
    /// The conversation `conversationName` let through: a group this device knows of, or a contact.
    func conversation(_ text: String) throws -> ConversationId {
        if text.hasPrefix(groupPrefix) {
            let id = try groupId(text)
            _ = try showGroup(id)    // an unknown group is said as such, before anything else
            return .group(id)
        }
        return .direct(try resolve(text))
    }
}
