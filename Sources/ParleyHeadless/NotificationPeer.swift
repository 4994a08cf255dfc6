/// Whoever the daemon writes notifications to: a newline-delimited connection (standard input/output, a
/// Unix-socket client) or an HTTP event stream. The hub and the method handlers know only this.
public protocol NotificationPeer: AnyObject, Sendable {
    var isClosed: Bool { get }
    /// Writes one notification and returns once it was written (false if the peer is gone). `cursor` is
    /// the store id of the message it carries for `account`: a peer that can resume (an event stream)
    /// tells the client, which gives it back on reconnect.
    func deliver(_ method: String, _ params: JSONValue, account: String, cursor: Int64?) async -> Bool
    /// Queues a notification without waiting; false when the peer is gone or already has too many waiting.
    /// For notifications that lose their meaning when late (typing, receipts).
    @discardableResult
    func offer(_ method: String, _ params: JSONValue) -> Bool
}

extension LineConnection: NotificationPeer {
    public func deliver(_ method: String, _ params: JSONValue, account: String, cursor: Int64?) async -> Bool {
        await send(RPCLine.notification(method, params))
    }

    @discardableResult
    public func offer(_ method: String, _ params: JSONValue) -> Bool {
        offer(RPCLine.notification(method, params))
    }
}
