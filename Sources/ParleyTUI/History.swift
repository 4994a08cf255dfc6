import ParleyClient
import ParleyProtocol
import ParleyStore

/// Where pages of a conversation come from: the engine in the chat window, a store in tests and the bench.
public protocol HistorySource {
    func messages(in conversation: ConversationId, before: Int64?, limit: Int) throws -> [MessageRecord]
}

extension EncryptedStore: HistorySource {}
extension Engine: HistorySource {}

/// Paging a conversation's history from the store into the app state: the newest page when a window
/// opens, older pages as scrolling nears the top of what is loaded. Only what is near the screen is
/// decrypted, so opening a conversation with 100k messages costs one page.
public enum History {
    public static let pageSize = 200

    public static func open(_ peer: ConversationId, from store: some HistorySource, into state: inout AppState) {
        let page = Self.page(of: peer, from: store, limit: pageSize)
        var conversation = AppState.Conversation()
        conversation.messages = page
        conversation.reachedStart = page.count < pageSize
        state.conversations[peer] = conversation
        state.updatePending(peer)
        state.settleUnreadMarker()
    }

    /// Loads the page before the oldest loaded message when fewer than a screen of lines is left above
    /// the visible part. Returns whether it loaded anything.
    @discardableResult
    public static func loadOlderIfNeeded(_ state: inout AppState, from store: some HistorySource, renderer: Renderer, width: Int, height: Int) -> Bool {
        guard let peer = state.focus, let conversation = state.conversations[peer], !conversation.reachedStart,
              renderer.linesAvailableAbove(state, width: width, height: height) < height else {
            renderer.clampScroll(&state, width: width, height: height)
            return false
        }
        let before = conversation.messages.first?.id
        let page = Self.page(of: peer, from: store, before: before, limit: pageSize)
        state.prepend(page, to: peer, complete: page.count < pageSize)
        return !page.isEmpty
    }

    /// Every message of `conversation` that carries an attachment, oldest first: the whole history is read,
    /// page by page (what /save N, /open N and /attachments count, whatever is loaded).
    public static func attachments(of conversation: ConversationId, from store: some HistorySource) throws -> [ChatMessage] {
        var pages: [[ChatMessage]] = []
        var before: Int64?
        while true {
            let page = try store.messages(in: conversation, before: before, limit: pageSize)
            pages.append(page.filter { $0.attachment != nil }.map(ChatMessage.init))
            guard page.count == pageSize, let first = page.first else { break }
            before = first.id
        }
        return pages.reversed().flatMap { $0 }
    }

    /// Up to `limit` messages of `conversation` before `before`, oldest first.
    static func page(of conversation: ConversationId, from store: some HistorySource, before: Int64? = nil, limit: Int) -> [ChatMessage] {
        ((try? store.messages(in: conversation, before: before, limit: limit)) ?? []).map(ChatMessage.init)
    }
}
