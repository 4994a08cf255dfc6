import Foundation
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import Testing
#if canImport(Glibc)
import Glibc
#endif

// Fixtures of the exhaustion tests: devices registered straight over HTTP (many, cheaply: no client
// store, no prekeys), raw push connections, and a small file system of the test's own.

/// An account of one device, registered and signed in over raw HTTP.
struct RawDevice: Sendable {
    let address: String
    let key: Ed25519.KeyPair
    let token: String

    var deviceAddress: DeviceAddress { DeviceAddress(address: address, deviceId: 1) }

    static func register(_ name: String, on relay: RelayProcess) async throws -> RawDevice {
        let raw = RawHTTP(relay)
        let accountKey = Ed25519.KeyPair(), key = Ed25519.KeyPair()
        let list = SignedDeviceList.sign(devices: [DeviceEntry(deviceId: 1, identityKey: key.publicKey, createdAt: 1)], version: 1, accountKey: accountKey)
        let address = "\(name)@\(relay.name)"
        let registered = try await raw.request(.POST, "/v1/accounts", json: RegisterRequest(
            address: address, accountKey: Base64Bytes(accountKey.publicKey.bytes), deviceList: Base64Bytes(list.encoded)))
        guard registered.status == 201 else { throw FixtureError("registering \(name): \(registered.status) \(registered.text)") }
        return RawDevice(address: address, key: key, token: try await signIn(address: address, key: key, on: relay))
    }

    static func signIn(address: String, key: Ed25519.KeyPair, on relay: RelayProcess) async throws -> String {
        let raw = RawHTTP(relay)
        let challenge = try await raw.request(.POST, "/v1/auth/challenge", json: ChallengeRequest(address: address, deviceId: 1))
        guard challenge.status == 200 else { throw FixtureError("challenge for \(address): \(challenge.status) \(challenge.text)") }
        let bytes = try challenge.decode(ChallengeResponse.self).challenge.bytes
        let signature = key.sign(authenticationMessage(challenge: bytes, relayName: relay.name))
        let session = try await raw.request(.POST, "/v1/auth/session", json: SessionRequest(
            address: address, deviceId: 1, challenge: Base64Bytes(bytes), signature: Base64Bytes(signature)))
        guard session.status == 200 else { throw FixtureError("session for \(address): \(session.status) \(session.text)") }
        return try session.decode(SessionResponse.self).token
    }

    /// One sealed-sender send of `envelope` to this device.
    func send(_ envelope: [UInt8], on relay: RelayProcess) async throws -> RawHTTP.Reply {
        let message = OutgoingMessage(deviceId: 1, deviceKey: Base64Bytes(key.publicKey.bytes), envelope: Base64Bytes(envelope))
        let raw = RawHTTP(relay)
        return try await raw.request(.POST, raw.messagesPath(address), json: SendRequest(messages: [message]))
    }
}

/// A push connection made by hand: the upgrade request on a plain socket.
enum RawPush {
    enum Outcome: Equatable { case upgraded, closed, other(String) }

    /// Opens `GET /v1/push` for `token` and says how the relay answered: upgraded (101), closed without an
    /// answer, or something else. Throws when nothing came within the time.
    static func open(token: String, relay: RelayProcess, timeoutSeconds: Int = 30) throws -> (LoopbackSocket, Outcome) {
        let socket = try LoopbackSocket(port: relay.port)
        try? socket.send("""
            GET /v1/push HTTP/1.1\r
            Host: \(relay.name)\r
            Connection: Upgrade\r
            Upgrade: websocket\r
            Sec-WebSocket-Version: 13\r
            Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r
            Authorization: Bearer \(token)\r
            \r

            """)
        let answer = try socket.readSome(timeoutSeconds: timeoutSeconds)
        if answer.isEmpty { return (socket, .closed) }
        if answer.hasPrefix("HTTP/1.1 101") { return (socket, .upgraded) }
        return (socket, .other(String(answer.prefix(40))))
    }
}

/// A tmpfs of `megabytes` mounted on `path` (created), unmounted when released; nil (with the reason
/// printed) where the test cannot mount one (not root, no tmpfs, a sandbox).
final class SmallFileSystem: @unchecked Sendable {
    let path: String

    static func mount(megabytes: Int, at path: String, in directory: TemporaryDirectory) async throws -> SmallFileSystem? {
        guard geteuid() == 0 else {
            print("skipped: mounting a small file system needs root (euid \(geteuid()))")
            return nil
        }
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let result = try await run("/usr/bin/mount", ["-t", "tmpfs", "-o", "size=\(megabytes)m,mode=0700", "tmpfs", path],
                                   in: directory, timeout: .seconds(30))
        guard result.status == 0 else {
            print("skipped: cannot mount a \(megabytes) MB tmpfs here: \(result.stderr)")
            try? FileManager.default.removeItem(atPath: path)
            return nil
        }
        return SmallFileSystem(path: path)
    }

    private init(path: String) { self.path = path }

    /// Bytes an unprivileged writer may still use.
    var availableBytes: UInt64 {
        var stats = statvfs()
        guard statvfs(path, &stats) == 0 else { return 0 }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    /// Fills what is left with a file (written until the file system refuses); returns its path.
    func fill() throws -> String {
        let file = path + "/filler"
        let fd = open(file, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        guard fd >= 0 else { throw FixtureError("cannot create \(file)") }
        defer { close(fd) }
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, 1) }) > 0 {}
        return file
    }

    /// Unmounts (lazily: a relay killed a moment ago may still hold files on it); the temporary
    /// directory holding the mount point can then be removed.
    func unmount() {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/umount")
        process.arguments = ["-l", path]
        try? process.run()
        process.waitUntilExit()
    }
}
