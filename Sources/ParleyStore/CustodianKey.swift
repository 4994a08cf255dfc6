import Foundation
import ParleyCrypto
import ParleyProtocol
#if canImport(Glibc)
import Glibc
#endif

/// An organisation's custodian key pair (X25519) for backups that the custodian, not the user's passphrase,
/// opens. Each file is one line, a label and 64 hex digits, so a private key is never mistaken for a public
/// one (sealing to the wrong half would make a backup nobody can open):
///
///     parley-custodian-public-key 3b6a27bc…   (mode 0644)
///     parley-custodian-private-key 8f2c…      (mode 0600, refused when others can read it)
public enum CustodianKey {
    static let publicLabel = "parley-custodian-public-key"
    static let privateLabel = "parley-custodian-private-key"

    /// Writes a new pair; neither file may exist yet. Returns the public key.
    @discardableResult
    public static func generate(privateKeyFile: String, publicKeyFile: String) throws(StoreError) -> X25519.PublicKey {
        let pair = X25519.KeyPair()
        var text = Array("\(privateLabel) \(Hex.encode(pair.privateKey.unprotectedBytes))\n".utf8)
        defer { wipe(&text) }
        if let code = NewFile.create(at: privateKeyFile, holding: text) {
            throw .io("cannot write \(privateKeyFile): \(String(cString: strerror(code)))")
        }
        if let code = NewFile.create(at: publicKeyFile, holding: Array("\(publicLabel) \(Hex.encode(pair.publicKey.bytes))\n".utf8)) {
            unlink(privateKeyFile)
            throw .io("cannot write \(publicKeyFile): \(String(cString: strerror(code)))")
        }
        chmod(publicKeyFile, 0o644)
        return pair.publicKey
    }

    public static func readPublic(_ path: String) throws(StoreError) -> X25519.PublicKey {
        var bytes = try line(path, publicLabel)
        defer { wipe(&bytes) }
        guard let key = try? X25519.PublicKey(bytes) else { throw .keyFileUnreadable(path: path, reason: "not a custodian public key") }
        return key
    }

    public static func readPrivate(_ path: String) throws(StoreError) -> X25519.KeyPair {
        var info = stat()
        guard stat(path, &info) == 0 else { throw .keyFileUnreadable(path: path, reason: String(cString: strerror(errno))) }
        guard info.st_mode & 0o077 == 0 else { throw .keyFileTooOpen(path: path, mode: String(info.st_mode & 0o777, radix: 8)) }
        var bytes = try line(path, privateLabel)
        defer { wipe(&bytes) }
        guard let pair = try? X25519.KeyPair(privateKey: SecretBytes(bytes)) else {
            throw .keyFileUnreadable(path: path, reason: "not a custodian private key")
        }
        return pair
    }

    /// The 32 bytes after `label` on the file's one line.
    private static func line(_ path: String, _ label: String) throws(StoreError) -> [UInt8] {
        guard var data = FileManager.default.contents(atPath: path) else {
            throw .keyFileUnreadable(path: path, reason: "cannot read it")
        }
        defer { data.resetBytes(in: 0..<data.count) }
        guard data.count <= 256 else { throw .keyFileUnreadable(path: path, reason: "too long for a custodian key file") }
        var text = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        defer { text = "" }
        let other = label == publicLabel ? privateLabel : publicLabel
        if text.hasPrefix(other + " ") {
            throw .keyFileUnreadable(path: path, reason: label == publicLabel
                ? "this is a custodian's private key, where the public key belongs"
                : "this is a custodian's public key, where the private key belongs")
        }
        guard text.hasPrefix(label + " "), let bytes = Hex.decode(String(text.dropFirst(label.count + 1))), bytes.count == 32 else {
            throw .keyFileUnreadable(path: path, reason: "expected one line: \(label) and 64 hex digits")
        }
        return bytes
    }
}
