import ParleyProtocol

/// Whether new messages also announce themselves through `notify-send` (libnotify): "auto" when it is on
/// PATH, or never.
public enum NotifySend: String, Sendable, CaseIterable { case auto, off }

/// A desktop notification through `notify-send`, beside the bell and the OSC 777/9 escape
/// (`Announcement`), for the contacts whose /notify mode is "on". It names the sender; the text of the
/// message is shown only with `notify_text` on, else the body says a message came. Nothing goes through
/// a shell: the sender and the text are single arguments after `--`, neutralised (`PeerText`) and, in the
/// body that notification servers read as markup, with `&`, `<` and `>` escaped.
public enum DesktopNotification {
    /// The most characters of a message's text a notification shows.
    public static let textLimit = 200

    /// The argument vector for `program` (notify-send's path), or nil when nothing is to be shown.
    public static func argv(_ config: Config, program: String?, peer: String, shown: String?, text: String) -> [String]? {
        guard config.notifySend == .auto, let program, config.notifyMode(for: peer) == .on else { return nil }
        let sender = PeerText.forName(shown ?? peer)
        var body = "New message (open Parley to read it)"
        if config.notifyText {
            let neutral = PeerText.forTerminal(text)
            body = markupEscaped(neutral.count > textLimit ? String(neutral.prefix(textLimit)) + "…" : neutral)
        }
        return [program, "--app-name=Parley", "--category=im.received", "--", "Message from \(sender.isEmpty ? "a contact" : sender)", body]
    }

    static func markupEscaped(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }
}
