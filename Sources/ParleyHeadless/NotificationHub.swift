import Foundation
import ParleyClient
import ParleyProtocol
import ParleyStore

/// Subscriptions and the notifications they get.
///
/// Messages are never dropped: every incoming message is in the store before the relay is told to
/// forget it, so a subscription does not forward the engine's events but reads the store after a durable
/// cursor (the store id of the last message written to a subscriber, kept in the store's settings under
/// the subscription's cursor name). On subscribe it replays what came after the cursor — while the daemon
/// was down or nobody was subscribed — and then whatever arrives. The cursor advances only after the
/// notification was written to the subscriber, so delivery is at least once; the message `id` lets a bot
/// drop the rare repeat after a crash between the write and the cursor update.
///
/// Receipts, typing, identity, device and group changes are not replayed: they are sent to whoever is
/// subscribed when they happen, and dropped for a subscriber that has stopped reading.
public actor NotificationHub {
    public nonisolated let store: any NotificationSource
    public nonisolated let account: AccountAddress
    private var subscriptions: [Int: Subscription] = [:]
    private var nextId = 1
    private let clock: any WallClock

    struct Subscription {
        let connection: any NotificationPeer
        let cursorName: String
        var cursor: Int64
        var pumping = false
        var dirty = false
        /// Created but not started: the replay waits until the subscribe response was written.
        var held = true
    }

    /// Messages read from the store per round of a pump (bounds the memory one subscriber can hold).
    static let page = 256

    public init(store: any NotificationSource, account: AccountAddress, clock: any WallClock = SystemWallClock()) {
        self.store = store
        self.account = account
        self.clock = clock
    }

    static func settingName(_ cursor: String) -> String { "headless.cursor." + cursor }

    public static func validCursorName(_ name: String) -> Bool {
        !name.isEmpty && name.count <= 64 && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    /// The stored cursor of `name` (0: nothing delivered yet, so the whole history replays).
    public func cursor(named name: String) throws -> Int64 {
        Int64(try store.setting(Self.settingName(name)) ?? "") ?? 0
    }

    /// Creates a subscription for `connection`; it starts (replay first) at `release`, once the response
    /// carrying its id was written. Returns its id.
    /// `after` starts it after that store id instead of the stored cursor (an event stream's client resuming
    /// from the last event it saw); what it delivers still advances the stored cursor.
    public func subscribe(_ connection: any NotificationPeer, cursorName: String, after: Int64? = nil) throws -> Int {
        let id = nextId
        nextId += 1
        let start = try after ?? cursor(named: cursorName)
        subscriptions[id] = Subscription(connection: connection, cursorName: cursorName, cursor: start)
        return id
    }

    /// Starts the subscriptions of `connection` that wait for their subscribe response to be written.
    public func release(_ connection: any NotificationPeer) {
        for (id, subscription) in subscriptions where subscription.held && subscription.connection === connection {
            subscriptions[id]!.held = false
            schedulePump(id)
        }
    }

    /// Ends one subscription of `connection`, or all of them when `id` is nil. Returns how many ended.
    @discardableResult
    public func unsubscribe(_ connection: any NotificationPeer, id: Int? = nil) -> Int {
        let ids = subscriptions.filter { $0.value.connection === connection && (id == nil || $0.key == id) }.map(\.key)
        for id in ids { subscriptions[id] = nil }
        return ids.count
    }

    public var subscriberCount: Int { subscriptions.count }

    /// Takes one engine event: a message makes every subscription look at the store again; the rest
    /// goes straight to the subscribers.
    public func handle(_ event: EngineEvent) {
        switch event {
        case .message:
            for id in subscriptions.keys { schedulePump(id) }
        default:
            // Receipts, typing, reads on another device, identity, device and group changes: as `parley
            // receive --json` shows them (`ReceivedShapes`), to whoever is subscribed now.
            let store = store
            guard let (method, params) = ReceivedShapes.notification(for: event, account: account, now: clock.nowMilliseconds(),
                                                                     sentAt: { try? store.message(sentBy: $0, clientMessageId: $1)?.sentAt },
                                                                     groupNames: { store.groupName(of: $0) })
            else { return }
            broadcast(method) { NotificationShapes.params(params, subscription: $0) }
        }
    }

    /// Looks at the store for every subscription (a safety net for a wake-up whose event was lost).
    public func pumpAll() {
        for id in subscriptions.keys { schedulePump(id) }
    }

    private func broadcast(_ method: String, _ params: (Int) -> JSONValue) {
        for (id, subscription) in subscriptions where !subscription.held {
            if subscription.connection.isClosed {
                subscriptions[id] = nil
                continue
            }
            subscription.connection.offer(method, params(id))
        }
    }

    private func schedulePump(_ id: Int) {
        guard let subscription = subscriptions[id], !subscription.held else { return }
        if subscription.pumping {
            subscriptions[id]!.dirty = true
            return
        }
        subscriptions[id]!.pumping = true
        Task { await self.pump(id) }
    }

    /// Writes every deliverable message after the subscription's cursor, a page at a time, advancing
    /// and saving the cursor after each page was written; runs until the store has nothing newer.
    private func pump(_ id: Int) async {
        while let subscription = subscriptions[id] {
            subscriptions[id]!.dirty = false
            let page: [MessageRecord]
            do { page = try store.messages(after: subscription.cursor, limit: Self.page) } catch {
                subscriptions[id]?.pumping = false
                return
            }
            if page.isEmpty {
                if subscriptions[id]?.dirty == true { continue }
                subscriptions[id]?.pumping = false
                return
            }
            var written = subscription.cursor
            for record in page {
                if ReceivedShapes.deliverable(record) {
                    let sender = try? record.sender.account
                    let params = NotificationShapes.message(record, account: account.description, subscription: id,
                                                            sourceName: ReceivedShapes.nickname(sender.flatMap { try? store.contact($0) }),
                                                            groupName: record.conversation.group.flatMap { store.groupName(of: $0) })
                    guard subscriptions[id] != nil,
                          await subscription.connection.deliver(NotificationShapes.receive, params, account: account.description, cursor: record.id) else { break }
                }
                written = record.id
            }
            if written > subscription.cursor {
                try? store.setSetting(Self.settingName(subscription.cursorName), String(written))
            }
            guard subscriptions[id] != nil, written == page.last!.id, !subscription.connection.isClosed else {
                subscriptions[id] = nil
                return
            }
            subscriptions[id]!.cursor = written
        }
    }
}
