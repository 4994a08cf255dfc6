import Foundation
import NIOCore
import NIOPosix
import NIOSSL

/// Checks made before the relay touches its data directory, so that a start refused for a bad certificate
/// or a port in use leaves nothing behind.
extension RelayServer {
    /// The TLS configuration from --tls-cert and --tls-key, nil without them; the pair is tried together
    /// (a key that does not match its certificate is refused here, not at the first connection).
    static func loadTLS(_ configuration: RelayConfiguration) throws(RelayStartError) -> TLSConfiguration? {
        guard let certificate = configuration.tlsCertificatePath, let key = configuration.tlsKeyPath else { return nil }
        let chain: [NIOSSLCertificate], privateKey: NIOSSLPrivateKey
        do { chain = try NIOSSLCertificate.fromPEMFile(certificate) } catch {
            throw .tls(certificate, "not a readable PEM certificate chain (\(error))")
        }
        do { privateKey = try NIOSSLPrivateKey(file: key, format: .pem) } catch {
            throw .tls(key, "not a readable PEM private key (\(error))")
        }
        let tls = TLSConfiguration.makeServerConfiguration(certificateChain: chain.map { .certificate($0) }, privateKey: .privateKey(privateKey))
        do { _ = try NIOSSLContext(configuration: tls) } catch {
            throw .tls(certificate, "the certificate and key cannot be used together (\(error))")
        }
        return tls
    }

    /// Binds the listen address once and lets it go: a port in use or a name that does not resolve is then
    /// reported before anything is created. (The real bind follows a moment later; should the port be taken
    /// in between, `run` still removes what the start created.) Port 0 picks a free port: nothing to check.
    static func checkListenAddress(_ configuration: RelayConfiguration) async throws {
        guard configuration.port != 0 else { return }
        try await mappingListenErrors(configuration) {
            let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .bind(host: configuration.host, port: configuration.port).get()
            try await channel.close()
        }
    }

    /// Socket errors from binding, as the one line parley-relay prints.
    static func mappingListenErrors(_ configuration: RelayConfiguration, _ body: () async throws -> Void) async throws {
        let address = "\(configuration.host):\(configuration.port)"
        do {
            try await body()
        } catch let error as IOError {
            throw RelayStartError.listen(address, String(cString: strerror(error.errnoCode)))
        } catch let error as SocketAddressError {
            throw RelayStartError.listen(address, "the address cannot be resolved (\(error))")
        }
    }
}
