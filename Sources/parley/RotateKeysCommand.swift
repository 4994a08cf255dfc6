import ArgumentParser
import ParleyOperations

/// `parley rotate-keys`: incident response (PROTOCOL.md §3.5).
struct RotateKeysCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate-keys",
        abstract: "Give this device a new identity key, or (--account) the account a new account key.",
        discussion: """
            Without --account: a new device identity key and fresh prekeys for this device, and the device \
            list, re-signed by the account key, published. Contacts' next messages start new sessions with \
            it and their conversations say the device has a new key; the safety number does not change. Use \
            it when this device's keys or ratchet state may have been copied.

            With --account: a new account key. The old key signs a statement naming the new one, which the \
            relay requires and contacts are shown; the new device list names this device alone, so every \
            other device must be linked again (`parley devices add`). Contacts see a new safety number and \
            must verify it again: the statement does not make the new key trusted. Use it when a device that \
            held the account key was lost or stolen.

            Both first receive what waits on the relay and send what waits in the outbox; a message that \
            cannot be sent stops the rotation before anything changed. If the relay cannot be reached after \
            the new keys were stored, they are published at the next connection.
            """)

    @Flag(help: "Rotate the account key (a new safety number for every contact), not only this device's key.")
    var account = false

    @OptionGroup var client: ClientOptions

    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        // A chat window or daemon on this home would go on with the old keys in memory (and write them back).
        try client.lockHome(as: "parley rotate-keys")
        let rotated = try await client.openOperations().rotateKeys(account: account)
        if json { try Output.result(rotated); return }
        if account {
            Output.line("new account key \(rotated.accountKey) (was \(rotated.previousAccountKey)); contacts must verify the new safety number")
            if !rotated.removedDevices.isEmpty {
                Output.line("devices \(rotated.removedDevices.map { "#\($0)" }.joined(separator: ", ")) left the account: link them again with `parley devices add`")
            }
        } else {
            Output.line("device #\(rotated.device) has a new key \(rotated.deviceKey) (was \(rotated.previousDeviceKey)); the safety number is unchanged")
        }
    }
}
