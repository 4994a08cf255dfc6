/// signal-cli methods that Parley does not carry out, each with the reason a bot's author reads in the
/// error (-32000). Answering them with an error instead of "method not found" tells the author the
/// name is known and why it does nothing here; parley-jsonrpc(5) has the whole table.
public enum SignalCompatibility {
    static let noPhone = "Parley accounts are NAME@HOST:PORT on a relay, made with `parley init`: there is no phone number to register or verify"
    static let noProfile = "Parley has no profiles, avatars or stickers"
    static let notYet = "not served by the daemon yet"

    public static let unsupported: [String: String] = [
        "register": noPhone, "unregister": noPhone, "deleteLocalAccountData": noPhone,
        "startChangeNumber": noPhone, "finishChangeNumber": noPhone, "setPin": noPhone, "removePin": noPhone,
        "submitRateLimitChallenge": "Parley relays ask for no captchas", "updateAccount": noPhone,
        "startLink": "link a device with `parley link` (it shows the code to scan)",
        "finishLink": "link a device with `parley link` (it shows the code to scan)",
        "addDevice": "link a device with `parley devices link CODE`",
        "removeDevice": "revoke a device with `parley devices revoke ID`",
        "updateProfile": noProfile, "getAvatar": noProfile, "getSticker": noProfile, "listStickerPacks": noProfile,
        "addStickerPack": noProfile, "uploadStickerPack": noProfile,
        "sendPaymentNotification": "Parley has no payments",
        "sendMessageRequestResponse": "Parley has no message requests", "sendSyncRequest": "linked devices sync by themselves",
        "sendContacts": "linked devices sync by themselves", "updateConfiguration": notYet,
        "joinGroup": notYet,
        "receive": "read notifications with subscribeReceive (socket, standard input/output) or GET /api/v1/events (HTTP)",
    ]

    static func refusal(_ method: String) -> RPCError? {
        unsupported[method].map { RPCError(.notSupported, "\(method) is not supported by Parley: \($0)") }
    }
}
