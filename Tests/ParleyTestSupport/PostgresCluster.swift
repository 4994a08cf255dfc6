import Foundation
import ParleyRelay
#if canImport(Glibc)
import Glibc
#endif

/// A private PostgreSQL 15 cluster for the tests and for `parley-bench --only relay-postgres` (Debian's
/// `postgresql` package): `initdb` in a temporary directory, listening only on a Unix socket in that
/// directory, one per test process, stopped (`pg_ctl stop -m immediate`) and removed when the process
/// exits. Each test gets a database of its own (`database()`), so tests share the cluster's start-up (about
/// a second) but not their data.
///
/// PostgreSQL refuses to run as root: when the tests run as root (as in CI) every server command runs as
/// the `postgres` user of Debian's package (`runuser`), which owns the directory; otherwise as the user
/// running the tests. A cluster left behind by a test process that was killed is stopped and removed by
/// the next one.
public final class PostgresCluster: Sendable {
    public static let binaries = "/usr/lib/postgresql/15/bin"
    /// Only names the socket file: nothing listens on TCP.
    public static let port = 5432
    public static let user = "parley"
    static let prefix = "parley-pg-"

    /// The directory holding `data/`, the socket and the server's log.
    public let directory: String
    /// Whether commits wait for the disk (fsync on, PostgreSQL's defaults), as a deployment's would; the
    /// tests' clusters run without (`startPrivate(durable: false)`, `shared`).
    public let durable: Bool

    public var socketDirectory: String { directory }

    /// The one cluster of this test process, started on first use.
    public static let shared: Result<PostgresCluster, PostgresClusterError> = Result { () throws(PostgresClusterError) in
        try PostgresCluster.start()
    }

    /// The cluster, or a failure that says what is missing (a test that needs PostgreSQL fails, not skips).
    public static func get() throws -> PostgresCluster { try shared.get() }

    private init(directory: String, durable: Bool) {
        self.directory = directory
        self.durable = durable
    }

    /// `postgresql://` URL of database `name` in this cluster.
    public func url(database name: String) -> String {
        "postgresql://\(Self.user)@/\(name)?host=\(socketDirectory)"
    }

    /// A new, empty database for one test; its name is returned.
    public func database() throws -> String {
        let name = "t_" + UUID().uuidString.lowercased().replacingOccurrences(of: "-", with: "")
        try psql("CREATE DATABASE \(name)")
        return name
    }

    /// `get()` and `database()` for async tests, off Swift's cooperative threads: both wait for a child
    /// process (initdb and pg_ctl, psql) in a blocking waitpid, and the cooperative pool has one thread per
    /// core. On a 2-core machine two tests waiting there at once left no thread to the tests already running
    /// against PostgreSQL: their queries' answers and the pool's leases could not be taken up, and leases
    /// timed out ("no connection to the database within 20 s") with the database idle.
    public static func ready() async throws -> PostgresCluster { try await offCooperativeThreads { try get() } }

    public func newDatabase() async throws -> String { try await Self.offCooperativeThreads { try self.database() } }

    static func offCooperativeThreads<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
        try await ParleyTestSupport.offCooperativeThreads(work)
    }

    /// Runs one SQL command in database `database` (`postgres` by default) with psql.
    @discardableResult
    public func psql(_ sql: String, database: String = "postgres") throws -> String {
        try Self.run(["/usr/bin/psql", "-X", "-q", "-t", "-A", "-v", "ON_ERROR_STOP=1", "-h", socketDirectory, "-p", String(Self.port),
                      "-U", Self.user, "-d", database, "-c", sql], asServerUser: false)
    }

    /// Stops the server at once (as a crash would) and starts it again; `between` runs while it is down.
    public func restart(between: () async throws -> Void = {}) async throws {
        try await Self.offCooperativeThreads { try self.stop() }
        try await between()
        try await Self.offCooperativeThreads { try self.startServer() }
    }

    public func stop() throws {
        try Self.run([Self.binaries + "/pg_ctl", "-D", directory + "/data", "-m", "immediate", "-w", "stop"], asServerUser: true)
    }

    public func startServer() throws {
        // Durability is not what the tests are about: without fsync the cluster starts and creates
        // databases several times faster. Everything a relay acknowledges is committed all the same.
        // A durable cluster (the benchmark's) keeps PostgreSQL's defaults: fsync, synchronous_commit.
        // The benchmark's cluster also counts statements (pg_stat_statements): its round trips per message.
        let options = "-k \(socketDirectory) -p \(Self.port) -c listen_addresses= -c max_connections=500"
            + (durable ? " -c shared_preload_libraries=pg_stat_statements" : " -c fsync=off -c full_page_writes=off")
        try Self.run([Self.binaries + "/pg_ctl", "-D", directory + "/data", "-l", directory + "/server.log", "-w", "-t", "60",
                      "-o", options, "start"], asServerUser: true)
    }

    /// The server's main process (the first line of postmaster.pid), while it runs; its backends are its
    /// children.
    public var serverProcessIdentifier: Int32? {
        guard let text = try? String(contentsOfFile: directory + "/data/postmaster.pid", encoding: .utf8) else { return nil }
        return text.split(separator: "\n").first.flatMap { Int32($0.trimmingCharacters(in: .whitespaces)) }
    }

    // MARK: Start and clean-up

    /// A cluster of its own, for a test that stops and starts the server (the shared one serves tests
    /// running at the same time); `destroy()` it at the end.
    public static func startPrivate(durable: Bool = false) throws -> PostgresCluster { try start(durable: durable) }

    /// `startPrivate` for async tests, off the cooperative threads (see `ready()`).
    public static func startPrivate(durable: Bool = false) async throws -> PostgresCluster {
        try await offCooperativeThreads { try start(durable: durable) }
    }

    public func destroy() {
        Self.running.withLock { $0.remove(directory) }
        Self.stopAndRemove(directory)
    }

    private static func start(durable: Bool = false) throws(PostgresClusterError) -> PostgresCluster {
        guard FileManager.default.isExecutableFile(atPath: binaries + "/initdb") else {
            throw .missing("PostgreSQL 15 is not installed (\(binaries)/initdb): `make deps` installs Debian's postgresql package")
        }
        removeAbandonedClusters()
        let template = NSTemporaryDirectory() + "/\(prefix)\(getpid())-XXXXXX"
        var path = Array(template.utf8CString)
        guard mkdtemp(&path) != nil else { throw .failed("cannot create a temporary directory: \(String(cString: strerror(errno)))") }
        let directory = String(decoding: path.prefix(while: { $0 != 0 }).map { UInt8(bitPattern: $0) }, as: UTF8.self)
        if getuid() == 0 {
            guard let owner = getpwnam("postgres") else {
                throw .missing("the tests run as root and there is no `postgres` user to run PostgreSQL as (Debian's postgresql package makes it)")
            }
            chown(directory, owner.pointee.pw_uid, owner.pointee.pw_gid)
        }
        chmod(directory, 0o755)
        let cluster = PostgresCluster(directory: directory, durable: durable)
        do {
            try run([binaries + "/initdb", "-D", directory + "/data", "-A", "trust", "-U", user, "-E", "UTF8", "--no-sync", "--no-instructions"],
                    asServerUser: true)
            try cluster.startServer()
        } catch {
            try? FileManager.default.removeItem(atPath: directory)
            throw .failed("\(error)")
        }
        running.withLock { _ = $0.insert(directory) }
        let install = exitHandlerInstalled.withLock { installed in
            defer { installed = true }
            return !installed
        }
        if install { atexit { PostgresCluster.stopAtExit() } }
        return cluster
    }

    private static let running = PostgresClusterState<Set<String>>([])
    private static let exitHandlerInstalled = PostgresClusterState(false)

    private static func stopAtExit() {
        for directory in running.withLock({ $0 }) { stopAndRemove(directory) }
    }

    private static func stopAndRemove(_ directory: String) {
        if FileManager.default.fileExists(atPath: directory + "/data/postmaster.pid") {
            _ = try? run([binaries + "/pg_ctl", "-D", directory + "/data", "-m", "immediate", "-w", "stop"], asServerUser: true)
        }
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Clusters of test processes that no longer run (killed before their exit handler ran).
    private static func removeAbandonedClusters() {
        let temporary = NSTemporaryDirectory()
        for name in (try? FileManager.default.contentsOfDirectory(atPath: temporary)) ?? [] where name.hasPrefix(prefix) {
            guard let pid = Int32(name.dropFirst(prefix.count).prefix(while: \.isNumber)), pid != getpid() else { continue }
            if kill(pid, 0) == -1, errno == ESRCH { stopAndRemove(temporary + "/" + name) }
        }
    }

    /// Runs a command to its end; its output, or an error with its output when it fails. posix_spawn and
    /// waitpid rather than Foundation's Process, whose wait hung here on a child already gone; the output
    /// goes to a file, and the child gets no other descriptor of this process: the server `pg_ctl start`
    /// leaves running would otherwise hold them open.
    @discardableResult
    public static func run(_ arguments: [String], asServerUser: Bool) throws(PostgresClusterError) -> String {
        let command = asServerUser && getuid() == 0 ? ["/usr/sbin/runuser", "-u", "postgres", "--"] + arguments : arguments
        let outputPath = NSTemporaryDirectory() + "/\(prefix)output-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: outputPath) }
        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, outputPath, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        // (glibc's addclosefrom_np is not visible to Swift here.)
        let open = ((try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []).compactMap { Int32($0) }
        for fd in open where fd > 2 && fcntl(fd, F_GETFD) != -1 { posix_spawn_file_actions_addclose(&actions, fd) }
        let argv = command.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        var pid: pid_t = 0
        let spawned = posix_spawn(&pid, command[0], &actions, nil, argv, environ)
        guard spawned == 0 else { throw .failed("cannot run \(command[0]): \(String(cString: strerror(spawned)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1, errno == EINTR {}
        let text = (try? String(contentsOfFile: outputPath, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0, code = (status >> 8) & 0xff
        guard exited, code == 0 else {
            throw .failed("\((arguments[0] as NSString).lastPathComponent) \(exited ? "exited with \(code)" : "was killed"): \(text)")
        }
        return text
    }
}

public enum PostgresClusterError: Error, CustomStringConvertible {
    case missing(String)
    case failed(String)
    public var description: String {
        switch self {
        case .missing(let why), .failed(let why): "private PostgreSQL cluster: \(why)"
        }
    }
}

/// A lock-protected value (Synchronization's Mutex needs a newer platform declaration than this package's).
public final class PostgresClusterState<Value: Sendable>: @unchecked Sendable {
    private let lock = NSLock()
    private var value: Value
    public init(_ value: Value) { self.value = value }
    public func withLock<T>(_ body: (inout Value) -> T) -> T {
        lock.lock()
        defer { lock.unlock() }
        return body(&value)
    }
}

/// Runs `work`, which blocks (a wait for a child process), on a thread of its own rather than on one of
/// Swift's cooperative threads: there is one per core, and on a 2-core machine two tests blocked there at
/// once leave none to every other test of the run (their answers and timers wait until the block ends).
public func offCooperativeThreads<T: Sendable>(_ work: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        Thread.detachNewThread { continuation.resume(with: Result { try work() }) }
    }
}
