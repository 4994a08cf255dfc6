import Foundation
@testable import ParleyClient
import ParleyTestSupport
import Testing

/// Reading the file to attach: a directory is named as one, not as a missing file.
@Suite struct AttachmentFileTests {
    @Test func aDirectoryIsSaidToBeOne() throws {
        let directory = try TemporaryDirectory("attach-file")
        #expect(throws: ClientError.file("\(directory.path) is a directory; an attachment is one file (pack a directory with tar or zip first)")) {
            try Engine.readAttachment(directory.path)
        }
        #expect(throws: ClientError.file("no such file: \(directory.sub("missing"))")) { try Engine.readAttachment(directory.sub("missing")) }
        FileManager.default.createFile(atPath: directory.sub("note.txt"), contents: Data("hi".utf8))
        #expect(try Engine.readAttachment(directory.sub("note.txt")) == Array("hi".utf8))
    }
}
