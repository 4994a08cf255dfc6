import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// Creates Alice's and Bob's stores (one device each, key-file unlock), makes each a contact of the
/// other with the other's account key and signed device list, and publishes Bob's prekey bundle.
enum Accounts {
    static func create(_ layout: Layout) throws {
        let now = SystemWallClock().nowMilliseconds()
        var made: [String: (account: LocalAccount, preKeys: LocalPreKeys, store: EncryptedStore)] = [:]
        for (address, path, key) in [(Layout.aliceAddress, layout.aliceStore, layout.aliceKey),
                                     (Layout.bobAddress, layout.bobStore, layout.bobKey)] {
            try KeyFile.create(at: key)
            let store = try EncryptedStore.create(at: path, unlock: [.keyFile(path: key)])
            let accountKey = Ed25519.KeyPair()
            let device = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
            let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: now)],
                                             version: 1, accountKey: accountKey)
            let account = LocalAccount(address: address, accountKey: accountKey, device: device, deviceList: list,
                                       certificateExpiry: now + LocalAccount.certificateLifetime)
            let preKeys = LocalPreKeys.generate(oneTime: 1)
            try store.saveLocalAccount(account, preKeys: preKeys)
            made[address] = (account, preKeys, store)
        }
        let alice = made[Layout.aliceAddress]!, bob = made[Layout.bobAddress]!
        for (me, peer) in [(alice, bob), (bob, alice)] {
            try me.store.saveContact(Contact(address: try peer.account.accountAddress,
                                             account: KnownAccount(accountKey: peer.account.accountKey.publicKey,
                                                                   deviceList: peer.account.deviceList)))
        }
        // The relay would hand out Bob's one-time keys with the first bundle it serves.
        let bundle = bob.preKeys.bundle(identity: bob.account.device,
                                        oneTimePreKeyId: bob.preKeys.oneTimePreKeys.keys.first,
                                        oneTimePQPreKeyId: bob.preKeys.oneTimePQPreKeys.keys.first)
        try Files.writeAtomically(bundle.encoded, to: layout.bobBundle, tempDir: layout.dir)
        try GroupTraffic.create(alice: (alice.account, alice.store), bob: (bob.account, bob.store))
        for store in [alice.store, bob.store] { _ = try store.verify() }
    }

    static func open(_ path: String, key: String) throws(StoreError) -> EncryptedStore {
        try EncryptedStore.open(at: path, unlock: .keyFile(path: key))
    }
}

/// Bob's prekey bundle from the file the driver wrote (stands in for the relay's prekey directory).
struct FileBundleSource: PreKeyBundleSource {
    let path: String
    func bundle(for device: DeviceAddress) async throws -> PreKeyBundle {
        guard device == DeviceAddress(address: Layout.bobAddress, deviceId: 1) else {
            throw ProtocolError.unknownDevice(address: device.address, deviceId: device.deviceId)
        }
        return try PreKeyBundle(decoding: try Files.read(path))
    }
}

/// What a client does with its inbox: decode each entry's Content and file text messages into their
/// conversation (a message from one of our own devices under its destination, any other under the
/// sender), each entry in one transaction with its removal from the inbox.
enum Filing {
    struct Result { var filed = 0; var repeats = 0; var other = 0 }

    static func fileInbox(_ store: EncryptedStore, ownAddress: String) throws -> Result {
        var result = Result()
        for (id, message) in try store.inbox() {
            let content = try Content(decoding: message.content)
            guard case .text(let text) = content.body else {
                try store.file(inboxEntry: id, as: nil)
                result.other += 1
                continue
            }
            let conversation = try ConversationId(destination: message.sender.address == ownAddress ? content.destination : message.sender.address)
            let record = MessageRecord(conversation: conversation, direction: .incoming, sender: message.sender,
                                       clientMessageId: content.messageId, sentAt: content.sentAt,
                                       receivedAt: SystemWallClock().nowMilliseconds(), text: text, state: .received)
            if try store.file(inboxEntry: id, as: record) == nil { result.repeats += 1 } else { result.filed += 1 }
        }
        return result
    }
}
