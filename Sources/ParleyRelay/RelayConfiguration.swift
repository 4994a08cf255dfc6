/// Everything `parley-relay serve` can set; tests build one directly.
public struct RelayConfiguration: Sendable {
    /// The relay's own name, the `HOST[:PORT]` part of every account address it serves.
    public var name: String
    public var host: String
    public var port: Int
    public var dataDirectory: String
    public var tlsCertificatePath: String?
    public var tlsKeyPath: String?
    /// A PostgreSQL database shared with other relay nodes (`--database postgresql://…`); nil: the SQLite
    /// file in `dataDirectory`. Attachments stay files in `dataDirectory` either way: nodes that share a
    /// database share that directory too (see parley-relay(8)).
    public var database: String?
    /// How long queued messages and attachments are kept (default 30 days).
    public var messageTTL: UInt64 = 30 * 86_400_000
    public var attachmentTTL: UInt64 = 30 * 86_400_000
    /// How long a provisioning slot waits for the existing device (linking a new one).
    public var provisioningTTL: UInt64 = 15 * 60_000
    /// The largest sealed provisioning message (history travels as an attachment, not in it).
    public var maxProvisioningBytes = 64 * 1024
    /// Largest accepted envelope (bytes) and queued messages per device.
    public var maxEnvelopeBytes = 96 * 1024
    public var maxMailboxMessages = 10_000
    public var maxAttachmentBytes = 100 * 1024 * 1024
    /// Attachment slots and bytes one account may ask for per day (counted apart from the blobs).
    public var attachmentQuota = AttachmentQuota(bytes: 4 << 30, slots: 2000)
    /// Largest request body: one envelope for each of up to `maxDevices` devices, plus JSON overhead.
    public var maxDevices = 16
    /// A send may carry several messages to one account (each device then appears once per message, in
    /// order); at most this many.
    public var maxMessagesPerSend = 64
    public var maxRequestBytes: Int { maxDevices * maxEnvelopeBytes * 2 + 64 * 1024 }
    /// Leaky-bucket limits: requests per second and burst, per client IP and per account.
    public var ipRate = RateLimit(perSecond: 200, burst: 400)
    public var accountRate = RateLimit(perSecond: 100, burst: 200)
    /// Messages per recipient account that arrive sealed without its delivery access key and without a
    /// sender's token (PROTOCOL.md §13.1): first contact from another relay, or anyone at all. Small, so a
    /// stranger cannot fill a mailbox; zero refuses them (401).
    public var strangerRate = RateLimit(perSecond: 10.0 / 60, burst: 20)
    /// Open connections per client IP address (nil: no cap), how long a new connection may take to send
    /// its first request head, and how long an HTTP connection may sit idle between requests (push
    /// connections are kept alive by the relay's pings instead).
    public var maxConnectionsPerAddress: Int? = 256
    /// Proxies (HAProxy in front of several nodes) whose requests are counted against the client address
    /// they add last to `X-Forwarded-For`, for the per-IP request and bundle limits; from anyone else the
    /// header is ignored. Connections are still counted per connecting address (the proxy's).
    public var trustedProxies: Set<String> = []
    /// Open connections in all (nil: no cap); parley-relay sets it below its open-file limit
    /// (`DescriptorBudget`), so that connections cannot take the descriptors the process itself needs.
    public var maxConnections: Int?
    /// Free space kept in the data directory's file system for draining (see `StorageSpace`): 64 MiB by
    /// default, room for many thousands of acknowledgements and sign-ins, the database's write-ahead log
    /// between checkpoints (1 MiB) and SQLite's temporary files, with a margin for a disk shared with logs.
    public var minFreeSpaceBytes: UInt64 = 64 << 20
    public var requestHeadSeconds: Int64 = 30
    public var idleSeconds: Int64 = 120
    /// A device whose one-time prekeys fall below this is told to refill.
    public var preKeyLowWatermark = 10
    /// Prekey bundle fetches (unauthenticated; each takes a one-time prekey) per target device and per
    /// client IP: a stranger drains a device's stock no faster than the owner, woken, refills it.
    public var bundleRatePerDevice = RateLimit(perSecond: 1.0 / 30, burst: 20)
    public var bundleRatePerIP = RateLimit(perSecond: 2, burst: 120)
    /// Every rate limit off (`--no-rate-limit`, benchmarks): per IP, per account, for strangers and for
    /// bundle fetches.
    public mutating func removeRateLimits() {
        ipRate = .unlimited
        accountRate = .unlimited
        strangerRate = .unlimited
        bundleRatePerDevice = .unlimited
        bundleRatePerIP = .unlimited
    }

    /// One-time prekeys of each kind a device may hold; an upload that would pass it is refused.
    public var maxStoredOneTimePreKeys = 1000
    /// KeyPackages (MLS, PROTOCOL.md §17.1): the bytes of one, how many a device may hold, and below how many
    /// it is told to refill.
    public var maxKeyPackageBytes = 16 * 1024
    public var maxStoredKeyPackages = 200
    public var keyPackageLowWatermark = 10
    /// Recipient devices of one group message or commit (PROTOCOL.md §17.2).
    public var maxGroupRecipients = 2000
    /// The bytes of the GroupInfo a commit leaves for rejoining members (PROTOCOL.md §17.9): it carries the
    /// ratchet tree, about 300 bytes a leaf, so this holds a group of `maxGroupRecipients` devices.
    public var maxGroupInfoBytes = 1024 * 1024
    /// Largest commit, and largest Welcome a commit carries (PROTOCOL.md §17.2). Both grow with the group
    /// (a Welcome holds the whole ratchet tree, about 185 bytes a device; a commit adding many devices holds
    /// their KeyPackages), so they have a cap of their own, sized for `maxGroupRecipients`: under the 96 KiB
    /// envelope cap a group of some 500 devices could add nobody. Application messages keep that cap.
    public var maxGroupHandshakeBytes = 2 << 20
    public var challengeLifetime: UInt64 = 60_000
    public var tokenLifetime: UInt64 = 30 * 86_400_000

    public init(name: String, host: String, port: Int, dataDirectory: String) {
        self.name = name
        self.host = host
        self.port = port
        self.dataDirectory = dataDirectory
    }
}

public struct RateLimit: Sendable, Equatable {
    public var perSecond: Double
    public var burst: Double
    public init(perSecond: Double, burst: Double) {
        self.perSecond = perSecond
        self.burst = burst
    }
    /// No limit (benchmarks on loopback).
    public static let unlimited = RateLimit(perSecond: .infinity, burst: .infinity)
}

/// How much one account may upload per day: bytes of slots asked for, and slots.
public struct AttachmentQuota: Sendable, Equatable {
    public var bytes: Int
    public var slots: Int
    public init(bytes: Int, slots: Int) {
        self.bytes = bytes
        self.slots = slots
    }
    /// The length of a quota period (one day, in milliseconds).
    public static let period: UInt64 = 86_400_000
}
