import ParleyCrypto

/// Encrypts and decrypts single cells. Every cell is `0x01 ‖ nonce(24) ‖ XChaCha20-Poly1305 ciphertext`
/// under the cell key, with associated data `"parley.store.cell.v1" ‖ 0 ‖ table ‖ 0 ‖ column ‖ 0 ‖ row`,
/// so a cell copied to another row, column or table fails authentication. Lookup columns are keyed
/// BLAKE2b hashes under a separate key, never plaintext.
struct CellCipher: Sendable {
    fileprivate let cellKey: SecretBytes
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
        var byteCount: Int {
            switch self {
            case .id: 8
            case .key(let k): k.count
            }
        }
        /// Appends `bytes` without making an array of them first.
        func append(to out: inout [UInt8]) {
            switch self {
            case .id(let v): withUnsafeBytes(of: v.bigEndian) { out.append(contentsOf: $0) }
            case .key(let k): out.append(contentsOf: k)
            }
        }
        var description: String {
            switch self {
            case .id(let v): "\(v)"
            case .key(let k): k.prefix(6).map { String($0, radix: 16) }.joined() + "…"
            }
        }
    }

    /// A table and column with the start of their associated data (label ‖ 0 ‖ table ‖ 0 ‖ column ‖ 0)
    /// worked out once, for code that opens many cells of one column.
    struct Column: Sendable {
        let table: String
        let column: String
        let prefix: [UInt8]

        init(_ table: String, _ column: String) {
            self.table = table
            self.column = column
            var prefix: [UInt8] = []
            prefix.reserveCapacity(CellCipher.cellLabel.count + table.utf8.count + column.utf8.count + 3)
            prefix.append(contentsOf: CellCipher.cellLabel)
            prefix.append(0)
            prefix.append(contentsOf: table.utf8)
            prefix.append(0)
            prefix.append(contentsOf: column.utf8)
            prefix.append(0)
            self.prefix = prefix
        }
    }

    /// The associated data of one cell, built in one allocation: this runs for every cell read or written.
    private static func associatedData(_ column: Column, _ row: Row) -> [UInt8] {
        var ad: [UInt8] = []
        ad.reserveCapacity(column.prefix.count + row.byteCount)
        ad.append(contentsOf: column.prefix)
        row.append(to: &ad)
        return ad
    }

    /// `nonce`: a fresh random nonce, from a `NoncePool`; nil draws one here.
    func seal(_ plaintext: [UInt8], table: String, column: String, row: Row, nonce: [UInt8]? = nil) -> [UInt8] {
        let nonce = nonce ?? SystemRandom().bytes(XChaCha20Poly1305.nonceLength)
        precondition(nonce.count == XChaCha20Poly1305.nonceLength)
        let sealed = try! XChaCha20Poly1305.seal(plaintext, associatedData: Self.associatedData(Column(table, column), row),
                                                 nonce: nonce, key: cellKey)
        var cell: [UInt8] = []
        cell.reserveCapacity(1 + nonce.count + sealed.count)
        cell.append(Self.version)
        cell.append(contentsOf: nonce)
        cell.append(contentsOf: sealed)
        return cell
    }

    func open(_ cell: [UInt8], table: String, column: String, row: Row) throws(StoreError) -> [UInt8] {
        try cell.withUnsafeBytes { raw in
            Result { () throws(StoreError) -> [UInt8] in try open(raw, Column(table, column), row: row) }
        }.get()
    }

    /// The same as `open(_:table:column:row:)`, reading the cell in place (straight from SQLite's buffer).
    func open(_ cell: UnsafeRawBufferPointer, _ column: Column, row: Row) throws(StoreError) -> [UInt8] {
        guard cell.count >= 1 + XChaCha20Poly1305.nonceLength + XChaCha20Poly1305.tagLength, cell[0] == Self.version else {
            throw .tamperedRow(table: column.table, column: column.column, row: row.description)
        }
        let nonce = Array(cell[1...XChaCha20Poly1305.nonceLength])
        let body = Array(cell[(1 + XChaCha20Poly1305.nonceLength)...])
        do {
            return try XChaCha20Poly1305.open(body, associatedData: Self.associatedData(column, row), nonce: nonce, key: cellKey)
        } catch {
            throw .tamperedRow(table: column.table, column: column.column, row: row.description)
        }
    }

    /// Random nonces for the cells written by one transaction, drawn from the system CSPRNG up to 64 at a
    /// time (one `randombytes_buf` call) rather than one call per cell. Each nonce is handed out once;
    /// whatever is left when the transaction ends is dropped.
    struct NoncePool {
        private var buffer: [UInt8] = []
        private var offset = 0
        /// Nonces drawn per refill: the number the caller expects to need, at most 64.
        private let batch: Int

        init(expected: Int) { batch = min(64, max(1, expected)) }

        mutating func next() -> [UInt8] {
            let length = XChaCha20Poly1305.nonceLength
            if offset == buffer.count {
                buffer = SystemRandom().bytes(batch * length)
                offset = 0
            }
            defer { offset += length }
            return Array(buffer[offset..<(offset + length)])
        }
    }

    /// Opens many cells of one column, keyed by integer row ids, reusing its nonce, ciphertext and
    /// associated-data buffers from cell to cell (search decrypts every message body). Same checks, same
    /// errors and same result as `open(_:_:row:)`.
    struct Opener {
        let cipher: CellCipher
        let column: Column
        private var associatedData: [UInt8]
        private var nonce = [UInt8](repeating: 0, count: XChaCha20Poly1305.nonceLength)
        private var body: [UInt8] = []

        init(_ cipher: CellCipher, _ column: Column) {
            self.cipher = cipher
            self.column = column
            associatedData = column.prefix + [UInt8](repeating: 0, count: 8)
        }

        mutating func open(_ cell: UnsafeRawBufferPointer, id: Int64) throws(StoreError) -> [UInt8] {
            let nonceLength = XChaCha20Poly1305.nonceLength
            guard cell.count >= 1 + nonceLength + XChaCha20Poly1305.tagLength, cell[0] == CellCipher.version else {
                throw .tamperedRow(table: column.table, column: column.column, row: "\(id)")
            }
            let prefixLength = column.prefix.count
            withUnsafeBytes(of: id.bigEndian) { idBytes in
                associatedData.withUnsafeMutableBytes { $0.baseAddress!.advanced(by: prefixLength).copyMemory(from: idBytes.baseAddress!, byteCount: 8) }
            }
            nonce.withUnsafeMutableBytes { $0.copyMemory(from: UnsafeRawBufferPointer(rebasing: cell[1...nonceLength])) }
            body.removeAll(keepingCapacity: true)
            body.append(contentsOf: UnsafeRawBufferPointer(rebasing: cell[(1 + nonceLength)...]))
            do {
                return try XChaCha20Poly1305.open(body, associatedData: associatedData, nonce: nonce, key: cipher.cellKey)
            } catch {
                throw .tamperedRow(table: column.table, column: column.column, row: "\(id)")
            }
        }
    }

    /// The lookup hash of `value` in `table`: BLAKE2b-256 keyed with the lookup key.
    func lookup(_ value: [UInt8], table: String) -> [UInt8] {
        var message: [UInt8] = []
        message.reserveCapacity(table.utf8.count + 1 + value.count)
        message.append(contentsOf: table.utf8)
        message.append(0)
        message.append(contentsOf: value)
        return try! BLAKE2b.hash(message, key: lookupKey, outputLength: 32)
    }
}
