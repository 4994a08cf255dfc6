// swift-tools-version:6.1
import PackageDescription

// Layers, dependencies flowing one way:
//   CSodium (libsodium) → ParleyCrypto → ParleyProtocol → (store, relay client, engine, front ends)
let package = Package(
    name: "Parley",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "parley", targets: ["parley"]),
        .executable(name: "parley-relay", targets: ["parley-relay"]),
        .executable(name: "parley-bench", targets: ["ParleyBench"]),
        .executable(name: "parley-interop-peer", targets: ["ParleyInteropPeer"]),
        .executable(name: "parley-crash-harness", targets: ["ParleyCrashHarness"]),
        .executable(name: "parley-qr", targets: ["ParleyQRTool"]),
        .executable(name: "parley-tui-bench", targets: ["ParleyTUIBench"]),
        .library(name: "ParleyProtocol", targets: ["ParleyProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
        // Default traits off: with them the two -D flags swap order between builds and Hummingbird
        // recompiles for nothing (see shared/reference/BUILD-NOTES.md).
        .package(url: "https://github.com/hummingbird-project/hummingbird.git", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/hummingbird-websocket.git", exact: "2.8.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/async-http-client.git", exact: "1.37.0"),
        .package(url: "https://github.com/apple/swift-log.git", exact: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio.git", exact: "2.101.3"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", exact: "2.37.6"),
        // The relay's Prometheus metrics (`parley-relay serve --metrics`).
        .package(url: "https://github.com/apple/swift-metrics.git", exact: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", exact: "2.4.1"),
        // PostgreSQL for relays that share one database (`parley-relay serve --database`).
        .package(url: "https://github.com/vapor/postgres-nio.git", exact: "1.33.2"),
    ],
    targets: [
        .systemLibrary(
            name: "CSodium",
            pkgConfig: "libsodium",
            providers: [.apt(["libsodium-dev"])]
        ),
        .target(
            name: "ParleyCrypto",
            dependencies: ["CSodium", .product(name: "Crypto", package: "swift-crypto")]
        ),
        .target(name: "ParleyProtocol", dependencies: ["ParleyCrypto"]),
        // MLS (RFC 9420) for group chats (issue #21): HPKE and AES-GCM from swift-crypto, the rest via ParleyCrypto.
        .target(name: "ParleyMLS", dependencies: ["ParleyCrypto", .product(name: "Crypto", package: "swift-crypto")]),
        // QR codes for the terminal (safety numbers): libqrencode, as Profanity uses it.
        .systemLibrary(
            name: "CQRencode",
            pkgConfig: "libqrencode",
            providers: [.apt(["libqrencode-dev"])]
        ),
        .target(name: "ParleyQR", dependencies: ["CQRencode"]),
        // Test tool: renders a hex payload for Tests/interop/test_qr_decode.py.
        .executableTarget(name: "ParleyQRTool", dependencies: ["ParleyQR"]),
        // The durability rules (which commits wait for the disk) of both SQLite files: store and relay.
        .target(name: "ParleySQLite", dependencies: [.product(name: "GRDB", package: "GRDB.swift")]),
        .target(
            name: "ParleyStore",
            dependencies: ["ParleyProtocol", "ParleyCrypto", "ParleySQLite", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // Wire types of the relay's HTTP API, shared by the relay and its clients (no server code).
        .target(name: "ParleyRelayAPI", dependencies: ["ParleyProtocol"]),
        .target(
            name: "ParleyRelay",
            dependencies: [
                "ParleyRelayAPI", "ParleyProtocol", "ParleyCrypto", "ParleySQLite", "CHeap",
                .product(name: "GRDB", package: "GRDB.swift"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "HummingbirdWebSocket", package: "hummingbird-websocket"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        .executableTarget(
            name: "parley-relay",
            dependencies: [
                "ParleyRelay", "ParleyRelayAPI", .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
            ]
        ),
        .target(
            name: "ParleyClient",
            dependencies: [
                "ParleyRelayAPI", "ParleyStore", "ParleyProtocol", "ParleyCrypto", "ParleyMLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
            ]
        ),
        // Every user-visible operation once, with typed inputs, results and errors; the front ends adapt it.
        .target(name: "ParleyOperations", dependencies: ["ParleyClient", "ParleyStore", "ParleyProtocol", "ParleyRelayAPI", "ParleyCrypto"]),
        // Headless mode: JSON-RPC 2.0 over stdio and a Unix socket for bots (`parley daemon`).
        .target(name: "ParleyHeadless", dependencies: ["ParleyOperations", "CHeap", "ParleyClient", "ParleyStore", "ParleyProtocol", "ParleyRelayAPI", "ParleyCrypto",
                                                       // The daemon's HTTP endpoint (`parley daemon --http`).
                                                       .product(name: "NIOCore", package: "swift-nio"),
                                                       .product(name: "NIOPosix", package: "swift-nio"),
                                                       .product(name: "NIOHTTP1", package: "swift-nio")]),
        // The curses front end (issue #7): pure state, editing, widths, themes and commands, plus a thin
        // ncursesw layer. See BUILD-NOTES.md for why the module does not use pkg-config.
        .systemLibrary(name: "CNcurses", providers: [.apt(["libncurses-dev"])]),
        // malloc_trim for the long-running front ends (the chat window, the daemon).
        .target(name: "CHeap"),
        .target(
            name: "ParleyTUI",
            dependencies: ["ParleyOperations", "CNcurses", "CHeap", "ParleyClient", "ParleyStore", "ParleyProtocol", "ParleyQR", "ParleyRelayAPI"]
        ),
        .executableTarget(
            name: "parley",
            dependencies: [
                "ParleyOperations", "ParleyClient", "ParleyHeadless", "ParleyStore", "ParleyProtocol", "ParleyRelayAPI", "ParleyQR", "ParleyTUI", "ParleyRelay",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
        .executableTarget(
            name: "ParleyBench",
            dependencies: ["ParleyProtocol", "ParleyCrypto", "ParleyStore", "CSodium", "ParleyClient", "ParleyRelay", "ParleyRelayAPI",
                           "ParleyMLS",
                           // The private PostgreSQL cluster of the tests, for `--only relay-postgres`.
                           "ParleyTestSupport",
                           // dbstat over the relay's SQLite file, for the bytes a group message stores (`--only groups`).
                           .product(name: "GRDB", package: "GRDB.swift")]
        ),
        // First paint and scrolling of the chat window over a 100k-message conversation, and its RSS.
        .executableTarget(name: "ParleyTUIBench", dependencies: ["ParleyTUI", "ParleyStore", "ParleyProtocol"]),
        .executableTarget(name: "ParleyInteropPeer", dependencies: ["ParleyProtocol", "ParleyCrypto"]),
        .executableTarget(name: "ParleyCrashHarness", dependencies: ["ParleyStore", "ParleyProtocol", "ParleyCrypto", "ParleyMLS"]),
        .testTarget(name: "ParleyCryptoTests", dependencies: ["ParleyCrypto"]),
        .testTarget(name: "ParleyProtocolTests", dependencies: ["ParleyProtocol", "ParleyTestSupport"]),
        .testTarget(name: "ParleyMLSTests", dependencies: ["ParleyMLS"]),
        .testTarget(name: "ParleyQRTests", dependencies: ["ParleyQR"]),
        .testTarget(name: "ParleyHeadlessTests", dependencies: ["ParleyHeadless", "ParleyClient", "ParleyStore", "ParleyProtocol", "ParleyCrypto", "ParleyTestSupport"]),
        // Golden screens are read from the source tree (#filePath), not bundled as resources.
        .testTarget(name: "ParleyTUITests", dependencies: ["ParleyTUI", "ParleyStore", "ParleyProtocol", "ParleyOperations"], exclude: ["Golden"]),
        .testTarget(name: "ParleyStoreTests", dependencies: ["ParleyStore", "ParleyTestSupport", .product(name: "GRDB", package: "GRDB.swift")]),
        .testTarget(
            name: "ParleyRelayTests",
            dependencies: [
                "ParleyRelay", "ParleyClient", "ParleyStore", "ParleyProtocol", "ParleyRelayAPI", "ParleyCrypto",
                "ParleyOperations", "ParleyTestSupport",
                // An HTTP client independent of the one under test, for hostile and malformed requests.
                .product(name: "AsyncHTTPClient", package: "async-http-client"),
                // EmbeddedChannel and its manual clock, for the relay client's timers.
                .product(name: "NIOEmbedded", package: "swift-nio"),
                // To take every reader of the relay storage's pool (RelayReaderPoolTests).
                .product(name: "GRDB", package: "GRDB.swift"),
                // To hold a row lock in PostgreSQL as a send in flight does (WakeRoutingTests).
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ]
        ),
        // Fixtures shared by the test targets (clocks, temporary directories, a prekey directory, a private
        // PostgreSQL cluster, which parley-bench starts too) and the in-process relay: the relay core on an
        // in-memory database behind a RelayTransport.
        .target(
            name: "ParleyTestSupport",
            dependencies: ["ParleyClient", "ParleyRelay", "ParleyRelayAPI", "ParleyStore", "ParleyProtocol", "ParleyCrypto"],
            path: "Tests/ParleyTestSupport"
        ),
        // The engine's drain, batching, outbox and multi-device logic against in-process relays.
        .testTarget(name: "ParleyClientTests", dependencies: ["ParleyTestSupport", "ParleyClient", "ParleyRelay", "ParleyRelayAPI", "ParleyStore", "ParleyProtocol", "ParleyCrypto"]),
    ],
    swiftLanguageModes: [.v6]
)

// Executables link with lld and packed relative relocations (RELR, glibc ≥ 2.36). A position-independent
// `parley` carries ~140,000 relative relocations: as RELA entries that is 3.4 MB the loader reads, and keeps
// resident, at every start; as RELR it is 28 KB. Measured on the chat window over a 100k-message history:
// about 3 MB less resident memory, and the link itself is faster than with gold. Still a PIE (ASLR kept).
// Fuzz targets (issue #19), only when PARLEY_FUZZ=1 (`make fuzz`, `make test-fuzz-decoders`), built in their own scratch
// path: the ordinary `swift build` never sees them and pays nothing. Parley's own modules are compiled with
// libFuzzer's coverage instrumentation and AddressSanitizer; the dependencies are not (they are not what is
// fuzzed, and instrumenting them would only make the build slower). See the Makefile for why the fuzz
// executable has a `@main` that calls LLVMFuzzerRunDriver.
if Context.environment["PARLEY_FUZZ"] == "1" {
    let sanitize: [String] = ["-sanitize=fuzzer,address"]
    for target in package.targets where target.type == .regular || target.type == .executable {
        target.swiftSettings = (target.swiftSettings ?? []) + [.unsafeFlags(sanitize)]
    }
    package.targets += [
        .target(name: "CFuzzerDriver", path: "Sources/Fuzz/CFuzzerDriver"),
        .executableTarget(
            name: "ParleyFuzz",
            dependencies: [
                "CFuzzerDriver", "ParleyProtocol", "ParleyCrypto", "ParleyRelayAPI", "ParleyHeadless", "ParleyTUI", "ParleyStore",
                "ParleyMLS",
            ],
            path: "Sources/Fuzz/ParleyFuzz",
            swiftSettings: [.unsafeFlags(sanitize)],
            linkerSettings: [.unsafeFlags(sanitize)]
        ),
    ]
    package.products.append(.executable(name: "parley-fuzz", targets: ["ParleyFuzz"]))
}

for target in package.targets where target.type == .executable {
    target.linkerSettings = (target.linkerSettings ?? []) + [
        .unsafeFlags(["-use-ld=lld", "-Xlinker", "-z", "-Xlinker", "pack-relative-relocs"])
    ]
}
