/// How a new message announces itself: the terminal bell and a desktop notification through the
/// terminal (OSC 777 or OSC 9), per config.toml and the contact's /notify setting. The notification names
/// the sender only: message text never leaves Parley's screen.
public enum Announcement {
    /// `shown` is how the peer is named (their nickname, if they have one).
    public static func decide(_ config: Config, peer: String, shown: String? = nil) -> (bell: Bool, escape: String?) {
        let mode = config.notifyMode(for: peer)
        guard mode != .off else { return (false, nil) }
        let bell = config.bell
        guard mode == .on else { return (bell, nil) }
        // Control characters in an address could end the sequence early: keep printable ASCII only.
        let sender = String((shown ?? peer).unicodeScalars.filter { $0.value >= 0x20 && $0.value < 0x7F && $0 != ";" }.map(Character.init))
        switch config.desktop {
        case .off: return (bell, nil)
        case .osc777: return (bell, "\u{1B}]777;notify;Parley;New message from \(sender)\u{7}")
        case .osc9: return (bell, "\u{1B}]9;Parley: new message from \(sender)\u{7}")
        }
    }
}
