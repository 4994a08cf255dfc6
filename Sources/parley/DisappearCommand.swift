import ArgumentParser
import Foundation
import ParleyClient
import ParleyOperations

struct DisappearCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "disappear",
        abstract: "Set or show a conversation's disappearing-message timer (the updateContact method's expiration).",
        discussion: """
            TIMER is off, or a duration: 30s, 10m, 1h, 7d, 4w. The timer is set for both sides: the contact's \
            devices and your other devices adopt it (for group:ID, every member's devices: any member may set \
            it), and each message carries the timer it was sent under. A \
            message is deleted on each device TIMER after that device stored it (sent, or arrived), with its \
            cells overwritten in the store; while no Parley runs, at its next start. Without TIMER, prints the \
            timer this device applies. An administrator's min_disappearing refuses off and longer timers (exit 6).
            """)

    @Argument(help: ArgumentHelp("The contact, or group:ID for a group.", valueName: "CONTACT"), transform: conversationName) var contact: String
    @Argument(help: ArgumentHelp("off, or a duration (30s, 10m, 1h, 7d, 4w).", valueName: "TIMER")) var timer: String?
    @OptionGroup var client: ClientOptions
    @Flag(help: "Print the result as JSON.") var json = false

    func run() async throws {
        let operations = try client.openOperations()
        let result: DisappearingResult
        switch try operations.conversation(contact) {
        case .direct(let peer):
            result = if let timer { try await operations.setDisappearing(peer, seconds: try Operations.timer(timer)) } else { try operations.disappearing(peer) }
        case .group(let id):
            result = if let timer { try await operations.setDisappearing(inGroup: id, seconds: try Operations.timer(timer)) } else { try operations.disappearing(inGroup: id) }
        }
        if json { try Output.result(result); return }
        Output.line(result.expiration == 0 ? "messages with \(Output.peer(result.contact)) do not disappear"
                                           : "messages with \(Output.peer(result.contact)) disappear \(result.timer) after they are stored")
    }
}
