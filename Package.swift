// swift-tools-version:6.0
import PackageDescription

// Layers, dependencies flowing one way:
//   CSodium (libsodium) → ParleyCrypto → ParleyProtocol → (store, relay client, engine, front ends)
let package = Package(
    name: "Parley",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "parley", targets: ["parley"]),
        .executable(name: "parley-bench", targets: ["ParleyBench"]),
        .executable(name: "parley-interop-peer", targets: ["ParleyInteropPeer"]),
        .library(name: "ParleyProtocol", targets: ["ParleyProtocol"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-crypto.git", exact: "4.5.2"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", exact: "1.8.2"),
        .package(url: "https://github.com/groue/GRDB.swift.git", exact: "7.10.0"),
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
        .target(
            name: "ParleyStore",
            dependencies: ["ParleyProtocol", "ParleyCrypto", .product(name: "GRDB", package: "GRDB.swift")]
        ),
        .executableTarget(
            name: "parley",
            dependencies: ["ParleyProtocol", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "ParleyBench", dependencies: ["ParleyProtocol", "ParleyCrypto", "CSodium"]),
        .executableTarget(name: "ParleyInteropPeer", dependencies: ["ParleyProtocol", "ParleyCrypto"]),
        .testTarget(name: "ParleyCryptoTests", dependencies: ["ParleyCrypto"]),
        .testTarget(name: "ParleyProtocolTests", dependencies: ["ParleyProtocol"]),
        .testTarget(name: "ParleyStoreTests", dependencies: ["ParleyStore"]),
    ],
    swiftLanguageModes: [.v6]
)
