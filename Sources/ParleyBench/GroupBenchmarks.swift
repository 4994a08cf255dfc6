import Foundation
internal import GRDB
import ParleyClient
import ParleyCrypto
import ParleyMLS
import ParleyProtocol
import ParleyRelayAPI
#if canImport(Glibc)
import Glibc
#endif

/// The relay as MLS delivery service (PROTOCOL.md §17) beside 1:1 fan-out, on a `parley-relay` child process
/// (SQLite, rate limits off) so that its CPU time can be read from /proc (issue #22, item 6).
///
/// The group is `devices` recipient devices (one account of one device each) plus the sender's device: a
/// leaf per device, made as MLSBenchmarks makes its groups (one commit adding everyone, then one member per
/// copath subtree of the sender commits with a path, as in a group whose members have been active). The
/// relay orders those set-up commits (recipients left out: they are not measured) so its epoch is the
/// sender's. The client side is ParleyMLS and ParleyProtocol called directly, over one blocking kept-alive
/// HTTP connection (`LoopbackHTTP`) used alike for both paths: the engine's group support is not assumed.
///
///   group_message      one text message to every recipient device: the sender's CPU per message (MLS
///                      encrypt + JSON + the POST), the relay's CPU per message (/proc/PID/stat over
///                      `groupMessages` sends), and the relay's stored bytes per message (SQLite's dbstat:
///                      payload bytes of every table and index, before and after)
///   one_to_one_fanout  the same text to the same devices as 1:1 sealed-sender envelopes, one POST per
///                      device (what a client sends to accounts of one device), on ratchet sessions past
///                      their first exchange (chain messages): the same three figures per fan-out, and the
///                      ratios to group_message
///   group_add_member   adding one device to the group, end to end: claim its KeyPackage at the relay,
///                      commit (with a path, as the engine does), the relay accepting the commit at the
///                      epoch (sent to every member device) with its Welcome (queued for the new device in
///                      the same transaction), the new device fetching its mailbox (version 2) and joining.
///                      Wall time p50 over `adds` adds (each to the group the previous one grew), with each
///                      step's p50, each step's CPU time here and the relay's per add. Bodies are written
///                      and read as the engine's RelayClient does (HotJSON where a body has it).
struct GroupBenchmarks {
    static let addTargetMs = 100.0
    var devices = 1_000
    var groupMessages = 40
    var fanOuts = 2
    var adds = 15
    private(set) var addP50Ms: Double?

    let suite = CipherSuite.x25519ChaCha20Poly1305

    /// A copy holding the results.
    func measured() async -> GroupBenchmarks {
        var copy = self
        do {
            try await copy.run()
        } catch {
            var line = JSONLine(name: "groups_error")
            line.add("error", .string(String(describing: error)))
            print(line.text)
        }
        return copy
    }

    /// A relay account of one device, registered (and signed in when it needs a token).
    struct Member {
        let address: String
        let identity: DeviceIdentity
        var token: String?
        var recipient: GroupRecipient { GroupRecipient(address: address, deviceId: identity.deviceId) }
    }

    private mutating func run() async throws {
        let setupStart = Measure.now()
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("parley-bench-groups-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // The relay's default limits: a Welcome carries the whole ratchet tree (184 KB at 1,000 leaves, over
        // the 96 KiB envelope cap) and rides its commit, under the group handshake cap (PROTOCOL.md §17.2).
        let relay = try await ChildRelay.start(directory: directory, arguments: [])
        defer { relay.stop() }
        let client = try RelayClient(endpoint: try RelayEndpoint(relay: relay.listen))

        // Accounts: the recipients, the sender, and one per device to be added.
        var members = try await Self.register(count: devices, prefix: "member", signIn: false, relay: relay, client: client)
        let sender = try await Self.register(count: 1, prefix: "sender", signIn: true, relay: relay, client: client)[0]
        let newcomers = try await Self.register(count: adds, prefix: "newcomer", signIn: true, relay: relay, client: client)

        // The group, at the relay and in MLS.
        let groupId = SystemRandom().bytes(RelayAPI.groupIdLength)
        let groupHex = Hex.encode(groupId)
        var (committer, setupCommits) = try makeGroup(groupId: groupId)
        let http = try LoopbackHTTP(port: relay.port)
        var created = try http.request("POST", "/v1/groups", body: try json(GroupCreation(groupId: groupHex, verifier: Self.verifier(of: setupCommits[0].before))),
                                       headers: [("Authorization", "Bearer " + sender.token!)])
        guard created.status == 201 else { throw BenchError("group creation: \(created.status) \(String(decoding: created.body, as: UTF8.self))") }
        for commit in setupCommits {
            created = try http.request("POST", "/v1/groups/\(groupHex)/commits",
                                       body: try json(GroupSend(epoch: commit.before.epoch, message: Base64Bytes(commit.message), recipients: [],
                                                                                nextVerifier: Self.verifier(of: commit.after))),
                                       headers: [(RelayAPI.groupSecretHeader, Self.secretHeader(commit.before))])
            guard created.status == 200 || created.status == 204 else { throw BenchError("set-up commit: \(created.status) \(String(decoding: created.body, as: UTF8.self))") }
        }
        setupCommits = []
        let sessions = makeSessions(sender: sender, members: members)
        var setup = JSONLine(name: "groups_setup")
        setup.add("devices", .int(devices))
        setup.add("value", .number(Double(Measure.now() - setupStart) / 1e9))
        setup.add("unit", .string("s"))
        setup.add("description", .string("relay child process, \(devices + 1 + adds) accounts, the MLS group of \(devices + 1) leaves with its set-up commits ordered by the relay, \(devices) ratchet sessions past their first exchange (not a target)"))
        print(setup.text)

        let database = try DatabaseQueue(path: directory + "/relay/relay.sqlite", configuration: Self.readOnly)
        let text = Content(messageId: SystemRandom().bytes(Content.messageIdLength), sentAt: 1_765_000_000_000, destination: "group:" + groupHex,
                           body: .text("see you at the station at half past six, bring the tickets and an umbrella please")).encoded
        // Queued for the sender's device too, as the engine does (its copy hides the sender, PROTOCOL.md §17.4).
        let group = try measureGroupMessages(committer: &committer, groupHex: groupHex, text: text, members: members + [sender], http: http, relay: relay,
                                             database: database)
        let fanOut = try measureFanOut(sessions: sessions, sender: sender, text: text, members: members, http: http, relay: relay, database: database)
        var ratio = JSONLine(name: "groups_vs_one_to_one")
        ratio.add("devices", .int(devices))
        ratio.add("sender_cpu_ratio", .number(fanOut.senderCPUms / group.senderCPUms))
        ratio.add("relay_cpu_ratio", .number(fanOut.relayCPUms / group.relayCPUms))
        ratio.add("relay_stored_bytes_ratio", .number(fanOut.storedBytes / group.storedBytes))
        ratio.add("wall_ratio", .number(fanOut.wallMs / group.wallMs))
        ratio.add("description", .string("1:1 fan-out ÷ group message, same text, same \(devices) devices, same run: how many times more the 1:1 path costs"))
        addLoad(&ratio)
        print(ratio.text)

        try measureAdds(committer: &committer, groupHex: groupHex, members: &members, newcomers: newcomers, http: http, relay: relay)
    }

    // MARK: The group message

    struct PathCost {
        var senderCPUms = 0.0
        var relayCPUms = 0.0
        var storedBytes = 0.0
        var wallMs = 0.0
    }

    private func measureGroupMessages(committer: inout Group, groupHex: String, text: [UInt8], members: [Member], http: LoopbackHTTP,
                                      relay: ChildRelay, database: DatabaseQueue) throws -> PathCost {
        let recipients = members.map(\.recipient)
        let secret = Self.secretHeader(committer)
        func send(_ group: inout Group) throws -> Int {
            let message = try group.encrypt(text, padding: 32).tlsEncoded
            let body = try json(GroupSend(epoch: group.epoch, message: Base64Bytes(message), recipients: recipients))
            let answer = try http.request("POST", "/v1/groups/\(groupHex)/messages", body: body, headers: [(RelayAPI.groupSecretHeader, secret)])
            guard answer.status == 200 || answer.status == 204 else { throw BenchError("group send: \(answer.status) \(String(decoding: answer.body, as: UTF8.self))") }
            return message.count
        }
        for _ in 0..<3 { _ = try send(&committer) }   // warm: connection, statements, the sender's ratchet
        let before = try Self.census(database)
        let (cpu, relayCPU, start) = (StoreBenchmarks.cpuSeconds(), ProcessStat(pid: relay.pid)?.seconds ?? .nan, Measure.now())
        var ciphertext = 0
        for _ in 0..<groupMessages { ciphertext = try send(&committer) }
        let wall = Double(Measure.now() - start) / 1e6 / Double(groupMessages)
        let senderCPU = (StoreBenchmarks.cpuSeconds() - cpu) * 1e3 / Double(groupMessages)
        let relayCPUms = ((ProcessStat(pid: relay.pid)?.seconds ?? .nan) - relayCPU) * 1e3 / Double(groupMessages)
        let after = try Self.census(database)
        let stored = Double(after.payload - before.payload) / Double(groupMessages)
        var line = JSONLine(name: "groups_message")
        line.add("devices", .int(devices))
        line.add("value", .number(senderCPU))
        line.add("unit", .string("sender CPU ms per message"))
        line.add("relay_cpu_ms", .number(relayCPUms))
        line.add("relay_stored_bytes", .number(stored))
        line.add("relay_stored_pages_bytes", .number(Double(after.pages - before.pages) / Double(groupMessages)))
        line.add("stored_copies", .int((after.copies - before.copies) / groupMessages))
        line.add("stored_copy_bytes", .number(Double(after.copyBytes - before.copyBytes) / Double(groupMessages)))
        line.add("mailbox_entries", .int((after.entries - before.entries) / groupMessages))
        line.add("bytes_per_entry", .number((stored - Double(after.copyBytes - before.copyBytes) / Double(groupMessages)) / Double(recipients.count)))
        line.add("ciphertext_bytes", .int(ciphertext))
        line.add("wall_ms", .number(wall))
        line.add("messages", .int(groupMessages))
        line.add("description", .string("one ~90-character text to a group of \(devices) devices and the sender's, queued for all \(recipients.count) (the sender's own copy included, as the engine sends): sender CPU = MLS encrypt (padding 32) + JSON + POST /v1/groups/{id}/messages on a kept-alive loopback connection; relay_cpu_ms from /proc/PID/stat over \(groupMessages) sends; relay_stored_bytes = growth of SQLite's payload bytes in every table and index (dbstat) per message, of which stored_copy_bytes is the one stored copy and bytes_per_entry each recipient's mailbox entry (row + its indexes); relay_stored_pages_bytes the growth in pages (coarse)"))
        addLoad(&line)
        print(line.text)
        return PathCost(senderCPUms: senderCPU, relayCPUms: relayCPUms, storedBytes: stored, wallMs: wall)
    }

    // MARK: 1:1 fan-out

    /// The sender's ratchet session with each member, past PQXDH and one exchange each way, so that the next
    /// message on it is a chain message (the cheapest 1:1 send).
    final class Sessions: @unchecked Sendable {
        var sessions: [RatchetSession]
        init(_ sessions: [RatchetSession]) { self.sessions = sessions }
    }

    private func makeSessions(sender: Member, members: [Member]) -> Sessions {
        var sessions: [RatchetSession] = []
        sessions.reserveCapacity(members.count)
        for member in members {
            var keys = LocalPreKeys()
            keys.rotateSignedPreKey()
            keys.rotateLastResortPQPreKey()
            let opk = keys.generateOneTimePreKeys(1)[0], pqopk = keys.generateOneTimePQPreKeys(1)[0]
            let bundle = keys.bundle(identity: member.identity, oneTimePreKeyId: opk, oneTimePQPreKeyId: pqopk)
            let initiation = try! PQXDH.initiate(identity: sender.identity, bundle: bundle)
            var a = try! RatchetSession.initiator(initiation, localIdentity: sender.identity.publicKey, bundle: bundle)
            let response = try! PQXDH.respond(identity: member.identity, preKeys: keys, header: initiation.header)
            var b = RatchetSession.responder(response, localIdentity: member.identity.publicKey, remoteIdentity: sender.identity.publicKey)
            _ = try! b.decrypt(try! a.encrypt([1]))
            _ = try! a.decrypt(try! b.encrypt([2]))
            _ = try! b.decrypt(try! a.encrypt([3]))
            sessions.append(a)
        }
        return Sessions(sessions)
    }

    private func measureFanOut(sessions: Sessions, sender: Member, text: [UInt8], members: [Member], http: LoopbackHTTP,
                               relay: ChildRelay, database: DatabaseQueue) throws -> PathCost {
        let accountKey = Ed25519.KeyPair()
        let certificate = SenderCertificate.issue(address: sender.address, accountKey: accountKey, deviceId: sender.identity.deviceId,
                                                  deviceKey: sender.identity.publicKey, expiresAt: 4_102_444_800_000)
        let padded = Padding.pad(text)
        var envelopeBytes = 0
        func fanOut() throws {
            for (index, member) in members.enumerated() {
                let message = try sessions.sessions[index].encrypt(padded)
                let envelope = try SealedSender.seal(SealedContent(certificate: certificate, message: .ratchet(message)), to: member.identity.publicKey)
                envelopeBytes = envelope.count
                let request = SendRequest(messages: [OutgoingMessage(deviceId: member.identity.deviceId, deviceKey: Base64Bytes(member.identity.publicKey.bytes),
                                                                     envelope: Base64Bytes(envelope))])
                let path = "/v1/messages/" + (member.address.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? member.address)
                let answer = try http.request("POST", path, body: try json(request))
                guard answer.status == 200 || answer.status == 204 else { throw BenchError("1:1 send: \(answer.status) \(String(decoding: answer.body, as: UTF8.self))") }
            }
        }
        let before = try Self.census(database)
        let (cpu, relayCPU, start) = (StoreBenchmarks.cpuSeconds(), ProcessStat(pid: relay.pid)?.seconds ?? .nan, Measure.now())
        for _ in 0..<fanOuts { try fanOut() }
        let wall = Double(Measure.now() - start) / 1e6 / Double(fanOuts)
        let senderCPU = (StoreBenchmarks.cpuSeconds() - cpu) * 1e3 / Double(fanOuts)
        let relayCPUms = ((ProcessStat(pid: relay.pid)?.seconds ?? .nan) - relayCPU) * 1e3 / Double(fanOuts)
        let after = try Self.census(database)
        let stored = Double(after.payload - before.payload) / Double(fanOuts)
        var line = JSONLine(name: "groups_one_to_one_fanout")
        line.add("devices", .int(devices))
        line.add("value", .number(senderCPU))
        line.add("unit", .string("sender CPU ms per fan-out"))
        line.add("relay_cpu_ms", .number(relayCPUms))
        line.add("relay_stored_bytes", .number(stored))
        line.add("relay_stored_pages_bytes", .number(Double(after.pages - before.pages) / Double(fanOuts)))
        line.add("envelope_bytes", .int(envelopeBytes))
        line.add("wall_ms", .number(wall))
        line.add("fan_outs", .int(fanOuts))
        line.add("description", .string("the same text to the same \(devices) devices over 1:1: per device a ratchet chain message (padded), sealed sender, JSON, POST /v1/messages/{address} (one request per device, one at a time, on the same kept-alive connection); figures per fan-out of \(devices) envelopes, measured as for groups_message"))
        addLoad(&line)
        print(line.text)
        return PathCost(senderCPUms: senderCPU, relayCPUms: relayCPUms, storedBytes: stored, wallMs: wall)
    }

    // MARK: Adding a member

    private mutating func measureAdds(committer: inout Group, groupHex: String, members: inout [Member], newcomers: [Member], http: LoopbackHTTP,
                                      relay: ChildRelay) throws {
        // Each newcomer's MLS keys and KeyPackage, uploaded before the clock starts (a device keeps a stock).
        var clients: [MLSBenchmarks.Client] = []
        for (index, newcomer) in newcomers.enumerated() {
            let mls = MLSBenchmarks.Client(suite: suite, index: devices + 1 + index)
            clients.append(mls)
            let upload = try http.request("PUT", "/v1/key-packages", body: try json(KeyPackageUpload(keyPackages: [Base64Bytes(mls.keyPackage.tlsEncoded)], lastResort: nil)),
                                          headers: [("Authorization", "Bearer " + newcomer.token!)])
            guard upload.status == 204 || upload.status == 200 else { throw BenchError("KeyPackage upload: \(upload.status) \(String(decoding: upload.body, as: UTF8.self))") }
        }
        var steps: [String: [Double]] = [:]
        var cpuSteps: [String: [Double]] = [:]
        var totals: [Double] = []
        let relayCPUBefore = ProcessStat(pid: relay.pid)?.seconds ?? .nan
        var welcomeBytes = 0, commitBytes = 0
        for (index, newcomer) in newcomers.enumerated() {
            var marks: [(String, UInt64)] = [("start", Measure.now())]
            var cpuMarks: [Double] = [StoreBenchmarks.cpuSeconds()]
            func mark(_ step: String) {
                marks.append((step, Measure.now()))
                cpuMarks.append(StoreBenchmarks.cpuSeconds())
            }
            // Claim.
            let path = newcomer.address.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? newcomer.address
            let claimed = try http.request("POST", "/v1/key-packages/\(path)/claim")
            guard claimed.status == 200 else { throw BenchError("claim: \(claimed.status)") }
            let claim = try JSONDecoder().decode(KeyPackageClaim.self, from: Data(claimed.body))
            guard let first = claim.keyPackages.first else { throw BenchError("claim: no KeyPackage") }
            let package = try KeyPackage(tlsEncoded: first.keyPackage.bytes)
            guard package.verifySignature(suite: suite) else { throw BenchError("claim: a KeyPackage whose signature fails") }
            mark("claim")
            // Commit.
            var next = committer
            let output = try next.commit(adding: [package], wireFormat: .privateMessage)   // as the engine sends it (PROTOCOL.md §17.4)
            let commitMessage = output.message.tlsEncoded
            let welcome = MLSMessage(body: .welcome(output.welcome!)).tlsEncoded
            (welcomeBytes, commitBytes) = (welcome.count, commitMessage.count)
            mark("commit")
            // The relay orders it, and queues its Welcome for the new device in the same transaction.
            let commitBody = try json(GroupSend(epoch: committer.epoch, message: Base64Bytes(commitMessage), recipients: members.map(\.recipient),
                                                nextVerifier: Self.verifier(of: next),
                                                welcome: GroupWelcome(message: Base64Bytes(welcome), recipients: [newcomer.recipient])))
            let accepted = try http.request("POST", "/v1/groups/\(groupHex)/commits", body: commitBody, headers: [(RelayAPI.groupSecretHeader, Self.secretHeader(committer))])
            guard accepted.status == 200 || accepted.status == 204 else {
                throw BenchError("commit with a Welcome of \(welcome.count) bytes: \(accepted.status) \(String(decoding: accepted.body, as: UTF8.self))")
            }
            mark("relay_commit")
            // The new device fetches its mailbox and joins.
            let page = try http.request("GET", "/v1/mailbox?version=2&limit=10", headers: [("Authorization", "Bearer " + newcomer.token!)])
            guard page.status == 200 else { throw BenchError("mailbox fetch: \(page.status)") }
            // Read as the engine's RelayClient reads a page: by hand, else by JSONDecoder.
            let fetched = try page.body.withUnsafeBytes { FetchResponseV2(fastJSON: $0) } ?? JSONDecoder().decode(FetchResponseV2.self, from: Data(page.body))
            guard let entry = fetched.messages.compactMap(\.group).first(where: { $0.groupId == groupHex }),
                  case .welcome(let received) = try MLSMessage(tlsEncoded: entry.message.bytes).body else { throw BenchError("no Welcome in the new device's mailbox") }
            mark("fetch")
            let client = clients[index]
            let joined = try Group.join(welcome: received, keyPackage: client.keyPackage, initPrivateKey: client.initKeys.privateKey,
                                        encryptionPrivateKey: client.encryptionKeys.privateKey, signatureKey: client.signatureKey)
            guard joined.epochAuthenticator.unprotectedBytes == next.epochAuthenticator.unprotectedBytes else { throw BenchError("the new member joined another epoch") }
            mark("join")
            for i in 1..<marks.count {
                steps[marks[i].0, default: []].append(Double(marks[i].1 - marks[i - 1].1) / 1e6)
                cpuSteps[marks[i].0, default: []].append((cpuMarks[i] - cpuMarks[i - 1]) * 1e3)
            }
            totals.append(Double(marks.last!.1 - marks[0].1) / 1e6)
            // Not timed: the new device acknowledges its Welcome; the group has grown by one device.
            _ = try http.request("POST", "/v1/mailbox/ack", body: try json(AckRequest(ids: fetched.messages.map(\.id))),
                                 headers: [("Authorization", "Bearer " + newcomer.token!)])
            committer = next
            members.append(newcomer)
        }
        let relayCPUPerAdd = ((ProcessStat(pid: relay.pid)?.seconds ?? .nan) - relayCPUBefore) * 1e3 / Double(newcomers.count)
        let p50 = RelayBenchmarks.percentile(totals.sorted(), 0.5)
        addP50Ms = p50
        var line = JSONLine(name: "groups_add_member")
        line.add("devices", .int(devices))
        line.add("value", .number(p50))
        line.add("unit", .string("ms"))
        line.add("target", .number(Self.addTargetMs))
        line.add("target_is", .string("maximum"))
        line.add("ok", .bool(p50 <= Self.addTargetMs))
        line.add("max_ms", .number(totals.max() ?? .nan))
        for step in ["claim", "commit", "relay_commit", "fetch", "join"] {
            line.add("\(step)_p50_ms", .number(RelayBenchmarks.percentile((steps[step] ?? []).sorted(), 0.5)))
        }
        // CPU time, less sensitive than wall time to other processes on the machine: this process's (every
        // thread) per step, and the relay's per add (its claim, commit, fetch and the untimed acknowledgement).
        for step in ["claim", "commit", "relay_commit", "fetch", "join"] {
            line.add("\(step)_cpu_p50_ms", .number(RelayBenchmarks.percentile((cpuSteps[step] ?? []).sorted(), 0.5)))
        }
        line.add("relay_cpu_ms_per_add", .number(relayCPUPerAdd))
        line.add("commit_bytes", .int(commitBytes))
        line.add("welcome_bytes", .int(welcomeBytes))
        line.add("relay_envelope_cap", .int(96 * 1024))
        line.add("relay_handshake_cap", .int(2 << 20))
        line.add("welcome_fits_handshake_cap", .bool(welcomeBytes <= 2 << 20))
        line.add("adds", .int(totals.count))
        line.add("description", .string("one device added to a group of \(devices + 1) leaves (growing by one per add), wall time: claim its KeyPackage (POST /v1/key-packages/{address}/claim, signature checked), commit with a path (Welcome with the ratchet tree), the relay accepting the commit at the epoch (queued for every member device) with its Welcome (queued for the new device in the same transaction; the relay's default caps), the new device fetching its mailbox (version 2, fetched at once: no wake) and joining; steps' p50 beside it, and each step's CPU time in this process (p50, every thread: less sensitive to a loaded machine than wall time) with the relay's CPU time per add (claim, commit, fetch and the untimed acknowledgement)"))
        addLoad(&line)
        print(line.text)
    }

    // MARK: Set-up

    static let readOnly: Configuration = {
        var configuration = Configuration()
        configuration.readonly = true
        return configuration
    }()

    /// `count` accounts `<prefix><i>@<relay name>` of one device each, eight registrations at a time.
    static func register(count: Int, prefix: String, signIn: Bool, relay: ChildRelay, client: RelayClient) async throws -> [Member] {
        try await withThrowingTaskGroup(of: [Member].self) { group in
            let workers = min(8, count)
            for worker in 0..<workers {
                group.addTask {
                    var made: [Member] = []
                    for index in stride(from: worker, to: count, by: workers) {
                        let accountKey = Ed25519.KeyPair()
                        let identity = DeviceIdentity(deviceId: 1, keyPair: Ed25519.KeyPair())
                        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: identity.publicKey, createdAt: 1)], version: 1, accountKey: accountKey)
                        let address = "\(prefix)\(index)@\(relay.name)"
                        _ = try await client.register(RegisterRequest(address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes), deviceList: Base64Bytes(list.encoded)))
                        var member = Member(address: address, identity: identity, token: nil)
                        if signIn {
                            let challenge = try await client.challenge(ChallengeRequest(address: address, deviceId: 1)).challenge.bytes
                            let signature = identity.keyPair.sign(authenticationMessage(challenge: challenge, relayName: relay.name))
                            member.token = try await client.session(SessionRequest(address: address, deviceId: 1, challenge: Base64Bytes(challenge),
                                                                                   signature: Base64Bytes(signature))).token
                        }
                        made.append(member)
                    }
                    return made
                }
            }
            var all: [Member] = []
            for try await made in group { all += made }
            return all.sorted { $0.address.count != $1.address.count ? $0.address.count < $1.address.count : $0.address < $1.address }
        }
    }

    /// A commit of the set-up, with the sender's state before and after it.
    struct SetupCommit {
        let before: Group
        let message: [UInt8]
        let after: Group
    }

    /// The sender's group of `devices + 1` leaves, and the commits that made it (for the relay to order):
    /// one adding everyone, then one with a path by a member in each copath subtree of the sender.
    private func makeGroup(groupId: [UInt8]) throws -> (Group, [SetupCommit]) {
        let creator = MLSBenchmarks.Client(suite: suite, index: 0)
        let others = (1...devices).map { MLSBenchmarks.Client(suite: suite, index: $0) }
        let empty = try Group.create(suite: suite, groupID: groupId, leaf: creator.keyPackage.leafNode,
                                     encryptionPrivateKey: creator.encryptionKeys.privateKey, signatureKey: creator.signatureKey)
        var committer = empty
        let grown = try committer.commit(adding: others.map(\.keyPackage), wireFormat: .privateMessage)
        var commits = [SetupCommit(before: empty, message: grown.message.tlsEncoded, after: committer)]
        var populating: [Group] = []
        var first = 2
        while first < devices {
            let client = others[first - 1]
            populating.append(try Group.join(welcome: grown.welcome!, keyPackage: client.keyPackage, initPrivateKey: client.initKeys.privateKey,
                                             encryptionPrivateKey: client.encryptionKeys.privateKey, signatureKey: client.signatureKey))
            first *= 2
        }
        for index in populating.indices {
            let update = try populating[index].commit(wireFormat: .privateMessage)
            let before = committer
            _ = try committer.process(update.message)
            commits.append(SetupCommit(before: before, message: update.message.tlsEncoded, after: committer))
            for other in populating.indices where other != index { _ = try populating[other].process(update.message) }
        }
        return (committer, commits)
    }

    /// PROTOCOL.md §17.3: the epoch's send secret, as the header carries it, and its verifier.
    static func secretHeader(_ group: Group) -> String {
        Data(sendSecret(group)).base64EncodedString()
    }

    static func sendSecret(_ group: Group) -> [UInt8] {
        group.export(label: RelayAPI.groupSendLabel, context: group.context.groupID, length: RelayAPI.groupSecretLength).unprotectedBytes
    }

    static func verifier(of group: Group) -> Base64Bytes {
        Base64Bytes(RelayAPI.groupSendVerifier(groupId: group.context.groupID, epoch: group.epoch, secret: sendSecret(group)))
    }

    /// What the relay's SQLite file holds: payload bytes and pages over every table and index (dbstat), the
    /// stored group copies and their bytes, and the mailbox entries that point at one.
    struct Census {
        var payload = 0
        var pages = 0
        var copies = 0
        var copyBytes = 0
        var entries = 0
    }

    static func census(_ database: DatabaseQueue) throws -> Census {
        try database.read { db in
            var census = Census()
            let space = try Row.fetchOne(db, sql: "SELECT COALESCE(SUM(payload), 0) AS payload, COALESCE(SUM(pgsize), 0) AS pages FROM dbstat")!
            census.payload = space["payload"]
            census.pages = space["pages"]
            let copies = try Row.fetchOne(db, sql: "SELECT COUNT(*) AS n, COALESCE(SUM(LENGTH(body)), 0) AS b FROM group_messages")!
            census.copies = copies["n"]
            census.copyBytes = copies["b"]
            census.entries = try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM messages WHERE group_message IS NOT NULL") ?? 0
            return census
        }
    }

    private func addLoad(_ line: inout JSONLine) {
        if let load = loadAverage() { line.add("loadavg_1m", .number(load)) }
        line.add("cores", .int(ProcessInfo.processInfo.activeProcessorCount))
    }
}

/// A request body, written as the engine's `RelayClient` writes it: by hand for the bodies that have a
/// hand-written codec (`HotJSON`), else by JSONEncoder.
func json<Body: Encodable>(_ body: Body) throws -> [UInt8] {
    if let hot = body as? any HotJSON { return hot.jsonBytes() }
    return [UInt8](try JSONEncoder().encode(body))
}
