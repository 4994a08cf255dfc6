import Foundation
import ParleyClient
import ParleyProtocol
import ParleyRelayAPI
import Testing

/// One-time prekeys against a stranger who fetches bundles (no credentials needed): fetches are limited per
/// target device and per IP, and a device whose stock runs low is woken and refills at once.
@Suite("Relay: one-time prekeys cannot be drained")
struct PreKeyDrainTests {
    func bundlePath(_ address: String, _ deviceId: UInt32 = 1) -> String {
        "/v1/keys/" + (address.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? address) + "/\(deviceId)"
    }

    @Test("past the per-device burst, bundles come without one-time prekeys instead of a refusal; the stock keeps most keys")
    func perDevice() async throws {
        try await withRelay { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            let raw = RawHTTP(relay), path = bundlePath(await alice.address.description)
            var bundles: [PreKeyBundle] = []
            // The device's budget is a burst of 20 refilled at one a 30 s (RelayConfiguration.bundleRatePerDevice),
            // on the relay's clock: what may be served is bounded by the burst plus what refilled in the time
            // the fetches took, measured around them (a loaded machine has taken over 30 s for the 40).
            let started = ContinuousClock.now
            for _ in 0..<40 {
                let answer = try await raw.request(.GET, path)
                #expect(answer.status == 200)
                bundles.append(try PreKeyBundle(decoding: try answer.decode(BundleResponse.self).bundle.bytes))
            }
            let elapsed = (ContinuousClock.now - started) / .seconds(1)
            let allowed = 20 + Int(elapsed / 30) + 1
            let withOneTimeKey = bundles.filter { $0.oneTimePreKeyId != 0 }.count
            let withoutOneTimeKey = bundles.filter { $0.oneTimePreKeyId == 0 }
            #expect(withOneTimeKey <= allowed && withoutOneTimeKey.allSatisfy { $0.pqKind == .lastResort },
                    "\(withOneTimeKey) of 40 bundles took a one-time prekey in \(elapsed) s")
            // The burst is whole at the first fetch; past it the device's budget, not a refusal, decides.
            #expect(bundles.prefix(20).allSatisfy { $0.oneTimePreKeyId != 0 }, "the burst of 20 each took a one-time prekey")
            let count = try await RelayClient(endpoint: try TestDevice.endpoint(for: relay)).preKeyCount(token: try await alice.token())
            #expect(count.oneTimePreKeys >= LocalPreKeys.defaultOneTimeCount - allowed, "\(count)")
        }
    }

    @Test("one IP fetching bundles of many devices is cut off after the per-IP burst")
    func perIP() async throws {
        try await withRelay { relay, directory in
            var paths: [String] = []
            for index in 0..<7 { paths.append(bundlePath(await try TestDevice.create("user\(index)", on: relay, in: directory).address.description)) }
            // 280 fetches of 7 devices, one lane per device side by side (within the test client's 8
            // connections to a relay), so that how fast this machine answers hardly decides the outcome: the
            // IP's burst of 120, plus two a second refilled meanwhile, is all that is served.
            let started = ContinuousClock.now
            let statuses = try await withThrowingTaskGroup(of: [Int].self) { group in
                for path in paths {
                    group.addTask {
                        var statuses: [Int] = []
                        for _ in 0..<40 { statuses.append(try await RawHTTP(relay).request(.GET, path).status) }
                        return statuses
                    }
                }
                return try await group.reduce(into: [Int]()) { $0 += $1 }
            }
            let elapsed = (ContinuousClock.now - started) / .seconds(1)
            let served = statuses.filter { $0 == 200 }.count, refused = statuses.filter { $0 == 429 }.count
            #expect(served + refused == statuses.count, "only 200 and 429: \(Set(statuses))")
            #expect(refused > 0 && Double(served) <= 120 + 2 * elapsed + 1, "\(served) served, \(refused) refused in \(elapsed) s")
        }
    }

    @Test("fetches that leave a device low wake it, and it refills although no message came")
    func lowStockWakesTheOwner() async throws {
        try await withRelay(["--no-rate-limit"]) { relay, directory in
            let alice = try await TestDevice.create("alice", on: relay, in: directory)
            try await alice.connect()
            defer { alice.stopConnection() }
            let raw = RawHTTP(relay), path = bundlePath(await alice.address.description)
            let client = try RelayClient(endpoint: try TestDevice.endpoint(for: relay))
            let token = try await alice.token()
            for _ in 0..<(LocalPreKeys.defaultOneTimeCount - 5) { #expect(try await raw.request(.GET, path).status == 200) }
            try await eventually("alice's one-time prekeys to be refilled", timeout: .seconds(30)) {
                let count = try await client.preKeyCount(token: token)
                return count.oneTimePreKeys >= LocalPreKeys.defaultOneTimeCount - 5 && !count.low
            }
        }
    }
}
