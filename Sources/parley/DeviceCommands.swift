import ArgumentParser
import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// `parley link`: run on the NEW device. Shows a link code and waits for an existing device to answer it.
struct LinkCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "link",
        abstract: "Link this machine as a new device of an existing account.",
        discussion: """
            Opens a provisioning slot on the relay at HOST:PORT and shows a link code, as text and as a QR \
            code. On a device that already has the account, run `parley devices add CODE`. That device adds \
            this one to the account's signed device list and sends it — sealed to a key only this device \
            holds — the account key, contacts with their trust decisions and, if asked, recent history. \
            The code is valid for 15 minutes and works once; whoever holds it can take over the slot, so \
            carry it only over a channel you trust (your own eyes on both screens are best).

            The new device gets its own device key; contacts see a device added to the account, and the \
            safety number does not change.
            """)

    @Argument(help: ArgumentHelp("The account's relay.", valueName: "HOST:PORT"))
    var relay: String

    @OptionGroup var client: ClientOptions

    @OptionGroup var transport: TransportOptions

    @Option(help: ArgumentHelp("Give up after this many seconds.", valueName: "SECONDS"))
    var timeout: Int = 900

    @Flag(help: "Draw the QR code with '#' instead of Unicode half-blocks.")
    var ascii = false

    @Flag(help: "Print the link code and the result as JSON lines (no QR code).")
    var json = false

    func run() async throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        let home = client.resolvedHome
        if home.exists { throw ClientError.accountExists(home.storePath) }
        try Policy.current.checkRelay(named: relay)
        try Policy.current.checkUnlock(keyFile: client.keyFile != nil)
        let endpoint = try transport.endpoint(relay: relay, insecure: client.insecure)
        let relayClient = try RelayClient(endpoint: endpoint)
        _ = try await relayClient.health()
        try await home.creating(keyFile: client.keyFile) {
            let unlock = try client.unlockMethod(confirm: true)
            let pending = try await PendingLink.begin(relay: relayClient, relayName: relay)
            if json {
                Output.json(["type": "linkCode", "code": pending.code.text])
            } else {
                for line in try qrLines(Array(pending.code.text.utf8), ascii: ascii) { Output.line(line) }
                Output.line("")
                Output.line(pending.code.text)
                Output.line("")
                Output.line("On a device that has the account, run:  parley devices add \(pending.code.text)")
            }
            let payload = try await pending.waitForPayload(timeout: .seconds(timeout))
            try home.create()
            let store = try EncryptedStore.create(at: home.storePath, unlock: [unlock], parameters: Policy.current.argon2id(atLeast: .moderate))
            try ParleyHome.saveRelayOptions(store, tls: transport.tls, insecure: client.insecure, caFile: transport.caFile)
            let (engine, summary) = try await Engine.completeLink(payload, deviceKey: pending.deviceKey, store: store, relay: relayClient)
            let account = await engine.account
            if json {
                Output.json(["type": "linked", "address": account.address, "device": account.device.deviceId,
                             "contacts": summary.contacts, "messages": summary.messages])
            } else {
                Output.line("linked as device #\(account.device.deviceId) of \(account.address) in \(home.path) " +
                            "(\(summary.contacts) contacts, \(summary.messages) messages)")
            }
        }
    }
}

/// `parley devices`: this account's devices.
struct DevicesCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "devices",
        abstract: "List, link, name and revoke this account's devices.",
        subcommands: [ListDevices.self, AddDevice.self, NameDevice.self, RevokeDevice.self],
        defaultSubcommand: ListDevices.self)

    struct ListDevices: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "list",
            abstract: "List this account's devices (refreshed from the relay), or a contact's (the listDevices method).")
        @Argument(help: ArgumentHelp("A contact: an address, a nickname or a unique name (default: this account).", valueName: "CONTACT"),
                  transform: contactName)
        var contact: String?
        @OptionGroup var client: ClientOptions
        @Flag(help: "One JSON object per device.") var json = false

        func run() async throws {
            let operations = try client.openOperations()
            for device in try await operations.devices(of: try contact.map(operations.resolve)) {
                if json { try Output.result(device); continue }
                let created = Date(timeIntervalSince1970: Double(device.created) / 1000)
                let key = KeyFingerprint.short(try hex(device.identityKey, "the key"))
                Output.line("#\(device.id)\(device.thisDevice == true ? " (this device)" : "")\(device.name.map { "  \(Output.peer($0))" } ?? "")  " +
                            "linked \(created.formatted(.iso8601))  key \(key)")
            }
        }
    }

    struct AddDevice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add",
            abstract: "Link the new device that shows CODE (from `parley link`).",
            discussion: """
                Signs and publishes a device list with the new device's key, then sends it the account key, \
                contacts, trust decisions and device names, and with --history the newest messages of each \
                conversation, sealed so that only that device can read them.
                """)
        @Argument(help: ArgumentHelp("The code `parley link` shows (parley-link:…).", valueName: "CODE"))
        var code: String
        @Option(help: ArgumentHelp("A name for the new device.", valueName: "NAME")) var name: String?
        @Option(help: ArgumentHelp("Send the newest N messages of each conversation (default 0).", valueName: "N"))
        var history: Int = 0
        @OptionGroup var client: ClientOptions
        @Flag(help: "Print the result as JSON.") var json = false

        func validate() throws {
            guard history >= 0 else { throw ValidationError("--history cannot be negative") }
        }

        func run() async throws {
            let linked = try await client.openOperations().linkDevice(code: code, name: name, history: history)
            if json { try Output.result(linked); return }
            Output.line("linked device #\(linked.device) (sent \(linked.contacts) contacts, \(linked.messages) messages)")
        }
    }

    struct NameDevice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(commandName: "name", abstract: "Name a device (a label kept on this device).")
        @Argument(help: "The device id (see `parley devices`).") var id: UInt32
        @Argument(help: "The name; empty to remove it.") var name: String
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.openOperations().nameDevice(id, name)
        }
    }

    struct RevokeDevice: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke",
            abstract: "Remove a device from the account.",
            discussion: """
                Publishes a device list without it: the relay drops its sign-in tokens, prekeys and queued \
                mail at once, it can no longer sign in, and contacts stop encrypting to it. The device still \
                holds the account key (every device does); if it was stolen, start a new account key instead \
                — see RECOVERY in parley(1).
                """)
        @Argument(help: "The device id (see `parley devices`).") var id: UInt32
        @OptionGroup var client: ClientOptions
        func run() async throws {
            try await client.openOperations().revokeDevice(id)
            Output.line("revoked device #\(id)")
        }
    }
}
