import Foundation
import ParleyClient
import ParleyOperations
import ParleyProtocol

/// `/disappear` and the retention setting: adapters over the operations (which check the policy).
extension ChatController {
    /// `/disappear [CONTACT] TIMER|off`, or `/disappear [CONTACT]` to show the timer.
    func disappear(_ args: [String]) {
        var args = args[...]
        var name: String?
        let isTimer = { (word: String) in word == "off" || word == "0" || (try? Operations.timer(word)) != nil }
        if args.count == 2 || (args.count == 1 && !isTimer(args[0])) {
            name = args.first
            args = args.dropFirst()
        }
        guard let peer = contactAddress(name) else { return }
        guard let word = args.first else {
            let timer = (try? engine.effectiveTimer(of: .direct(peer))) ?? nil
            state.say(timer.map { "messages with \(peer) disappear after \(DurationText.shown(UInt64($0)))" } ?? "messages with \(peer) do not disappear")
            return
        }
        let seconds: UInt32?
        do { seconds = try Operations.timer(word) } catch {
            state.say("usage: /disappear [CONTACT] off|30s|10m|1h|7d|4w — \(ChatController.describe(error))", error: true)
            return
        }
        let shown = seconds.map { "disappearing messages with \(peer): \(DurationText.shown(UInt64($0)))" } ?? "disappearing messages with \(peer): off"
        engineCall(shown, reloading: .direct(peer)) { engine in
            _ = try await Operations(engine: engine).setDisappearing(peer, seconds: seconds)
        }
    }

    /// `/set retention`: stored for the engine (the policy may refuse it: the previous value comes back).
    func applyRetention() {
        let engine = engine, inbox = inbox, chosen = config.retention
        Task {
            do {
                try await Operations(engine: engine).setRetention(chosen)
            } catch {
                let text = ChatController.describe(error)
                let kept = try? engine.setting("retention").flatMap { UInt64($0) }
                inbox.post { c in
                    c.config.retention = kept ?? nil
                    c.state.say(text, error: true)
                }
            }
        }
    }
}
