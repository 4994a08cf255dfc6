import ParleyCrypto
@testable import ParleyMLS
import Testing

/// passive-client-welcome.json, passive-client-handling-commit.json and passive-client-random.json: a
/// client joins from a Welcome, then processes each epoch's proposals and commit, and must arrive at the
/// same epoch authenticator as the implementation that made the vectors.
@Suite struct PassiveClientTests {
    struct Outcome {
        var cases = 0
        var epochs = 0
        var failures: [String] = []
    }

    static func run(_ file: String) throws -> Outcome {
        var outcome = Outcome()
        for (index, (suite, v)) in try MLSVectors.supportedCases(file).enumerated() {
            do {
                outcome.epochs += try runCase(suite, v)
                outcome.cases += 1
            } catch {
                outcome.failures.append("case \(index) (suite \(suite.id)): \(error)")
            }
        }
        print("\(file).json: \(outcome.cases) cases, \(outcome.epochs) epochs passed; \(outcome.failures.count) failed")
        for failure in outcome.failures.prefix(10) { print("  \(failure)") }
        return outcome
    }

    static func runCase(_ suite: CipherSuite, _ v: [String: Any]) throws -> Int {
        guard case .keyPackage(let keyPackage) = try MLSMessage(tlsEncoded: try v.hex("key_package")).body,
              case .welcome(let welcome) = try MLSMessage(tlsEncoded: try v.hex("welcome")).body else {
            throw VectorError.malformed("key_package / welcome")
        }
        var psks: [[UInt8]: SecretBytes] = [:]
        for p in try v.array("external_psks") { psks[try p.hex("psk_id")] = try p.secret("psk") }
        let tree: RatchetTree? = try (v["ratchet_tree"] as? String).map { _ in try RatchetTree(suite: suite, encoded: try v.hex("ratchet_tree")) }
        var group = try Group.join(welcome: welcome, keyPackage: keyPackage, initPrivateKey: try v.secret("init_priv"),
                                   encryptionPrivateKey: try v.secret("encryption_priv"), ratchetTree: tree, externalPSKs: psks)
        #expect(hexString(group.epochAuthenticator) == (try v.string("initial_epoch_authenticator")))
        var epochs = 0
        for (n, epoch) in try v.array("epochs").enumerated() {
            for proposal in (epoch["proposals"] as? [String]) ?? [] {
                _ = try group.process(try MLSMessage(tlsEncoded: Hex.decode(proposal) ?? []))
            }
            let result = try group.process(try MLSMessage(tlsEncoded: try epoch.hex("commit")))
            guard case .commit = result else { throw VectorError.malformed("epoch \(n): \(result)") }
            guard hexString(group.epochAuthenticator) == (try epoch.string("epoch_authenticator")) else {
                throw VectorError.malformed("epoch \(n): epoch authenticator differs")
            }
            epochs += 1
        }
        return epochs
    }

    @Test func welcome() throws {
        let outcome = try Self.run("passive-client-welcome")
        #expect(outcome.failures.isEmpty)
    }

    @Test func handlingCommit() throws {
        let outcome = try Self.run("passive-client-handling-commit")
        #expect(outcome.failures.isEmpty)
    }

    @Test func random() throws {
        let outcome = try Self.run("passive-client-random")
        #expect(outcome.failures.isEmpty)
    }
}
