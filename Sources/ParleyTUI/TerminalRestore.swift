#if canImport(Glibc)
import Glibc
#endif

/// Puts the terminal back on a fatal signal, where curses cannot run: the saved termios modes are
/// restored with tcsetattr and the mode escapes are undone with write(2), both async-signal-safe, then
/// the signal is raised again with its default action. Normal exits and SIGINT/SIGTERM/SIGHUP go through
/// the event loop and endwin() instead.
enum TerminalRestore {
    nonisolated(unsafe) static var saved = termios()
    nonisolated(unsafe) static var haveSaved = false

    /// Leave the alternate screen, show the cursor, reset attributes, mouse and bracketed paste off.
    static let resetSequence: [UInt8] = Array("\u{1B}[?2004l\u{1B}[?1000l\u{1B}[?1002l\u{1B}[?1006l\u{1B}[0m\u{1B}[?25h\u{1B}[?1049l\r\n".utf8)

    static func saveModes() {
        haveSaved = tcgetattr(STDIN_FILENO, &saved) == 0
    }

    static func write(_ text: String) {
        _ = text.withCString { Glibc.write(STDOUT_FILENO, $0, strlen($0)) }
    }

    static func installFatalHandlers() {
        for sig in [SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGABRT, SIGTRAP] {
            var action = sigaction()
            action.__sigaction_handler.sa_handler = { sig in
                TerminalRestore.emergencyRestore()
                signal(sig, SIG_DFL)
                raise(sig)
            }
            sigemptyset(&action.sa_mask)
            sigaction(sig, &action, nil)
        }
    }

    static func emergencyRestore() {
        if haveSaved { tcsetattr(STDIN_FILENO, TCSANOW, &saved) }
        resetSequence.withUnsafeBufferPointer { _ = Glibc.write(STDOUT_FILENO, $0.baseAddress, $0.count) }
    }
}
