import ArgumentParser
import ParleyProtocol

/// Addresses on the command line are parsed as the arguments are, before any store is opened: text that
/// is not `NAME@HOST[:PORT]` is a usage error (exit status 1) naming the argument, and nothing is tried.
/// Use as `@Argument(transform: accountAddress)`.
func accountAddress(_ text: String) throws -> AccountAddress {
    do { return try AccountAddress(text) } catch { throw ValidationError(error.reason) }
}
