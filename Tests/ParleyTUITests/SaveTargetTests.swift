import ParleyStore
import Testing
@testable import ParleyTUI

/// `/save [N] [PATH]`: which attachment a command names, and the line that says which one was saved.
@Suite struct SaveTargetTests {
    let bob = "bob@127.0.0.1:7000", me = "alice@127.0.0.1:7000"

    /// A conversation of six messages, three of them with files: report.pdf (oldest), mine.txt, photo.png (newest).
    var conversation: [ChatMessage] {
        var messages = (1...6).map { chat($0, from: $0 == 4 ? me : bob, in: bob, direction: $0 == 4 ? .outgoing : .incoming) }
        messages[1].attachment = ("report.pdf", 100)
        messages[3].attachment = ("mine.txt", 10)
        messages[4].attachment = ("photo.png", 2000)
        return messages
    }

    func target(_ args: [String]) throws -> SaveTarget { try SaveTarget.resolve(args, in: conversation).get() }

    @Test func countsFromTheNewest() throws {
        #expect(try target([]).message.attachment?.name == "photo.png")
        #expect(try target(["out.png"]).message.attachment?.name == "photo.png")
        #expect(try target(["out.png"]).path == "out.png")
        #expect(try target(["2"]).message.attachment?.name == "mine.txt")
        #expect(try target(["3", "~/r.pdf"]).message.attachment?.name == "report.pdf")
        #expect(try target(["3", "~/r.pdf"]).path == "~/r.pdf")
        #expect(try target(["./3"]).path == "./3", "a path of digits is written ./N")
    }

    @Test func refusesWhatNamesNoAttachment() {
        #expect(throws: SaveTarget.Problem.self) { try target(["4"]) }
        #expect((try? target(["0"])) == nil)
        #expect((try? target(["1", "a", "b"])) == nil)
        #expect(throws: SaveTarget.Problem.self) { try SaveTarget.resolve([], in: [chat(1, from: bob, in: bob)]).get() }
        if case .failure(let problem) = SaveTarget.resolve(["4"], in: conversation) {
            #expect(problem.text == "this conversation shows 3 attachments; /save 3 is the oldest")
        }
    }

    @Test func namesWhatWasSaved() throws {
        #expect(try target([]).savedLine(to: "/tmp/photo.png") == "saved the newest attachment, photo.png (from \(bob)), to /tmp/photo.png")
        #expect(try target(["2"]).savedLine(to: "m.txt") == "saved attachment 2 from the newest, mine.txt (yours), to m.txt")
    }
}
