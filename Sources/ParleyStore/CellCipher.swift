import ParleyCrypto

/// Encrypts and decrypts single cells. Every cell is `0x01 ‖ nonce(24) ‖ XChaCha20-Poly1305 ciphertext`
/// under the cell key, with associated data `"parley.store.cell.v1" ‖ 0 ‖ table ‖ 0 ‖ column ‖ 0 ‖ row`,
/// so a cell copied to another row, column or table fails authentication. Lookup columns are keyed
/// BLAKE2b hashes under a separate key, never plaintext.
struct CellCipher: Sendable {
    private let cellKey: SecretBytes
    private let lookupKey: SecretBytes

    static let version: UInt8 = 0x01
    private static let cellLabel = Array("parley.store.cell.v1".utf8)

    init(masterKey: SecretBytes) {
        cellKey = HKDFSHA256.deriveKey(inputKeyMaterial: masterKey, salt: [], info: Array("parley.store.cells.v1".utf8), length: 32)
        lookupKey = HKDFSHA256.deriveKey(inputKeyMaterial: masterKey, salt: [], info: Array("parley.store.lookup.v1".utf8), length: 32)
    }

    /// A row identity as it enters the associated data: an integer id or a lookup hash.
    enum Row: CustomStringConvertible {
        case id(Int64)
        case key([UInt8])
        var bytes: [UInt8] {
            switch self {
            case .id(let v): withUnsafeBytes(of: v.bigEndian) { Array($0) }
            case .key(let k): k
            }
        }
        var description: String {
            switch self {
            case .id(let v): "\(v)"
            case .key(let k): k.prefix(6).map { String($0, radix: 16) }.joined() + "…"
            }
        }
    }

    private func associatedData(_ table: String, _ column: String, _ row: Row) -> [UInt8] {
        Self.cellLabel + [0] + Array(table.utf8) + [0] + Array(column.utf8) + [0] + row.bytes
    }

    func seal(_ plaintext: [UInt8], table: String, column: String, row: Row) -> [UInt8] {
        let nonce = SystemRandom().bytes(XChaCha20Poly1305.nonceLength)
        let sealed = try! XChaCha20Poly1305.seal(plaintext, associatedData: associatedData(table, column, row), nonce: nonce, key: cellKey)
        return [Self.version] + nonce + sealed
    }

    func open(_ cell: [UInt8], table: String, column: String, row: Row) throws(StoreError) -> [UInt8] {
        guard cell.count >= 1 + XChaCha20Poly1305.nonceLength + XChaCha20Poly1305.tagLength, cell[0] == Self.version else {
            throw .tamperedRow(table: table, column: column, row: row.description)
        }
        let nonce = Array(cell[1...XChaCha20Poly1305.nonceLength])
        let body = Array(cell[(1 + XChaCha20Poly1305.nonceLength)...])
        do {
            return try XChaCha20Poly1305.open(body, associatedData: associatedData(table, column, row), nonce: nonce, key: cellKey)
        } catch {
            throw .tamperedRow(table: table, column: column, row: row.description)
        }
    }

    /// The lookup hash of `value` in `table`: BLAKE2b-256 keyed with the lookup key.
    func lookup(_ value: [UInt8], table: String) -> [UInt8] {
        try! BLAKE2b.hash(Array(table.utf8) + [0] + value, key: lookupKey, outputLength: 32)
    }
}
