import Dispatch
import Foundation
import ParleyClient
import ParleyProtocol
#if canImport(Glibc)
import Glibc
#endif

/// What the front end starts with besides the engine.
public struct ChatOptions: Sendable {
    public var config = Config()
    /// A config.toml problem, shown on the console instead of refusing to start.
    public var configProblem: String?
    public var themes = ThemeLibrary.standard()
    /// The conversation to open first (the demo opens the guide's).
    public var focus: ConversationId?
    /// Lines for the console at start.
    public var welcome: [String] = []
    /// A first notice for the status bar.
    public var tip: String?
    /// Whether to run the push connection (off only for tests that drive the engine themselves).
    public var connect = true

    public init() {}
}

/// Work posted to the UI thread from engine tasks and signal handlers; a pipe wakes the thread's poll.
final class UIInbox: @unchecked Sendable {
    typealias Job = @Sendable (ChatController) -> Void
    private let lock = NSLock()
    private var jobs: [Job] = []
    let readEnd: Int32, writeEnd: Int32

    init() {
        var fds: [Int32] = [0, 0]
        _ = pipe(&fds)
        readEnd = fds[0]
        writeEnd = fds[1]
        _ = fcntl(readEnd, F_SETFL, fcntl(readEnd, F_GETFL) | O_NONBLOCK)
        _ = fcntl(writeEnd, F_SETFL, fcntl(writeEnd, F_GETFL) | O_NONBLOCK)
    }

    func post(_ job: @escaping Job) {
        lock.withLock { jobs.append(job) }
        var byte: UInt8 = 1
        _ = write(writeEnd, &byte, 1)
    }

    func drain() -> [Job] {
        var sink = [UInt8](repeating: 0, count: 64)
        while read(readEnd, &sink, sink.count) > 0 {}
        return lock.withLock {
            defer { jobs.removeAll() }
            return jobs
        }
    }
}

/// Runs the curses front end on `engine` until the user quits or a SIGINT/SIGTERM/SIGHUP arrives. The UI
/// thread owns curses and the app state; engine calls run in tasks that post their results back.
public enum ChatSession {
    public static func run(engine: Engine, options: ChatOptions) async {
        let inbox = UIInbox()
        let events = await engine.subscribe()
        let listener = Task { for await event in events { inbox.post { $0.handle(event) } } }
        // config.toml's retention reaches the engine (stored, so every front end on this home keeps to it);
        // the engine shortens it to the policy's max_retention.
        try? await engine.setRetention(options.config.retention)
        await engine.startExpiryTimer()
        let connection = options.connect ? Task { await engine.runConnection() } : nil
        var signalSources: [any DispatchSourceSignal] = []
        for sig in [SIGINT, SIGTERM, SIGHUP] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { inbox.post { $0.quit() } }
            source.resume()
            signalSources.append(source)
        }
        let account = await engine.account.address
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                let controller = ChatController(engine: engine, account: account, options: options, inbox: inbox)
                controller.run()
                done.resume()
            }
            thread.stackSize = 8 << 20
            thread.start()
        }
        for source in signalSources { source.cancel() }
        for sig in [SIGINT, SIGTERM, SIGHUP] { signal(sig, SIG_DFL) }
        connection?.cancel()
        await engine.stopExpiryTimer()
        listener.cancel()
    }
}
