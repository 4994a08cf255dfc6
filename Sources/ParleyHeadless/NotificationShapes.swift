import ParleyClient
import ParleyStore

/// The daemon's notifications: `ReceivedShapes`' objects (the same that `parley receive --json` prints)
/// with the `subscription` they are written for.
public enum NotificationShapes {
    public static let receive = ReceivedShapes.receive
    public static let identityChanged = ReceivedShapes.identityChanged
    public static let devicesChanged = ReceivedShapes.devicesChanged
    /// Every notification method the daemon writes (the man page documents exactly these).
    public static let all = [receive, identityChanged, devicesChanged]

    /// A stored incoming message, as the `receive` notification's params.
    public static func message(_ m: MessageRecord, account: String, subscription: Int, sourceName: String? = nil,
                               groupName: String? = nil) -> JSONValue {
        params(ReceivedShapes.message(m, account: account, sourceName: sourceName, groupName: groupName), subscription: subscription)
    }

    /// `params` for one subscription.
    public static func params(_ params: [String: JSONValue], subscription: Int) -> JSONValue {
        var params = params
        params["subscription"] = .from(subscription)
        return .object(params)
    }
}
