import Foundation
import ParleyCrypto
@testable import ParleyHeadless
@testable import ParleyProtocol
@testable import ParleyRelayAPI
@testable import ParleyStore

/// `parley-fuzz seeds DIR`: writes the seed corpus (valid examples of every format) into DIR/<target>/,
/// from the protocol vectors (Tests/vectors/protocol-v1.json, read from the working directory) and from
/// values built here with fixed keys. Committed under Tests/fuzz-corpus; rerun when a format changes.
enum Seeds {
    static func write(into directory: String) throws {
        let vectors = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: "Tests/vectors/protocol-v1.json")))
            as! [String: Any]
        func vector(_ name: String) -> [UInt8] { Hex.decode(vectors[name] as! String)! }
        var written = 0
        func seed(_ target: String, _ name: String, _ bytes: [UInt8]) throws {
            precondition(FuzzTarget.all[target] != nil, target)
            let folder = directory + "/" + target
            try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
            try Data(bytes).write(to: URL(fileURLWithPath: folder + "/seed-" + name))
            written += 1
        }
        func text(_ target: String, _ name: String, _ string: String) throws { try seed(target, name, Array(string.utf8)) }

        let certificate = try SenderCertificate(decoding: vector("bob_sender_certificate"))
        let preKeyMessage = try PreKeyMessage(decoding: vector("message_1_prekey"))
        let ratchetMessage = try RatchetMessage(decoding: vector("message_2_ratchet"))
        let deviceList = try SignedDeviceList(verifying: vector("bob_device_list"))

        // Protocol formats.
        try seed("envelope", "vector-message-2", vector("sealed_envelope_message_2"))
        let sealedRatchet = SealedContent(certificate: certificate, message: .ratchet(ratchetMessage))
        let sealedPreKey = SealedContent(certificate: certificate, message: .preKey(preKeyMessage))
        try seed("envelope", "sealed-to-fuzz-identity", try SealedSender.seal(sealedRatchet, to: FuzzTarget.identity.publicKey))
        try seed("sealed-content", "ratchet", sealedRatchet.encoded)
        try seed("sealed-content", "prekey", sealedPreKey.encoded)
        try seed("sealed-content", "ratchet-padded", Padding.pad(sealedRatchet.encoded))
        try seed("sender-certificate", "vector", vector("bob_sender_certificate"))
        try seed("ratchet-messages", "prekey", vector("message_1_prekey"))
        try seed("ratchet-messages", "ratchet-1", vector("message_1_ratchet"))
        try seed("ratchet-messages", "ratchet-2", vector("message_2_ratchet"))
        try seed("device-list", "vector", vector("bob_device_list"))
        try seed("prekey-bundle", "vector", vector("bob_bundle"))

        let pointer = AttachmentPointer(id: "0123456789abcdef0123456789abcdef", key: [UInt8](repeating: 3, count: 32), size: 70_000,
                                        digest: [UInt8](repeating: 4, count: 32), fileName: "report.pdf", contentType: "application/pdf")
        var pointerWriter = ByteWriter()
        pointer.encode(into: &pointerWriter)
        try seed("attachment-pointer", "pdf", pointerWriter.bytes)

        let messageId = [UInt8](repeating: 9, count: 16)
        let contents: [(String, Content.Body)] = [
            ("text", .text("hello, world")),
            ("receipt", .receipt(read: true, messageIds: [messageId, messageId])),
            ("typing", .typing(started: true)),
            ("message-reply-attachment", .message(text: "see attached", replyTo: messageId, attachment: pointer)),
            ("message", .message(text: "plain", replyTo: nil, attachment: nil)),
            ("trust", .trustDecision(address: "bob@relay.example:7000", accountKey: [UInt8](repeating: 5, count: 32), state: 1)),
            ("reaction", .reaction(emoji: "👍", targetAuthor: "bob@relay.example:7000", target: messageId, remove: false)),
            ("edit", .edit(target: messageId, text: "fixed")),
            ("delete", .delete(target: messageId)),
            ("device-ready", .deviceReady),
            ("group-key-request", .groupInfoKeyRequest(group: try GroupId([UInt8](repeating: 0xab, count: GroupId.length)))),
            ("group-key-answer", .groupInfoKeyAnswer(group: try GroupId([UInt8](repeating: 0xab, count: GroupId.length)), epoch: 7,
                                                     key: [UInt8](repeating: 0x42, count: 32))),
        ]
        for (name, body) in contents {
            try seed("content", name, Content(messageId: messageId, sentAt: 1_700_000_000_000, destination: "alice@relay.example", body: body).encoded)
        }

        // Provisioning: the selector byte, then the bytes.
        let code = LinkCode(relay: "relay.example", slot: [UInt8](repeating: 7, count: 16),
                            ephemeralKey: FuzzTarget.identity.agreementKey.publicKey, deviceKey: FuzzTarget.identity.publicKey)
        let accountKey = try Ed25519.KeyPair(seed: SecretBytes(vector("bob_account_seed")))
        let payload = ProvisioningPayload(address: "bob@relay.example", accountKey: accountKey, deviceId: 2, deviceList: deviceList,
                                          transfer: pointer)
        try seed("provisioning", "payload", [0] + payload.encoded())
        try seed("provisioning", "link-code", [1] + code.encoded)
        try seed("provisioning", "link-text", [2] + Array(code.text.utf8))
        try seed("provisioning", "sealed", [3] + (try Provisioning.seal(payload, to: code)))

        // The relay's JSON bodies: the selector byte (see FuzzTarget.relayJSON), then the body.
        let encoder = JSONEncoder()
        let key = Base64Bytes([UInt8](repeating: 1, count: 32))
        let send = SendRequest(messages: [OutgoingMessage(deviceId: 1, deviceKey: key, envelope: Base64Bytes([1, 2, 3, 4, 5]))])
        try seed("relay-json", "send-hot", [0] + send.jsonBytes())
        try seed("relay-json", "send-codable", [0] + Array(try encoder.encode(send)))
        let fetch = FetchResponse(messages: [QueuedMessage(id: "42", envelope: Base64Bytes([9, 9]), receivedAt: 1_700_000_000_000)],
                                  more: true, preKeysLow: false)
        try seed("relay-json", "fetch-hot", [1] + fetch.jsonBytes())
        try seed("relay-json", "ack-hot", [2] + AckRequest(ids: ["1", "2", "3"]).jsonBytes())
        try seed("relay-json", "register", [3] + Array(try encoder.encode(
            RegisterRequest(address: "bob@relay.example", accountKey: key, deviceList: Base64Bytes(vector("bob_device_list"))))))
        try seed("relay-json", "device-list", [4] + Array(try encoder.encode(DeviceListUpdate(deviceList: Base64Bytes(vector("bob_device_list"))))))
        try text("relay-json", "challenge", "\u{05}{\"address\":\"bob@relay.example\",\"deviceId\":1}")
        try text("relay-json", "attachment-slot", "\u{08}{\"size\":1024}")
        try text("relay-json", "provisioning", "\u{09}{\"message\":\"AQIDBA==\"}")
        try text("relay-json", "error", "\u{0E}{\"error\":\"not_found\",\"message\":\"no such account\"}")

        // JSON-RPC lines.
        try text("json-rpc", "send", #"{"jsonrpc":"2.0","id":1,"method":"send","params":{"to":"bob@relay.example","text":"hi"}}"#)
        try text("json-rpc", "no-params", #"{"jsonrpc":"2.0","id":"a","method":"contacts"}"#)
        try text("json-rpc", "nested", #"{"jsonrpc":"2.0","id":null,"method":"x","params":{"a":[1,2.5,-3,true,null,{"b":"\u00e9\n"}]}}"#)
        try text("json-rpc", "batch", #"[{"jsonrpc":"2.0","id":1,"method":"a"}]"#)

        // The chat window's files.
        try text("config", "full", """
            keymap = "vi"   # comment
            theme = "solarized-dark"
            bell = true
            notify = "osc777"
            timestamps = false
            roster = true
            [bindings]
            "C-o" = "next-window"
            F5 = "redraw"
            [contacts."bob@relay.example:7000"]
            notify = "off"
            """)
        for file in try FileManager.default.contentsOfDirectory(atPath: "themes") where file.hasSuffix(".theme") {
            try seed("theme", file, Array(try Data(contentsOf: URL(fileURLWithPath: "themes/" + file))))
        }

        // The store's records: the selector byte (see FuzzTarget.storeRecords), then the record.
        let sender = DeviceAddress(address: "bob@relay.example", deviceId: 1)
        let record = MessageRecord(conversation: .direct(try AccountAddress("bob@relay.example")), direction: .incoming, sender: sender, clientMessageId: messageId,
                                   sentAt: 1, receivedAt: 2, text: "hello", state: .received, replyTo: messageId, attachment: pointer)
        try seed("store-records", "message", [0] + RecordCodec.encode(record))
        try seed("store-records", "received", [1] + RecordCodec.encode(
            ReceivedMessage(sender: sender, certificate: certificate, content: [1, 2, 3], startedSession: true)))
        try seed("store-records", "outgoing", [2] + RecordCodec.encode(OutgoingEnvelope(recipient: sender, envelope: [4, 5], batch: [6]),
                                                                       content: [7, 8]))
        let known = KnownAccount(accountKey: deviceList.accountKey, deviceList: deviceList)
        try seed("store-records", "contact", [3] + Contact(address: try AccountAddress("bob@relay.example"), account: known, trust: .verified,
                                                           displayName: "Bob").serialized())
        try seed("store-records", "known-account", [4] + known.serialized())
        try seed("store-records", "prekeys", [7] + LocalPreKeys.generate(oneTime: 2).serialized())

        try MLSSeeds.write(seed)

        print("wrote \(written) seeds into \(directory)")
    }
}
