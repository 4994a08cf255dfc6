// parley-tui-bench: the chat window over a long history. Builds an encrypted store holding one
// conversation of --messages messages (default 100000) under $TMPDIR, then, in a fresh child process so
// that the memory figure is the viewer's alone, measures
//   - first paint: open the store, load the newest page, lay out and render a 120x40 screen off-screen;
//   - a page of scrolling (PageUp: scroll, load an older page when near the top of what is loaded,
//     render), median / p99 / max over --pages pages;
//   - RSS (VmRSS) and peak RSS (VmHWM) of the child with that history open.
// Targets (issue #7): first paint ≤ 150 ms, a page ≤ 16 ms, RSS ≤ 50 MB. One JSON object per line.
//
//   parley-tui-bench [--messages N] [--pages N]
import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyStore
import ParleyTUI

let peer = "bob@bench.example:7000", me = "alice@bench.example:7000"
let conversation = ConversationId.direct(try! AccountAddress(peer))
let width = 120, height = 40

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e6 }

func status(_ field: String) -> Double? {
    guard let text = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in text.split(separator: "\n") where line.hasPrefix(field + ":") {
        return line.split(separator: " ").dropFirst().first.flatMap { Double($0) }.map { $0 / 1024 }
    }
    return nil
}

func json(_ fields: [(String, Any)]) -> String {
    "{" + fields.map { key, value in
        let rendered: String = switch value {
        case let s as String: "\"\(s)\""
        case let d as Double: String(format: "%.3f", d)
        case let b as Bool: b ? "true" : "false"
        default: "\(value)"
        }
        return "\"\(key)\":\(rendered)"
    }.joined(separator: ",") + "}"
}

func build(path: String, unlock: UnlockMethod, count: Int, withAccount: Bool) throws {
    let store = try EncryptedStore.create(at: path, unlock: [unlock])
    var seed: UInt64 = 0x9E3779B97F4A7C15
    func next() -> UInt64 {
        seed &+= 0x9E3779B97F4A7C15
        var z = seed
        z = (z ^ (z >> 30)) &* 0xBF58476D1CE4E5B9
        z = (z ^ (z >> 27)) &* 0x94D049BB133111EB
        return z ^ (z >> 31)
    }
    let words = "the quick brown fox jumps over lazy dog coffee tomorrow meeting train late soon thanks 漢字 😀 café naïve".split(separator: " ")
    let start: UInt64 = 1_700_000_000_000
    var batch: [MessageRecord] = []
    for n in 0..<count {
        let outgoing = next() % 2 == 0
        let length = 3 + Int(next() % 30)
        let text = (0..<length).map { _ in String(words[Int(next() % UInt64(words.count))]) }.joined(separator: " ")
        var id = [UInt8](repeating: 0, count: 16)
        for i in 0..<8 { id[i] = UInt8(truncatingIfNeeded: UInt64(n) >> (8 * i)) }
        let at = start + UInt64(n) * 45_000
        batch.append(MessageRecord(conversation: conversation, direction: outgoing ? .outgoing : .incoming,
                                   sender: DeviceAddress(address: outgoing ? me : peer, deviceId: 1), clientMessageId: id,
                                   sentAt: at, receivedAt: at, text: text, state: outgoing ? .read : .received))
        if batch.count == 2_000 {
            try store.insertMessages(batch)
            batch.removeAll(keepingCapacity: true)
        }
    }
    if !batch.isEmpty { try store.insertMessages(batch) }
    if withAccount { try addAccount(to: store) }
}

/// With --keep: an account and the contact, so that `parley --home DIR --key-file DIR/store.key` opens
/// the same history in the real client (its relay does not exist; the window shows it disconnected).
func addAccount(to store: EncryptedStore) throws {
    func list(_ accountKey: Ed25519.KeyPair, _ device: Ed25519.KeyPair) -> SignedDeviceList {
        SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: device.publicKey, createdAt: 1)], version: 1, accountKey: accountKey)
    }
    let accountKey = Ed25519.KeyPair(), device = Ed25519.KeyPair()
    try store.saveLocalAccount(LocalAccount(address: me, accountKey: accountKey, device: DeviceIdentity(deviceId: 1, keyPair: device),
                                            deviceList: list(accountKey, device), certificateExpiry: UInt64.max / 2),
                               preKeys: LocalPreKeys.generate(oneTime: 1))
    let peerKey = Ed25519.KeyPair()
    try store.saveContact(Contact(address: try AccountAddress(peer), account: KnownAccount(accountKey: peerKey.publicKey, deviceList: list(peerKey, Ed25519.KeyPair()))))
}

func child(path: String, keyFile: String, pages: Int) throws {
    let t0 = now()
    let store = try EncryptedStore.open(at: path, unlock: .keyFile(path: keyFile))
    let opened = now()
    var state = AppState(account: me)
    state.ensureRosterEntry(conversation, trust: .verified)
    History.open(conversation, from: store, into: &state)
    state.focus(conversation)
    let renderer = Renderer(timeZone: TimeZone(identifier: "UTC")!)
    var canvas = renderer.render(state, editor: LineEditor(), width: width, height: height, now: 0)
    let painted = now()
    precondition(canvas.text().contains("me:") || canvas.text().contains("bob:"), "the first screen shows messages")
    var times: [Double] = []
    var loads = 0
    for _ in 0..<pages {
        let s = now()
        state.scroll(by: height - 5)
        if History.loadOlderIfNeeded(&state, from: store, renderer: renderer, width: width, height: height) { loads += 1 }
        canvas = renderer.render(state, editor: LineEditor(), width: width, height: height, now: 0)
        times.append(now() - s)
    }
    times.sort()
    let firstPaint = painted - t0
    let median = times[times.count / 2], p99 = times[min(times.count - 1, times.count * 99 / 100)], worst = times.last!
    let rss = status("VmRSS") ?? -1, peak = status("VmHWM") ?? -1
    print(json([("name", "tui_first_paint"), ("ms", firstPaint), ("store_open_ms", opened - t0), ("load_and_render_ms", painted - opened),
                ("target_ms", 150.0), ("ok", firstPaint <= 150),
                ("description", "open the encrypted store (key file), load the newest page of \(History.pageSize), render \(width)x\(height) off-screen")]))
    print(json([("name", "tui_page_scroll"), ("median_ms", median), ("p99_ms", p99), ("max_ms", worst), ("pages", pages),
                ("older_pages_loaded", loads), ("messages_loaded", state.conversations[conversation]?.messages.count ?? 0),
                ("target_ms", 16.0), ("ok", p99 <= 16),
                ("description", "PageUp: scroll \(height - 5) lines, load an older page when near the top of what is loaded, render")]))
    print(json([("name", "tui_rss"), ("rss_mb", rss), ("peak_rss_mb", peak), ("target_mb", 50.0), ("ok", peak <= 50 && rss <= 50),
                ("description", "VmRSS and VmHWM of this process after the first paint and the scrolling")]))
}

/// Bad arguments: a one-line message and exit status 1 (not a crash).
func usage(_ problem: String) -> Never {
    FileHandle.standardError.write(Data("parley-tui-bench: \(problem)\nusage: parley-tui-bench [--messages N] [--pages N] [--keep DIR]\n".utf8))
    exit(1)
}

var messages = 100_000, pages = 300
var keep: String?
var arguments = CommandLine.arguments.dropFirst()
if arguments.first == "--child" {
    let args = Array(arguments)
    try child(path: args[1], keyFile: args[2], pages: Int(args[3])!)
    exit(0)
}
while let argument = arguments.popFirst() {
    switch argument {
    case "--messages":
        guard let value = arguments.popFirst().flatMap(Int.init), value > 0 else { usage("--messages needs a positive count") }
        messages = value
    case "--pages":
        guard let value = arguments.popFirst().flatMap(Int.init), value > 0 else { usage("--pages needs a positive count") }
        pages = value
    case "--keep":
        guard let value = arguments.popFirst() else { usage("--keep needs a directory") }
        keep = value
    case "-h", "--help": usage("measures the chat window over a large conversation")
    default: usage("unknown argument \(argument)")
    }
}
// With --keep the store (parley.db and store.key) stays in that directory, to open it with `parley` too.
let directory = keep ?? FileManager.default.temporaryDirectory.appendingPathComponent("parley-tui-bench-\(UUID().uuidString)").path
try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)

let keyFile = directory + "/store.key"
try KeyFile.create(at: keyFile)
let buildStart = now()
try build(path: directory + "/parley.db", unlock: .keyFile(path: keyFile), count: messages, withAccount: keep != nil)
print(json([("name", "tui_history_built"), ("messages", messages), ("seconds", (now() - buildStart) / 1000)]))
let process = Process()
process.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).standardizedFileURL
if !FileManager.default.isExecutableFile(atPath: process.executableURL!.path), let resolved = Bundle.main.executableURL { process.executableURL = resolved }
process.arguments = ["--child", directory + "/parley.db", keyFile, String(pages)]
try process.run()
process.waitUntilExit()
if keep == nil { try? FileManager.default.removeItem(atPath: directory) }
exit(process.terminationStatus)
