import Foundation
internal import GRDB
import HTTPTypes
import Logging
import NIOConcurrencyHelpers
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// What ran out or broke under the relay's storage, named so that the operator's log and the client's
/// answer say it: a full disk, a read-only file system, too many open files, a locked or corrupt database,
/// a data directory that cannot be opened or read. Anything else that fails is a bug (500).
public enum StorageFault: String, Sendable, CaseIterable {
    case full = "storage_full"
    case readOnly = "storage_read_only"
    case tooManyOpenFiles = "too_many_open_files"
    case locked = "database_locked"
    case corrupt = "database_corrupt"
    case unusable = "storage_unusable"
    /// The shared PostgreSQL database cannot be reached, or is shutting down or starting up.
    case databaseUnavailable = "database_unavailable"

    /// 507 for a full disk (nothing new can be stored; draining works); 503 for the rest, which an
    /// operator or time may cure.
    var status: HTTPResponse.Status {
        self == .full ? HTTPResponse.Status(code: 507, reasonPhrase: "Insufficient Storage") : .serviceUnavailable
    }

    /// Seconds a client should wait before trying again (sent as Retry-After).
    var retryAfterSeconds: Int {
        switch self {
        case .locked, .tooManyOpenFiles, .databaseUnavailable: 5
        case .full: 60
        case .readOnly, .corrupt, .unusable: 300
        }
    }

    /// The answer's `error` code: a full disk keeps the one the reserve uses.
    var code: String { self == .full ? "insufficient_storage" : rawValue }

    var message: String {
        switch self {
        case .full: "the relay is out of storage space: nothing new is stored until space returns; fetching and acknowledging mail still work"
        case .readOnly: "the relay's storage is read-only; try again later"
        case .tooManyOpenFiles: "the relay has too many open files; try again shortly"
        case .locked: "the relay's database is busy; try again shortly"
        case .corrupt: "the relay's database is damaged; its operator must repair it"
        case .unusable: "the relay cannot read or write its storage; try again later"
        case .databaseUnavailable: "the relay cannot reach its database right now; try again shortly"
        }
    }

    /// The operator's log line: what failed, never what was being stored or for whom.
    var logLine: String {
        switch self {
        case .full: "storage: the disk holding the data directory is full; writes fail until space is freed"
        case .readOnly: "storage: the data directory's file system is read-only; writes fail"
        case .tooManyOpenFiles: "storage: too many open files (EMFILE/ENFILE); raise the open-file limit or lower --max-connections"
        case .locked: "storage: the database stayed locked past the busy timeout (another process holding relay.sqlite?)"
        case .corrupt: "storage: the database is corrupt (SQLITE_CORRUPT/NOTADB); restore relay.sqlite from a backup"
        case .unusable: "storage: the data directory cannot be opened, read or written (permissions or an I/O error)"
        case .databaseUnavailable: "storage: the PostgreSQL database (--database) cannot be reached, or is shutting down or starting up"
        }
    }

    /// The fault behind `error`, nil for anything that is not one (a bug, or a RelayError).
    static func of(_ error: any Error) -> StorageFault? {
        if let fault = PostgresRelayStorage.fault(of: error) { return fault }
        if let error = error as? DatabaseError {
            switch error.resultCode.primaryResultCode {
            case .SQLITE_FULL: return .full
            case .SQLITE_READONLY: return .readOnly
            case .SQLITE_BUSY, .SQLITE_LOCKED: return .locked
            case .SQLITE_CORRUPT, .SQLITE_NOTADB: return .corrupt
            case .SQLITE_CANTOPEN: return descriptorsExhausted() ? .tooManyOpenFiles : .unusable
            case .SQLITE_IOERR, .SQLITE_PERM: return descriptorsExhausted() ? .tooManyOpenFiles : .unusable
            default: return nil
            }
        }
        if let error = error as? IOError { return of(errno: error.errnoCode) }
        if let error = error as? POSIXError { return of(errno: error.code.rawValue) }
        if let error = error as? CocoaError {
            switch error.code {
            case .fileWriteOutOfSpace: return .full
            case .fileWriteVolumeReadOnly: return .readOnly
            default: break
            }
        }
        let nsError = error as NSError
        if nsError.domain == NSPOSIXErrorDomain { return of(errno: Int32(nsError.code)) }
        if let underlying = nsError.userInfo[NSUnderlyingErrorKey] as? NSError, underlying.domain == NSPOSIXErrorDomain {
            return of(errno: Int32(underlying.code))
        }
        return nil
    }

    static func of(errno code: Int32) -> StorageFault? {
        switch code {
        case ENOSPC, EDQUOT: .full
        case EROFS: .readOnly
        case EMFILE, ENFILE: .tooManyOpenFiles
        default: nil
        }
    }

    /// Whether the process is out of descriptors right now: SQLite reports EMFILE only as "cannot open".
    private static func descriptorsExhausted() -> Bool {
        let probe = dup(STDERR_FILENO)
        if probe >= 0 { close(probe); return false }
        return errno == EMFILE || errno == ENFILE
    }
}

/// The space the relay keeps for draining, and the faults it has met. New envelopes, attachments,
/// accounts, prekeys and provisioning messages are refused (507) once the free space of the data
/// directory's file system, counting the database's free pages that new rows reuse, falls under
/// `--min-free-space`: what is left lets devices sign in, fetch and acknowledge, and every
/// acknowledgement frees space. `/v1/health` reports `degraded` while under the reserve or within a
/// minute of a fault.
final class StorageSpace: Sendable {
    let directory: String
    let reserve: UInt64
    /// How long a fault keeps the health check degraded.
    static let faultMemory = TimeAmount.seconds(60)
    /// At most one log line per fault kind in this time (with how many more happened).
    static let logInterval = TimeAmount.seconds(10)

    private struct State {
        var underReserve = false
        var lastFault: (fault: StorageFault, at: NIODeadline)?
        var lastLine: [StorageFault: NIODeadline] = [:]
        var unlogged: [StorageFault: Int] = [:]
    }
    private let state = NIOLockedValueBox(State())

    init(directory: String, reserve: UInt64) {
        self.directory = directory
        self.reserve = reserve
    }

    /// Free bytes on the data directory's file system for an unprivileged writer, nil if unknown.
    func freeBytes() -> UInt64? {
        var stats = statvfs()
        guard statvfs(directory, &stats) == 0 else { return nil }
        return UInt64(stats.f_bavail) * UInt64(stats.f_frsize)
    }

    /// Throws the 507 when storing `bytes` more would leave less than the reserve.
    func requireRoom(for bytes: UInt64 = 0, reusable: () async throws -> UInt64, logger: Logger) async throws {
        guard await hasRoom(for: bytes, reusable: reusable, logger: logger) else { throw RelayError.storage(.full) }
    }

    /// Whether `bytes` more leave the reserve free; `reusable` gives the bytes the database can reuse
    /// without growing (its free pages), asked only when the file system itself is short. Crossing the
    /// reserve, either way, is logged once.
    func hasRoom(for bytes: UInt64 = 0, reusable: () async throws -> UInt64, logger: Logger) async -> Bool {
        guard reserve > 0, let free = freeBytes() else { return true }
        let needed = reserve.addingReportingOverflow(bytes).partialValue
        var enough = free >= needed
        if !enough, let reused = try? await reusable() { enough = free + reused >= needed }
        let changed = state.withLockedValue { state in
            defer { state.underReserve = !enough }
            return state.underReserve == enough
        }
        // Only the reserve itself is news: one large attachment that does not fit says nothing about the rest.
        if changed, bytes == 0 || enough {
            if enough {
                logger.notice("storage: free space is back above --min-free-space; new messages are accepted again")
            } else {
                logger.warning("storage: free space (\(free / 1024) KiB) is under --min-free-space (\(reserve / 1024) KiB); refusing new messages, attachments, accounts and prekeys until mailboxes drain or space is added")
            }
        }
        return enough
    }

    /// Notes a fault met by a request and logs it (one line per kind per `logInterval`).
    func record(_ fault: StorageFault, logger: Logger) {
        let now = NIODeadline.now()
        let skipped: Int? = state.withLockedValue { state in
            state.lastFault = (fault, now)
            if let last = state.lastLine[fault], now < last + Self.logInterval {
                state.unlogged[fault, default: 0] += 1
                return nil
            }
            state.lastLine[fault] = now
            return state.unlogged.removeValue(forKey: fault) ?? 0
        }
        guard let skipped else { return }
        logger.error("\(fault.logLine)\(skipped > 0 ? " (and \(skipped) more since the last such line)" : "")")
    }

    /// The fault met within `faultMemory`, if any.
    func recentFault() -> StorageFault? {
        let now = NIODeadline.now()
        guard let last = state.withLockedValue({ $0.lastFault }), now < last.at + Self.faultMemory else { return nil }
        return last.fault
    }
}

extension SQLiteRelayStorage {
    /// Pages of the write-ahead log between automatic checkpoints, and the size it is cut back to after
    /// one. SQLite's default (1000 pages, never cut back) lets the log alone take 4 MiB and keep it; on a
    /// nearly full disk that is space the drain needs.
    static let checkpointPages = 256

    static func boundWriteAheadLog(_ db: Database) throws {
        try db.execute(sql: "PRAGMA wal_autocheckpoint = \(checkpointPages); PRAGMA journal_size_limit = \(checkpointPages * 4096)")
    }

    /// The database's free pages (left by deleted messages), which new rows fill before the file grows.
    public func reusableBytes() async throws -> UInt64 {
        try await database.read { db in
            let free = try Int.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
            let pageSize = try Int.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
            return UInt64(max(0, free)) * UInt64(max(0, pageSize))
        }
    }
}
