import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyStore

/// The encrypted store at the size the store issue asks for: 100,000 messages in one conversation (plus a
/// smaller second conversation interleaved with it, so every query has to scope by conversation), written
/// with `insertMessages` in batches, read back page by page, the newest page opened, and searched.
///
/// The store lives in a fresh directory under the temporary directory (`TMPDIR`), removed at the end. It
/// is unlocked with a key file (HKDF, no Argon2id), so the numbers are the store's own; the unlock cost is
/// measured on its own lines, including one unlock with the default `.moderate` Argon2id parameters.
struct StoreBenchmarks {
    struct Results {
        var insertPerSecond: Double?
        var readPerSecond: Double?
        var newestPageColdMs: Double?
        var newestPageWarmMs: Double?
        var searchFewMs: Double?
        var searchNoneMs: Double?
        var searchNoneAllMs: Double?
    }

    static let insertTarget = 20_000.0      // messages/s, at least
    static let newestPageTarget = 20.0      // ms, at most
    static let searchTarget = 300.0         // ms, at most

    /// Messages in the main conversation; the second conversation gets a tenth as many.
    let messageCount: Int
    let batchSize = 1_000
    let pageSize = 200
    private(set) var results = Results()
    private(set) var checksum: UInt8 = 0

    private let me = DeviceAddress(address: "me@relay.example", deviceId: 1)
    private let peer = ConversationId.direct(try! AccountAddress("alice@relay.example"))
    private let otherPeer = ConversationId.direct(try! AccountAddress("bob@relay.example"))
    /// Appears in `rareCount` messages of the main conversation (and never in random text: the vocabulary
    /// has no "q" followed by "z").
    private let rareWord = "quzzlewhump"
    private let rareCount = 20
    /// Appears nowhere: every search for it decrypts and scans every message.
    private let absentWord = "qzxjvkwyb"

    init(messageCount: Int) {
        precondition(messageCount >= 1_000, "--store-messages needs at least 1000")
        self.messageCount = messageCount
    }

    mutating func run() {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-bench-store-\(UUID().uuidString)").path
        try! FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let path = directory + "/parley.db"
        let keyFile = directory + "/parley.key"
        try! KeyFile.create(at: keyFile)
        let unlock = UnlockMethod.keyFile(path: keyFile)

        var store: EncryptedStore? = try! EncryptedStore.create(at: path, unlock: [unlock])
        insert(store!, path: path)
        readBack(store!)
        store = nil   // closes the pool; each cold measurement below opens the store anew

        unlockCosts(path: path, unlock: unlock)
        newestPage(path: path, unlock: unlock)
        search(path: path, unlock: unlock)
        unlockModerate(directory: directory)
    }

    // MARK: Data

    /// Words of a chat, a few hundred of them; random text is drawn from these.
    private static let vocabulary: [String] = """
        the be to of and a in that have I it for not on with he as you do at this but his by from they we say her
        she or an will my one all would there their what so up out if about who get which go me when make can like
        time no just him know take people into year your good some could them see other than then now look only come
        its over think also back after use two how our work first well way even new want because any these give day
        most us is was are been has had were said did getting made going lunch dinner coffee tomorrow tonight today
        morning evening weekend meeting call later soon thanks thank sorry okay sure maybe yes yeah great nice cool
        love miss see you soon home office train bus car traffic late early running minutes hour hours week month
        birthday party movie film book music song game match team school class exam homework project deadline
        report email message phone picture photo video link address street station airport flight hotel trip
        holiday beach mountain weather rain snow sun cold warm hot wind umbrella jacket shoes shop market bread
        milk cheese apples pizza pasta soup salad chicken fish rice cake chocolate wine beer tea water kitchen
        garden dog cat kids mum dad brother sister friend friends neighbour doctor dentist appointment pharmacy
        ticket tickets booked booking cancel cancelled delayed arrived leaving waiting ready finished started
        remember forgot forget bring pick drop open closed busy free available happy tired sick better worse
        funny weird interesting amazing terrible awesome perfect exactly probably definitely actually really very
        """.split(whereSeparator: { $0 == " " || $0 == "\n" }).map(String.init)

    /// A deterministic stream (SplitMix64), so every run stores the same texts.
    private struct Generator {
        var state: UInt64 = 0x5EED_0F_BA_5E_BA11
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
    }

    /// Text of 20–200 characters: random words, sometimes capitalised or punctuated.
    private static func text(_ g: inout Generator, including word: String? = nil) -> String {
        let length = 20 + g.below(181)
        var words: [String] = []
        var count = 0
        let insertAt = word == nil ? -1 : g.below(4)
        while true {
            var w = words.count == insertAt ? word! : vocabulary[g.below(vocabulary.count)]
            if words.isEmpty || g.below(12) == 0 { w = w.prefix(1).uppercased() + w.dropFirst() }
            if g.below(10) == 0 { w += [",", ".", "!", "?"][g.below(4)] }
            let added = (words.isEmpty ? 0 : 1) + w.count
            let planted = words.count > insertAt
            if planted && count + added > length && count >= 20 { break }
            if count + added > 200 { break }
            words.append(w)
            count += added
        }
        return words.joined(separator: " ")
    }

    private func record(_ n: Int, peer: ConversationId, text: String, _ g: inout Generator) -> MessageRecord {
        let incoming = g.below(2) == 0
        var clientId = [UInt8](repeating: 0, count: 16)
        withUnsafeBytes(of: UInt64(n).bigEndian) { clientId.replaceSubrange(0..<8, with: $0) }
        withUnsafeBytes(of: g.next()) { clientId.replaceSubrange(8..<16, with: $0) }
        let sentAt = 1_800_000_000_000 + UInt64(n) * 30_000
        return MessageRecord(conversation: peer, direction: incoming ? .incoming : .outgoing,
                             sender: incoming ? DeviceAddress(address: peer.description, deviceId: 1 + UInt32(g.below(2))) : me,
                             clientMessageId: clientId, sentAt: sentAt, receivedAt: sentAt + UInt64(g.below(2_000)),
                             text: text, state: incoming ? .received : .read)
    }

    // MARK: Insert

    private var lastMainText = ""

    /// `messageCount` messages with `peer`, every tenth position also one with `otherPeer`, in
    /// transactions of `batchSize`. Only the `insertMessages` calls are timed, not making the records.
    private mutating func insert(_ store: EncryptedStore, path: String) {
        var g = Generator()
        let total = messageCount + messageCount / 10
        let rareEvery = messageCount / rareCount
        var main = 0, other = 0, n = 0
        var nanoseconds: UInt64 = 0
        var cpu = 0.0
        var batches = 0
        while n < total {
            var batch: [MessageRecord] = []
            batch.reserveCapacity(batchSize)
            while batch.count < batchSize && n < total {
                if n % 11 == 10 && other < messageCount / 10 {
                    batch.append(record(n, peer: otherPeer, text: Self.text(&g), &g))
                    other += 1
                } else {
                    let rare = main % rareEvery == rareEvery / 2 && main / rareEvery < rareCount
                    let text = Self.text(&g, including: rare ? rareWord : nil)
                    batch.append(record(n, peer: peer, text: text, &g))
                    if main == messageCount - 1 { lastMainText = text }
                    main += 1
                }
                n += 1
            }
            let start = Measure.now(), cpuStart = Self.cpuSeconds()
            let ids = try! store.insertMessages(batch)
            nanoseconds += Measure.now() - start
            cpu += Self.cpuSeconds() - cpuStart
            batches += 1
            precondition(ids.allSatisfy { $0 != nil }, "a generated message was taken for a repeat")
        }
        precondition(main == messageCount && other == messageCount / 10)
        precondition(try! store.messageCount() == total)
        let rate = Double(total) / (Double(nanoseconds) / 1e9)
        results.insertPerSecond = rate
        var line = JSONLine(name: "store_insert")
        line.add("value", .number(rate))
        line.add("unit", .string("messages/s"))
        line.add("target", .number(Self.insertTarget))
        line.add("target_is", .string("minimum"))
        line.add("ok", .bool(rate >= Self.insertTarget))
        line.add("description", .string("EncryptedStore.insertMessages, \(batchSize) messages per call (one transaction each), texts 20-200 chars; \(messageCount) in one conversation + \(messageCount / 10) interleaved in a second"))
        line.add("messages", .int(total))
        line.add("transactions", .int(batches))
        line.add("seconds", .number(Double(nanoseconds) / 1e9))
        line.add("cpu_seconds", .number(cpu))
        let bytes = [path, path + "-wal"].compactMap { try? FileManager.default.attributesOfItem(atPath: $0)[.size] as? Int }.reduce(0, +)
        line.add("store_mib", .number(Double(bytes) / 1_048_576))
        line.add("unlock", .string("key file"))
        print(line.text)
    }

    // MARK: Read back

    /// Both conversations, newest page first, `pageSize` per `messages(in:before:limit:)` call.
    private mutating func readBack(_ store: EncryptedStore) {
        var read = 0
        let start = Measure.now(), cpuStart = Self.cpuSeconds()
        for (conversation, expected) in [(peer, messageCount), (otherPeer, messageCount / 10)] {
            var before: Int64? = nil
            var count = 0
            while true {
                let page = try! store.messages(in: conversation, before: before, limit: pageSize)
                guard let first = page.first else { break }
                checksum ^= UInt8(truncatingIfNeeded: page.last!.text.utf8.count)
                precondition(page.allSatisfy { $0.conversation == conversation })
                count += page.count
                before = first.id
            }
            precondition(count == expected, "read back \(count) of \(expected) messages")
            read += count
        }
        let seconds = Double(Measure.now() - start) / 1e9
        let cpu = Self.cpuSeconds() - cpuStart
        let rate = Double(read) / seconds
        results.readPerSecond = rate
        var line = JSONLine(name: "store_read_all")
        line.add("value", .number(rate))
        line.add("unit", .string("messages/s"))
        line.add("description", .string("every message of both conversations read back with EncryptedStore.messages(in:before:limit:), \(pageSize) per page, newest page first"))
        line.add("messages", .int(read))
        line.add("seconds", .number(seconds))
        line.add("cpu_seconds", .number(cpu))
        line.add("unlock", .string("key file"))
        print(line.text)
    }

    // MARK: Unlock

    /// Opening with the key file: read the keyring, HKDF, unwrap the master key, open the database pool.
    private mutating func unlockCosts(path: String, unlock: UnlockMethod) {
        var samples: [Double] = []
        for _ in 0..<7 {
            let start = Measure.now()
            let store = try! EncryptedStore.open(at: path, unlock: unlock)
            samples.append(Double(Measure.now() - start) / 1e6)
            checksum ^= UInt8(truncatingIfNeeded: store.path.utf8.count)
        }
        var line = JSONLine(name: "store_unlock_keyfile")
        line.add("value", .number(median(samples)))
        line.add("unit", .string("ms"))
        line.add("description", .string("EncryptedStore.open with a key file (keyring read, HKDF, unwrap, open database pool), median"))
        line.add("runs", .int(samples.count))
        print(line.text)
    }

    /// One unlock of a small store whose passphrase is wrapped with the default `.moderate` Argon2id
    /// parameters (the creation, which runs Argon2id too, is not timed).
    private mutating func unlockModerate(directory: String) {
        let path = directory + "/moderate.db"
        let passphrase = SecretBytes(Array("correct horse battery staple".utf8))
        do { _ = try! EncryptedStore.create(at: path, unlock: [.passphrase(passphrase)], parameters: .moderate) }
        let start = Measure.now()
        let store = try! EncryptedStore.open(at: path, unlock: .passphrase(passphrase))
        let ms = Double(Measure.now() - start) / 1e6
        checksum ^= UInt8(truncatingIfNeeded: store.path.utf8.count)
        let p = Argon2id.Parameters.moderate
        var line = JSONLine(name: "store_unlock_passphrase_moderate")
        line.add("value", .number(ms))
        line.add("unit", .string("ms"))
        line.add("description", .string("EncryptedStore.open with a passphrase wrapped under the default Argon2id .moderate parameters (ops \(p.opsLimit), \(p.memLimitBytes >> 20) MiB), one run"))
        line.add("argon2id_ops", .int(Int(p.opsLimit)))
        line.add("argon2id_mem_mib", .int(p.memLimitBytes >> 20))
        line.add("runs", .int(1))
        print(line.text)
    }

    // MARK: Newest page

    /// The newest `pageSize` messages of the big conversation: cold-ish (first query of a freshly opened
    /// store; the file is still in the OS page cache) and warm (repeated on one open store).
    private mutating func newestPage(path: String, unlock: UnlockMethod) {
        func check(_ page: [MessageRecord]) {
            precondition(page.count == pageSize && page.last!.text == lastMainText && page.allSatisfy { $0.conversation == peer })
            checksum ^= UInt8(truncatingIfNeeded: page[0].id)
        }
        var cold: [Double] = []
        for _ in 0..<7 {
            let store = try! EncryptedStore.open(at: path, unlock: unlock)
            let start = Measure.now()
            let page = try! store.messages(in: peer, limit: pageSize)
            cold.append(Double(Measure.now() - start) / 1e6)
            check(page)
        }
        let store = try! EncryptedStore.open(at: path, unlock: unlock)
        var warm: [Double] = []
        for _ in 0..<25 {
            let start = Measure.now()
            let page = try! store.messages(in: peer, limit: pageSize)
            warm.append(Double(Measure.now() - start) / 1e6)
            check(page)
        }
        results.newestPageColdMs = median(cold)
        results.newestPageWarmMs = median(warm)
        for (name, samples, how) in [("store_newest_page_cold", cold, "first query after EncryptedStore.open (store reopened for each run)"),
                                     ("store_newest_page_warm", warm, "repeated on one open store")] {
            let ms = median(samples)
            var line = JSONLine(name: name)
            line.add("value", .number(ms))
            line.add("unit", .string("ms"))
            line.add("target", .number(Self.newestPageTarget))
            line.add("target_is", .string("maximum"))
            line.add("ok", .bool(ms <= Self.newestPageTarget))
            line.add("description", .string("EncryptedStore.messages(in:limit: \(pageSize)), newest page of a \(messageCount)-message conversation; \(how); median"))
            line.add("runs", .int(samples.count))
            line.add("max", .number(samples.max()!))
            line.add("unlock", .string("key file"))
            print(line.text)
        }
    }

    // MARK: Search

    /// `search` in the big conversation for a word in `rareCount` of its messages and for one in none
    /// (fewer matches than the limit, so both decrypt and scan every message), and the absent word over
    /// the whole store (both conversations).
    private mutating func search(path: String, unlock: UnlockMethod) {
        let store = try! EncryptedStore.open(at: path, unlock: unlock)
        let runs = 5
        func time(_ body: () -> [MessageRecord]) -> (ms: Double, max: Double, cpuMs: Double, found: Int) {
            var samples: [Double] = []
            var cpu: [Double] = []
            var found = 0
            for _ in 0..<runs {
                let start = Measure.now(), cpuStart = Self.cpuSeconds()
                let matches = body()
                samples.append(Double(Measure.now() - start) / 1e6)
                cpu.append((Self.cpuSeconds() - cpuStart) * 1e3)
                found = matches.count
                checksum ^= UInt8(truncatingIfNeeded: matches.first?.id ?? 0)
            }
            return (median(samples), samples.max()!, median(cpu), found)
        }
        let total = messageCount + messageCount / 10
        let few = time { try! store.search(rareWord.uppercased(), in: peer) }
        precondition(few.found == rareCount, "found \(few.found) of \(rareCount) planted matches")
        let none = time { try! store.search(absentWord, in: peer) }
        precondition(none.found == 0)
        let all = time { try! store.search(absentWord) }
        precondition(all.found == 0)
        results.searchFewMs = few.ms
        results.searchNoneMs = none.ms
        results.searchNoneAllMs = all.ms
        for (name, r, what, scanned) in [
            ("store_search_few", few, "a word in \(rareCount) of the conversation's messages (searched in upper case)", messageCount),
            ("store_search_none", none, "a word in none of the conversation's messages (full scan, worst case)", messageCount),
            ("store_search_none_all", all, "a word in no message, whole store (both conversations, no peer given)", total),
        ] {
            var line = JSONLine(name: name)
            line.add("value", .number(r.ms))
            line.add("unit", .string("ms"))
            line.add("target", .number(Self.searchTarget))
            line.add("target_is", .string("maximum"))
            line.add("ok", .bool(r.ms <= Self.searchTarget))
            line.add("description", .string("EncryptedStore.search: \(what); every one of \(scanned) bodies decrypted and scanned; median"))
            line.add("scanned", .int(scanned))
            line.add("matches", .int(r.found))
            line.add("runs", .int(runs))
            line.add("max", .number(r.max))
            line.add("cpu_ms", .number(r.cpuMs))
            line.add("unlock", .string("key file"))
            print(line.text)
        }
    }

    /// User + system CPU seconds of the whole process so far. Beside the wall-clock numbers it shows how
    /// much of a slow result was waiting (for the disk, or for a CPU taken by other processes).
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(0, &usage)   // RUSAGE_SELF
        return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
    }

    private func median(_ xs: [Double]) -> Double {
        let s = xs.sorted()
        return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
    }
}
