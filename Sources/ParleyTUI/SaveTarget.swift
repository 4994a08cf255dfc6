import ParleyStore

/// What `/save [N] [PATH]` names: the Nth attachment of the conversation counted from the newest, as it
/// is seen reading up from the bottom (1, the default, is the newest; 2 the one above it), and where to
/// put it. An N is all digits; a file named only with digits is given as `./12`.
public struct SaveTarget: Equatable, Sendable {
    public let message: ChatMessage
    /// Which attachment, counted from the newest.
    public let number: Int
    public let path: String?

    /// The target, or the sentence that says why there is none.
    public static func resolve(_ args: [String], in messages: [ChatMessage]) -> Result<SaveTarget, Problem> {
        var args = args[...]
        var number = 1
        if let first = args.first, !first.isEmpty, first.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let n = Int(first), n >= 1 else { return .failure(Problem("/save N counts from 1 (the newest attachment)")) }
            number = n
            args = args.dropFirst()
        }
        guard args.count <= 1 else { return .failure(Problem("usage: /save [N] [PATH] (a PATH with spaces in quotes)")) }
        let attachments = messages.filter { $0.attachment != nil }
        guard !attachments.isEmpty else { return .failure(Problem("no attachment in this conversation")) }
        guard number <= attachments.count else {
            let count = attachments.count
            return .failure(Problem("this conversation shows \(count) attachment\(count == 1 ? "" : "s"); /save \(count) is the oldest"))
        }
        return .success(SaveTarget(message: attachments[attachments.count - number], number: number, path: args.first))
    }

    public struct Problem: Error, Equatable, Sendable {
        public let text: String
        init(_ text: String) { self.text = text }
    }

    /// Names the attachment saved: which one, its name and who sent it, and where it went.
    public func savedLine(to file: String) -> String {
        let which = number == 1 ? "the newest attachment" : "attachment \(number) from the newest"
        let from = message.direction == .outgoing ? "yours" : "from \(message.sender)"
        return "saved \(which), \(message.attachment?.name ?? "file") (\(from)), to \(file)"
    }
}
