import ArgumentParser
import Logging
import Metrics
import ParleyRelay
import ParleyProtocol
import ParleyRelayAPI
#if canImport(Glibc)
import Glibc
#endif

/// Entry point: parses, runs, and maps every failure to the documented exit status with one line on
/// stderr (ArgumentParser's own status for usage errors is 64; ours is 1, as parley(1) has it).
@main
enum RelayMain {
    static func main() async {
        do {
            var command = try RelayCommand.parseAsRoot()
            if var asyncCommand = command as? AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch let code as ExitCode {
            exit(code.rawValue)
        } catch {
            let code = RelayCommand.exitCode(for: error)
            if code == .success { RelayCommand.exit(withError: error) }   // --help, --version
            let message = RelayCommand.message(for: error)
            writeLine("parley-relay: \(message.isEmpty ? String(describing: error) : message)", to: STDERR_FILENO)
            exit(code == .validationFailure ? 1 : 2)
        }
    }
}

/// `parley-relay`: the self-hostable relay. See parley-relay(8).
struct RelayCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "parley-relay",
        abstract: "The Parley relay: prekey directory, per-device mailboxes of sealed envelopes, content-free push.",
        discussion: """
            The relay stores and forwards end-to-end-encrypted envelopes. It learns the recipient device, the \
            envelope size (in 160-byte buckets) and the time — never plaintext, never the sender.

            Exit status: 0 after a clean shutdown (SIGINT or SIGTERM), 1 usage error, 2 unexpected error, \
            3 the address cannot be bound, or the data directory or the TLS files cannot be used.
            """,
        version: ParleyVersion.string,
        subcommands: [Serve.self]
    )
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the relay in the foreground until SIGINT or SIGTERM.")

    @Option(help: ArgumentHelp("Address to listen on.", valueName: "HOST:PORT"))
    var listen: String = "127.0.0.1:8443"

    @Option(help: ArgumentHelp("Directory for the relay's database and attachments (created if missing).", valueName: "DIR"))
    var data: String

    @Option(help: ArgumentHelp("A PostgreSQL database shared with other relay nodes, instead of the SQLite file in --data: postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE, or postgresql://USER@/DATABASE?host=/socket/dir. Attachments stay in --data, which the nodes then share.",
                               valueName: "URL"))
    var database: String?

    @Option(help: ArgumentHelp("The relay's public name, the part after '@' in its accounts' addresses (default: the --listen value).",
                               valueName: "HOST[:PORT]"))
    var name: String?

    @Option(name: .customLong("tls-cert"), help: ArgumentHelp("PEM certificate chain; with --tls-key, serve HTTPS and WSS.", valueName: "FILE"))
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: ArgumentHelp("PEM private key for --tls-cert.", valueName: "FILE"))
    var tlsKey: String?

    @Option(help: "Days a queued message or attachment is kept before it is dropped.")
    var ttlDays: Int = 30

    @Option(help: "Largest accepted envelope, in bytes.")
    var maxEnvelopeBytes: Int = 96 * 1024

    @Option(help: "Largest group commit, and largest Welcome a commit carries, in bytes (groups grow them).")
    var maxGroupHandshakeBytes: Int = 2 << 20

    @Option(help: "Most messages queued for one device.")
    var maxMailbox: Int = 10_000

    @Option(help: "Requests per second allowed per client IP (burst: twice this).")
    var rateLimitIp: Double = 200

    @Option(help: "Requests per second allowed per account (burst: twice this).")
    var rateLimitAccount: Double = 100

    @Option(help: "Messages per minute one account may receive sealed without its delivery access key or a sender's token (first contact from another relay; burst: twice this). 0 refuses them.")
    var rateLimitStrangers: Double = 10

    @Option(help: "Open connections allowed per client IP; more are closed at once.")
    var maxConnectionsPerIp: Int = 256

    @Option(help: ArgumentHelp("Open connections allowed in all; more are closed at once (default: the open-file limit less a quarter of it, kept for the database, files and the runtime).",
                               valueName: "N"))
    var maxConnections: Int?

    @Option(help: ArgumentHelp("Free space kept in the data directory's file system for draining: under it, new messages, attachments, accounts and prekeys are refused with 507 while sign-in, fetch and acknowledgement go on. Bytes, or with K, M or G (binary); 0 turns it off.",
                               valueName: "SIZE"))
    var minFreeSpace: String = "64M"

    @Option(help: "Seconds a new connection has to send its first request head before it is closed.")
    var headerTimeout: Int = 30

    @Option(help: "Seconds an HTTP connection may stay idle between requests (push connections stay open).")
    var idleTimeout: Int = 120

    @Option(name: .customLong("trusted-proxy"),
            help: ArgumentHelp("A proxy in front of the relay (HAProxy with 'option forwardfor'), by IP address; repeatable. Its requests count against the client address it appends to X-Forwarded-For, for the per-IP request and prekey-bundle limits.",
                               valueName: "ADDRESS"))
    var trustedProxies: [String] = []

    @Option(help: ArgumentHelp("Serve Prometheus metrics on GET /metrics at this address, a listener of its own without authentication: keep it on loopback or a private network. A PORT alone listens on 127.0.0.1.",
                               valueName: "HOST:PORT"))
    var metrics: String?

    @Option(help: "Seconds between samples of the mailbox depths and of the devices low on prekeys (with --metrics).")
    var metricsInterval: Int = 60

    @Flag(help: "Disable rate limiting and the per-IP connection cap (benchmarks on loopback only).")
    var noRateLimit = false

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    func validate() throws {
        guard Self.hostAndPort(listen) != nil else { throw ValidationError("--listen must be HOST:PORT, e.g. 127.0.0.1:8443") }
        if let metrics, Self.metricsAddress(metrics) == nil { throw ValidationError("--metrics must be HOST:PORT or PORT, e.g. 127.0.0.1:9464") }
        for proxy in trustedProxies where RelayServer.ipAddress(proxy) == nil {
            throw ValidationError("--trusted-proxy takes an IP address, not '\(proxy)'")
        }
        guard (1...3600).contains(metricsInterval) else { throw ValidationError("--metrics-interval must be 1–3600 seconds") }
        guard (tlsCertificate == nil) == (tlsKey == nil) else { throw ValidationError("--tls-cert and --tls-key go together") }
        guard (1...3650).contains(ttlDays) else { throw ValidationError("--ttl-days must be between 1 and 3650") }
        guard (1024...(16 << 20)).contains(maxEnvelopeBytes) else { throw ValidationError("--max-envelope-bytes must be between 1024 and 16777216") }
        guard (1024...(64 << 20)).contains(maxGroupHandshakeBytes) else {
            throw ValidationError("--max-group-handshake-bytes must be between 1024 and 67108864")
        }
        guard maxMailbox > 0 else { throw ValidationError("--max-mailbox must be positive") }
        guard rateLimitIp > 0, rateLimitAccount > 0 else { throw ValidationError("rate limits must be positive") }
        guard rateLimitStrangers >= 0 else { throw ValidationError("--rate-limit-strangers must be 0 or more") }
        guard (1...3600).contains(headerTimeout), (1...86_400).contains(idleTimeout) else {
            throw ValidationError("--header-timeout must be 1–3600 seconds and --idle-timeout 1–86400")
        }
        guard maxConnectionsPerIp > 0 else { throw ValidationError("--max-connections-per-ip must be positive") }
        guard (maxConnections ?? 1) > 0 else { throw ValidationError("--max-connections must be positive") }
        guard Self.bytes(minFreeSpace) != nil else { throw ValidationError("--min-free-space must be a size such as 64M, 512K, 1G or 0") }
        guard (try? AccountAddress("relay@" + (name ?? listen))) != nil else {
            throw ValidationError("'\(name ?? listen)' cannot be a relay's name: it must be HOST[:PORT] (a host name, an IPv4 address or a bracketed IPv6 address), as it appears after '@' in addresses\(name == nil ? "; give one with --name" : "")")
        }
        if let database {
            do { _ = try PostgresLocation(url: database) } catch { throw ValidationError(error.description) }
        }
        guard Logger.Level(rawValue: logLevel) != nil else { throw ValidationError("unknown --log-level '\(logLevel)'") }
    }

    private static func hostAndPort(_ text: String) -> (host: String, port: Int)? {
        guard let colon = text.lastIndex(of: ":"), let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port) else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        return host.isEmpty ? nil : (host, port)
    }

    /// `--metrics`: HOST:PORT as given, or a PORT alone on loopback.
    static func metricsAddress(_ text: String) -> (host: String, port: Int)? {
        if let port = Int(text) { return (1...65535).contains(port) ? ("127.0.0.1", port) : nil }
        return hostAndPort(text)
    }

    func run() async throws {
        let (host, port) = Self.hostAndPort(listen)!
        // Addresses are compared lower-cased, and clients sign the relay's name as their address has it.
        var configuration = RelayConfiguration(name: (name ?? listen).lowercased(), host: host, port: port, dataDirectory: data)
        configuration.tlsCertificatePath = tlsCertificate
        configuration.tlsKeyPath = tlsKey
        configuration.database = database
        configuration.messageTTL = UInt64(ttlDays) * 86_400_000
        configuration.attachmentTTL = configuration.messageTTL
        configuration.maxEnvelopeBytes = maxEnvelopeBytes
        configuration.maxGroupHandshakeBytes = maxGroupHandshakeBytes
        configuration.maxMailboxMessages = maxMailbox
        configuration.ipRate = RateLimit(perSecond: rateLimitIp, burst: rateLimitIp * 2)
        configuration.accountRate = RateLimit(perSecond: rateLimitAccount, burst: rateLimitAccount * 2)
        configuration.strangerRate = RateLimit(perSecond: rateLimitStrangers / 60, burst: rateLimitStrangers * 2)
        if noRateLimit { configuration.removeRateLimits() }
        configuration.maxConnectionsPerAddress = noRateLimit ? nil : maxConnectionsPerIp
        configuration.trustedProxies = Set(trustedProxies.compactMap(RelayServer.ipAddress))
        configuration.requestHeadSeconds = Int64(headerTimeout)
        configuration.idleSeconds = Int64(idleTimeout)
        configuration.minFreeSpaceBytes = Self.bytes(minFreeSpace)!
        LoggingSystem.bootstrap { label in StreamLogHandler.standardError(label: label) }
        var logger = Logger(label: "parley-relay")
        logger.logLevel = Logger.Level(rawValue: logLevel)!
        configuration.maxConnections = connectionCap(logger: logger)
        let scheme = tlsCertificate == nil ? "http" : "https"
        let relayName = configuration.name
        // The process's one metrics bootstrap: the relay records into the export's registry directly, and
        // whatever a library records through the global MetricsSystem goes to the same place.
        var export: MetricsExport?
        if let metrics, let (metricsHost, metricsPort) = Self.metricsAddress(metrics) {
            var made = MetricsExport(host: metricsHost, port: metricsPort)
            made.sampleInterval = .seconds(metricsInterval)
            MetricsSystem.bootstrap(made.factory)
            export = made
        }
        do {
            try await RelayServer(configuration: configuration, metrics: export).run(logger: logger) { boundPort in
                writeLine("parley-relay: serving \(relayName) on \(scheme)://\(host):\(boundPort)", to: STDOUT_FILENO)
            }
        } catch let error as RelayStartError {
            writeLine("parley-relay: \(error)", to: STDERR_FILENO)
            throw ExitCode(3)
        }
    }
}

extension Serve {
    /// "64M" and the like: bytes, or a number with K, M or G (powers of 1024).
    static func bytes(_ text: String) -> UInt64? {
        let units: [Character: UInt64] = ["K": 1 << 10, "M": 1 << 20, "G": 1 << 30]
        var digits = Substring(text.uppercased())
        var unit: UInt64 = 1
        if let last = digits.last, let multiplier = units[last] { unit = multiplier; digits = digits.dropLast() }
        guard digits.allSatisfy({ $0.isASCII && $0.isNumber }), let value = UInt64(digits) else { return nil }
        let (product, overflow) = value.multipliedReportingOverflow(by: unit)
        return overflow ? nil : product
    }

    /// Raises the open-file limit and derives the overall connection cap from it; a --max-connections
    /// that would leave the process too few descriptors is lowered, with a warning.
    func connectionCap(logger: Logger) -> Int? {
        guard let limit = DescriptorBudget.raiseOpenFileLimit() else { return maxConnections }
        let largest = DescriptorBudget.largestMaxConnections(openFileLimit: limit)
        var cap = maxConnections ?? DescriptorBudget.defaultMaxConnections(openFileLimit: limit)
        if cap > largest {
            logger.warning("--max-connections \(cap) would leave too few of the \(limit) open files for the relay itself; using \(largest)")
            cap = largest
        }
        logger.info("open-file limit \(limit); at most \(cap) connections")
        return cap
    }
}

/// Unbuffered line output (stdout may be a pipe read by a supervisor or a test waiting for the banner).
func writeLine(_ text: String, to fd: Int32) {
    let line = text + "\n"
    _ = line.withCString { write(fd, $0, strlen($0)) }
}

