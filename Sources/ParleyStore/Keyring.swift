import ParleyCrypto

/// How a person or a bot unlocks a store.
public enum UnlockMethod: Sendable {
    case passphrase(SecretBytes)
    case keyFile(path: String)

    var kind: String {
        switch self {
        case .passphrase: "passphrase"
        case .keyFile: "keyfile"
        }
    }
}

/// One wrapping of the master key, stored in the clear in the `keyring` table. Changing the passphrase
/// rewrites this row only; no data is re-encrypted.
struct KeyringEntry: Sendable {
    let kind: String
    let salt: [UInt8]
    let parameters: Argon2id.Parameters
    let wrapped: [UInt8]

    private static func associatedData(kind: String, salt: [UInt8]) -> [UInt8] {
        Array("parley.store.keyring.v1".utf8) + [0] + Array(kind.utf8) + [0] + salt
    }

    /// The key-encryption key for `method`: Argon2id for a passphrase, HKDF over a key file's secret.
    private static func keyEncryptionKey(_ method: UnlockMethod, salt: [UInt8], parameters: Argon2id.Parameters) throws(StoreError) -> SecretBytes {
        switch method {
        case .passphrase(let passphrase):
            do { return try Argon2id.deriveKey(password: passphrase, salt: salt, parameters: parameters) } catch {
                throw .io("Argon2id failed (not enough memory for \(parameters.memLimitBytes >> 20) MiB?)")
            }
        case .keyFile(let path):
            return HKDFSHA256.deriveKey(inputKeyMaterial: try KeyFile.read(at: path), salt: salt,
                                        info: Array("parley.store.keyfile.v1".utf8), length: 32)
        }
    }

    static func wrap(_ masterKey: SecretBytes, with method: UnlockMethod, parameters: Argon2id.Parameters) throws(StoreError) -> KeyringEntry {
        let salt = SystemRandom().bytes(Argon2id.saltLength)
        let kek = try keyEncryptionKey(method, salt: salt, parameters: parameters)
        let nonce = SystemRandom().bytes(XChaCha20Poly1305.nonceLength)
        var plain = masterKey.unprotectedBytes
        defer { wipe(&plain) }
        let sealed = try! XChaCha20Poly1305.seal(plain, associatedData: associatedData(kind: method.kind, salt: salt), nonce: nonce, key: kek)
        return KeyringEntry(kind: method.kind, salt: salt, parameters: parameters, wrapped: nonce + sealed)
    }

    func unwrap(with method: UnlockMethod) throws(StoreError) -> SecretBytes {
        let kek = try Self.keyEncryptionKey(method, salt: salt, parameters: parameters)
        guard wrapped.count > XChaCha20Poly1305.nonceLength else { throw .corrupt(path: "keyring", detail: "wrapped key too short") }
        let nonce = Array(wrapped[..<XChaCha20Poly1305.nonceLength])
        do {
            var key = try XChaCha20Poly1305.open(Array(wrapped[XChaCha20Poly1305.nonceLength...]),
                                                 associatedData: Self.associatedData(kind: kind, salt: salt), nonce: nonce, key: kek)
            defer { wipe(&key) }
            return SecretBytes(key)
        } catch {
            switch method {
            case .passphrase: throw .wrongPassphrase
            case .keyFile(let path): throw .wrongKeyFile(path: path)
            }
        }
    }
}
