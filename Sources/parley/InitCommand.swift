import ArgumentParser
import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore
import ParleyOperations

struct InitCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "init",
        abstract: "Create an account on a relay and an encrypted store for it.",
        discussion: """
            Generates the account key, this device's key and prekeys, registers NAME@HOST:PORT on the relay \
            at HOST:PORT, and writes everything to an encrypted store in the home directory. The store is \
            protected by a passphrase (prompted for, or --passphrase-file, or $PARLEY_PASSPHRASE) or by a key \
            file (--key-file; created with mode 0600 if it does not exist).

            The relay is reached over plain http only on loopback addresses and without --ca-file (which \
            implies --tls); use --tls to force https, or --insecure to allow plain http elsewhere.
            """)

    @Argument(help: ArgumentHelp("The new account's address.", valueName: "NAME@HOST:PORT"))
    var address: String

    @OptionGroup var client: ClientOptions

    @OptionGroup var transport: TransportOptions

    func run() async throws {
        let parsed: AccountAddress
        do { parsed = try AccountAddress(address) } catch { throw ValidationError(error.description) }
        try Policy.current.checkRelay(of: parsed)
        try Policy.current.checkUnlock(keyFile: client.keyFile != nil)
        let home = client.resolvedHome
        if home.exists { throw ClientError.accountExists(home.storePath) }
        let endpoint = try transport.endpoint(relay: parsed.relay, insecure: client.insecure)
        let relay = try RelayClient(endpoint: endpoint)
        _ = try await relay.health()
        var created: EncryptedStore?
        // Once the relay has registered the account, its keys are in the store: a later failure (the prekey
        // upload) keeps them, and the next command that reaches the relay uploads prekeys again.
        let registered = { (try? created?.localAccount()) != nil }
        do {
            try await home.creating(keyFile: client.keyFile, keep: registered) {
                let unlock = try client.unlockMethod(confirm: true)
                try home.create()
                let store = try EncryptedStore.create(at: home.storePath, unlock: [unlock],
                                                      parameters: Policy.current.argon2id(atLeast: .moderate))
                created = store
                try ParleyHome.saveRelayOptions(store, tls: transport.tls, insecure: client.insecure, caFile: transport.caFile)
                let engine = try await Engine.createAccount(parsed, store: store, relay: relay)
                let account = await engine.account
                Output.line("created \(account.address) (device \(account.device.deviceId)) in \(home.path)")
            }
        } catch let error as ClientError where registered() {
            throw ClientError.network("created \(parsed) in \(home.path), but its prekeys did not reach the relay (\(error)); " +
                                      "`parley receive` uploads them again")
        }
    }
}

import Foundation
