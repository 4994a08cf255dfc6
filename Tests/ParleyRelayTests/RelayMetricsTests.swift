import AsyncHTTPClient
import Foundation
import ParleyCrypto
import Logging
import ParleyProtocol
import ParleyRelay
import ParleyRelayAPI
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// `parley-relay serve --metrics`: a real relay process, real traffic over loopback, then a scrape of
/// GET /metrics. The metrics must have moved, and nothing in the scrape may name an account, a device, a
/// token or an address of the test's.
@Suite struct RelayMetricsTests {
    @Test func scrapeAfterTrafficCountsItAndNamesNobody() async throws {
        let directory = try TemporaryDirectory("metrics")
        let metricsPort = try RelayProcess.freePort()
        // A small per-account budget (2 a second, burst 4), so that a burst of sends to one account is refused.
        let relay = try await RelayProcess.start(in: directory, arguments: [
            "--metrics", "127.0.0.1:\(metricsPort)", "--metrics-interval", "1", "--rate-limit-account", "2",
        ])
        defer { relay.kill(SIGKILL) }
        let raw = RawHTTP(relay)
        let tag = UUID().uuidString.prefix(8).lowercased()

        // Three accounts; alice's is made here, to keep its account key for a device-list change.
        let aliceAccountKey = Ed25519.KeyPair(), aliceKey = Ed25519.KeyPair(), aliceSecondKey = Ed25519.KeyPair()
        let alice = "alice\(tag)@\(relay.name)"
        let first = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: aliceKey.publicKey, createdAt: 1)],
                                          version: 1, accountKey: aliceAccountKey)
        let registered = try await raw.request(.POST, "/v1/accounts", json: RegisterRequest(
            address: alice, accountKey: Base64Bytes(aliceAccountKey.publicKey.bytes), deviceList: Base64Bytes(first.encoded)))
        #expect(registered.status == 201)
        let aliceToken = try await RawDevice.signIn(address: alice, key: aliceKey, on: relay)
        let bob = try await RawDevice.register("bob\(tag)", on: relay)
        let carol = try await RawDevice.register("carol\(tag)", on: relay)

        // Alice adds a second device: one device-list change, one device added.
        let second = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: aliceKey.publicKey, createdAt: 1),
                                                     DeviceEntry(deviceId: 2, identityKey: aliceSecondKey.publicKey, createdAt: 2)],
                                           version: 2, accountKey: aliceAccountKey)
        let changed = try await raw.request(.PUT, raw.accountPath(alice) + "/devices", json: DeviceListUpdate(deviceList: Base64Bytes(second.encoded)))
        #expect(changed.status == 204)

        // Bob keeps a push connection open, gets three messages, fetches them and acknowledges two.
        let (push, outcome) = try RawPush.open(token: bob.token, relay: relay)
        defer { push.close() }
        #expect(outcome == .upgraded)
        for index in 0..<3 {
            #expect(try await bob.send(Array("sealed \(index)".utf8), on: relay).status == 204)
        }
        let queued = try await raw.mailbox(token: bob.token)
        #expect(queued.count == 3)
        let acknowledged = try await raw.request(.POST, "/v1/mailbox/ack", json: AckRequest(ids: queued.prefix(2).map(\.id)), token: bob.token)
        #expect(acknowledged.status == 204)

        // Carol uploads prekeys without one-time keys; a bundle fetch then finds none of either kind.
        let preKeys = LocalPreKeys.generate(oneTime: 0)
        func signed(_ id: UInt32, _ encoded: [UInt8], _ bytes: [UInt8]) -> SignedPreKeyEntry {
            SignedPreKeyEntry(id: id, key: Base64Bytes(bytes), signature: Base64Bytes(carol.key.sign(encoded)))
        }
        let signedPreKey = preKeys.signedPreKeys[preKeys.currentSignedPreKeyId]!.publicKey
        let lastResort = preKeys.lastResortPQPreKeys[preKeys.currentLastResortPQPreKeyId]!.publicKey
        let upload = PreKeyUpload(signedPreKey: signed(preKeys.currentSignedPreKeyId, KeyEncoding.encode(signedPreKey), signedPreKey.bytes),
                                  lastResortPQPreKey: signed(preKeys.currentLastResortPQPreKeyId, KeyEncoding.encode(lastResort), lastResort.bytes),
                                  oneTimePreKeys: [], oneTimePQPreKeys: [])
        #expect(try await raw.request(.PUT, "/v1/keys", json: upload, token: carol.token).status == 204)
        let bundlePath = "/v1/keys/" + (carol.address.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? carol.address) + "/1"
        #expect(try await raw.request(.GET, bundlePath).status == 200)

        // A burst of sends to carol runs past her budget.
        var refusals = 0
        for index in 0..<200 where refusals == 0 {
            if try await carol.send(Array("burst \(index)".utf8), on: relay).status == 429 { refusals += 1 }
        }
        #expect(refusals == 1, "sends in a row at 2 a second (burst 4) are refused at some point")

        // The sampler runs every second: wait until it has seen bob's mailbox (one message left in it) and
        // carol's empty stock, both of which came before.
        var text = ""
        try await eventually("a scrape with bob's mailbox depth and carol's prekeys sampled") {
            text = try await Self.scrape(port: metricsPort)
            return (Self.value(text, "parley_relay_mailbox_depth_bucket", ["le": "1.0"]) ?? 0) >= 1
                && (Self.value(text, "parley_relay_devices_low_on_prekeys") ?? 0) >= 1
        }
        let metrics = text

        #expect(Self.value(metrics, "parley_relay_registrations_total") == 3)
        #expect(Self.value(metrics, "parley_relay_device_list_changes_total") == 1)
        #expect(Self.value(metrics, "parley_relay_devices_added_total") == 1)
        #expect(Self.value(metrics, "parley_relay_devices_removed_total") == 0)
        #expect((Self.value(metrics, "parley_relay_envelopes_stored_total") ?? 0) >= 4)   // bob's 3 and at least carol's first
        #expect(Self.value(metrics, "parley_relay_envelopes_delivered_total") == 2)
        #expect(Self.value(metrics, "parley_relay_push_connections") == 1)
        #expect(Self.value(metrics, "parley_relay_prekey_bundles_without_one_time_key_total", ["kind": "ec"]) == 1)
        #expect(Self.value(metrics, "parley_relay_prekey_bundles_without_one_time_key_total", ["kind": "pq"]) == 1)
        #expect((Self.value(metrics, "parley_relay_devices_low_on_prekeys") ?? 0) >= 1)
        #expect(Self.value(metrics, "parley_relay_rate_limited_total", ["limiter": "recipient"]) == 1)
        #expect(Self.value(metrics, "parley_relay_responses_total", ["route": "/v1/accounts", "method": "POST", "class": "2xx"]) == 3)
        #expect((Self.value(metrics, "parley_relay_responses_total", ["route": "/v1/messages/{address}", "method": "POST", "class": "4xx"]) ?? 0) == 1)
        #expect((Self.value(metrics, "parley_relay_storage_seconds_count", ["operation": "enqueue"]) ?? 0) >= 4)
        #expect((Self.value(metrics, "parley_relay_mailbox_depth_count") ?? 0) >= 1)

        // Nothing in it names anyone: not the addresses (nor their names alone), keys, tokens, the relay's name
        // or the loopback address and ports used.
        var secrets = [alice, bob.address, carol.address, "alice\(tag)", "bob\(tag)", "carol\(tag)", aliceToken, bob.token, carol.token,
                       relay.name, "127.0.0.1"]
        for key in [aliceAccountKey.publicKey.bytes, aliceKey.publicKey.bytes, aliceSecondKey.publicKey.bytes,
                    bob.key.publicKey.bytes, carol.key.publicKey.bytes] {
            secrets += [Data(key).base64EncodedString(), Hex.encode(key)]
        }
        for secret in secrets { #expect(!metrics.contains(secret), "the scrape contains '\(secret)'") }
        for port in [relay.port, metricsPort] {
            #expect(metrics.range(of: "(?<![0-9.])\(port)(?![0-9.])", options: .regularExpression) == nil, "the scrape contains port \(port)")
        }
        // And every label is one of the relay's fixed names, with a value that could not be an address.
        let allowedLabels: Set<String> = ["le", "route", "method", "class", "limiter", "kind", "operation"]
        for line in metrics.split(separator: "\n") where !line.hasPrefix("#") {
            for (name, value) in Self.labels(of: String(line)) {
                #expect(allowedLabels.contains(name), "unexpected label \(name) in \(line)")
                if name != "le" {
                    #expect(value.range(of: "[@]|[0-9]{3}|[0-9]+\\.[0-9]+", options: .regularExpression) == nil, "label value \(value) in \(line)")
                }
            }
        }
    }

    /// Two relays in one process, each with a registry of its own and no global bootstrap: each counts
    /// its own requests only.
    @Test func relaysInOneProcessKeepTheirOwnMetrics() async throws {
        let directory = try TemporaryDirectory("metrics")
        var exports: [MetricsExport] = [], tasks: [Task<Void, any Error>] = [], names: [String] = []
        defer { for task in tasks { task.cancel() } }
        for index in 0..<2 {
            let port = try RelayProcess.freePort()
            let export = MetricsExport(host: "127.0.0.1", port: try RelayProcess.freePort())
            let configuration = RelayConfiguration(name: "127.0.0.1:\(port)", host: "127.0.0.1", port: port, dataDirectory: directory.sub("relay\(index)"))
            let (listening, continuation) = AsyncStream.makeStream(of: Int.self)
            tasks.append(Task {
                var logger = Logger(label: "metrics-test")
                logger.logLevel = .critical
                try await RelayServer(configuration: configuration, metrics: export).run(logger: logger) { continuation.yield($0) }
            })
            var iterator = listening.makeAsyncIterator()
            #expect(await iterator.next() == port)
            exports.append(export)
            names.append(configuration.name)
        }
        for (index, name) in names.enumerated() {
            for _ in 0...index { #expect(try await RawHTTP(baseURL: "http://" + name).request(.GET, "/v1/health").status == 200) }
        }
        for (index, export) in exports.enumerated() {
            let text = export.registry.emitToString()
            #expect(Self.value(text, "parley_relay_responses_total", ["route": "/v1/health", "class": "2xx"]) == Double(index + 1))
        }
    }

    /// A metrics address that cannot be bound stops the start as the relay's own would: exit 3, one line
    /// naming it, and no data directory left behind.
    @Test func aMetricsAddressInUseIsRefusedAtStart() throws {
        let directory = try TemporaryDirectory("metrics")
        let taken = try listeningLoopbackSocket(backlog: 4)
        defer { _ = Glibc.close(taken.fd) }
        let (status, output) = try DeploymentTests.run(try Binaries.path("parley-relay"), [
            "serve", "--listen", "127.0.0.1:\(try RelayProcess.freePort())", "--data", directory.sub("data"), "--metrics", "127.0.0.1:\(taken.port)",
        ])
        #expect(status == 3)
        #expect(output.contains("parley-relay: cannot listen on 127.0.0.1:\(taken.port) (--metrics): Address already in use"), "\(output)")
        #expect(!FileManager.default.fileExists(atPath: directory.sub("data")))
    }

    // MARK: Reading the exposition format

    static func scrape(port: Int) async throws -> String {
        let response = try await HTTPClient.shared.execute(HTTPClientRequest(url: "http://127.0.0.1:\(port)/metrics"), timeout: .seconds(10))
        guard response.status.code == 200 else { throw FixtureError("GET /metrics answered \(response.status.code)") }
        return String(buffer: try await response.body.collect(upTo: 16 << 20))
    }

    /// The value of the sample `name` whose labels include `labels`.
    static func value(_ text: String, _ name: String, _ labels: [String: String] = [:]) -> Double? {
        for line in text.split(separator: "\n") where line.hasPrefix(name + "{") || line.hasPrefix(name + " ") {
            let sample = String(line)
            let found = Dictionary(Self.labels(of: sample), uniquingKeysWith: { a, _ in a })
            guard labels.allSatisfy({ found[$0.key] == $0.value }), let last = sample.split(separator: " ").last else { continue }
            return Double(last)
        }
        return nil
    }

    /// The labels of one sample line (`name{a="x",b="y"} 1`); the relay's values hold no quotes or commas (braces, in
    /// route templates, they may).
    static func labels(of line: String) -> [(String, String)] {
        guard let open = line.firstIndex(of: "{"), let close = line.lastIndex(of: "}") else { return [] }
        let inside = String(line[line.index(after: open)..<close])
        return inside.split(separator: ",").compactMap { pair -> (String, String)? in
            let parts = pair.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { return nil }
            return (parts[0], parts[1].trimmingCharacters(in: CharacterSet(charactersIn: "\"")))
        }
    }
}
