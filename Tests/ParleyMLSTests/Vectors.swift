import Foundation
import ParleyCrypto
import ParleyMLS
import Testing

/// The IETF interop vectors (mlswg/mls-implementations), read in place from `../shared/vectors/mls`
/// beside the repository: they are not ours to copy into it.
enum MLSVectors {
    /// `shared/vectors/mls` beside the repository root (`/work/main` → `/work/shared`), or beside one of its
    /// ancestors, for a git worktree kept one level deeper (`/work/wt/x` → `/work/shared`).
    static let directory: URL = {
        // Tests/ParleyMLSTests/Vectors.swift → the repository root.
        var dir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        while dir.pathComponents.count > 1 {
            dir = dir.deletingLastPathComponent()
            let candidate = dir.appendingPathComponent("shared/vectors/mls")
            if FileManager.default.fileExists(atPath: candidate.appendingPathComponent("PROVENANCE.txt").path) { return candidate }
        }
        return URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/vectors/mls")
    }()

    /// The top-level array of a vector file.
    static func load(_ name: String) throws -> [[String: Any]] {
        let data = try Data(contentsOf: directory.appendingPathComponent("\(name).json"))
        guard let cases = try JSONSerialization.jsonObject(with: data) as? [[String: Any]] else {
            throw VectorError.malformed("\(name).json is not an array of objects")
        }
        return cases
    }

    /// The cases of a file for suites 1 and 3, each with its suite. Prints how many cases of other suites were
    /// left out and records a failure if none is left: a file that silently tests nothing is a defect.
    static func supportedCases(_ name: String) throws -> [(CipherSuite, [String: Any])] {
        let all = try load(name)
        var chosen: [(CipherSuite, [String: Any])] = []
        var skipped: [Int: Int] = [:]
        for item in all {
            let id = (item["cipher_suite"] as? Int) ?? -1
            if let suite = try? CipherSuite(id: UInt16(clamping: id)), id >= 0 {
                chosen.append((suite, item))
            } else {
                skipped[id, default: 0] += 1
            }
        }
        let detail = skipped.sorted { $0.key < $1.key }.map { "suite \($0.key): \($0.value)" }.joined(separator: ", ")
        print("\(name).json: \(chosen.count) vectors for suites 1 and 3; skipped \(skipped.values.reduce(0, +)) of other suites (not implemented)\(detail.isEmpty ? "" : " [\(detail)]")")
        #expect(!chosen.isEmpty, "\(name).json yielded no vector for suite 1 or 3")
        return chosen
    }
}

enum VectorError: Error { case malformed(String) }

extension Dictionary where Key == String, Value == Any {
    func hex(_ key: String) throws -> [UInt8] {
        guard let text = self[key] as? String, let bytes = Hex.decode(text) else { throw VectorError.malformed("field \(key)") }
        return bytes
    }

    func secret(_ key: String) throws -> SecretBytes { SecretBytes(try hex(key)) }

    func string(_ key: String) throws -> String {
        guard let text = self[key] as? String else { throw VectorError.malformed("field \(key)") }
        return text
    }

    func int(_ key: String) throws -> Int {
        guard let value = self[key] as? Int else { throw VectorError.malformed("field \(key)") }
        return value
    }

    func object(_ key: String) throws -> [String: Any] {
        guard let value = self[key] as? [String: Any] else { throw VectorError.malformed("field \(key)") }
        return value
    }

    func array(_ key: String) throws -> [[String: Any]] {
        guard let value = self[key] as? [[String: Any]] else { throw VectorError.malformed("field \(key)") }
        return value
    }
}

func hexString(_ bytes: [UInt8]) -> String { Hex.encode(bytes) }
func hexString(_ secret: SecretBytes) -> String { Hex.encode(secret.unprotectedBytes) }
