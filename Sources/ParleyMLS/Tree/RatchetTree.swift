/// The public state of a ratchet tree (RFC 9420 §7): a full binary tree stored as an array in in-order
/// (node `2L` is leaf `L`), each node blank or holding a `Node`.
///
/// Cost. Every node keeps a cached tree hash, and every blank parent node a cached resolution (a non-blank
/// node's resolution is itself and its unmerged leaves, read directly). Both depend only on the node's own
/// subtree, so a change to node `x` (through `setNode`, the only writer of `nodes`) invalidates exactly `x`
/// and its ancestors: O(log n) entries. They are recomputed lazily, each from its children's cached values,
/// so after a commit that touched one path the root hash costs O(log n) hashes, not n. Extending the tree
/// keeps every cached value (a subtree's hash does not depend on the tree's size); truncating drops the
/// right half with its entries. Equality and the encoding ignore the caches.
///
/// A group keeps its tree until a commit fully validates, so each commit works on a copy. The layout keeps
/// that copy cheap: nodes live in chunks of 256 that are shared between copies until written (`NodeStore`),
/// so a commit copies the chunk list and the few chunks its path touches, not every node; hashes sit in one
/// flat byte array that copies with a single memcpy.
public struct RatchetTree: Sendable {
    public let suite: CipherSuite
    private var store: NodeStore
    private var treeHashCache: HashStore
    private var resolutionCache: [[UInt32]?]
    /// Hashes computed so far (cache misses): lets tests check the O(log n) cost without timing anything.
    var hashComputations = 0

    /// A one-leaf tree holding the group's creator.
    public init(suite: CipherSuite, creator: LeafNode) {
        self.suite = suite
        store = NodeStore([.leaf(creator)])
        treeHashCache = HashStore(width: suite.hashLength, count: 1)
        resolutionCache = [nil]
    }

    /// A tree from its nodes, padded with blanks to a full tree. The node kinds must match their
    /// positions (leaves at even indices).
    public init(suite: CipherSuite, nodes given: [Node?]) throws(MLSError) {
        guard !given.isEmpty, given.count < Int(UInt32.max) else { throw .invalidValue("ratchet tree size") }
        for (index, node) in given.enumerated() {
            switch node {
            case .leaf where index % 2 != 0, .parent where index % 2 == 0:
                throw .invalidValue("ratchet tree node kind at \(index)")
            default: continue
            }
        }
        var leafCount = 1
        while 2 * leafCount - 1 < given.count { leafCount *= 2 }
        self.suite = suite
        store = NodeStore(given + Array(repeating: nil, count: 2 * leafCount - 1 - given.count))
        treeHashCache = HashStore(width: suite.hashLength, count: store.count)
        resolutionCache = Array(repeating: nil, count: store.count)
    }

    public var leafCount: UInt32 { UInt32((store.count + 1) / 2) }
    /// Nodes in the tree, blanks included: 2 × leafCount − 1.
    public var nodeCount: Int { store.count }
    /// Every node in order (a copy: O(n), for encoding and tests).
    public var nodes: [Node?] { (0..<store.count).map { store[$0] } }
    public var root: UInt32 { TreeMath.root(leafCount) }

    public func node(_ index: UInt32) -> Node? {
        Int(index) < store.count ? store[Int(index)] : nil
    }

    /// Nil for a blank leaf and for any index past the tree: indices come from peers (a GroupInfo's signer,
    /// a sender), and 2 × an index of 2^31 or more does not fit a UInt32.
    public func leaf(_ leafIndex: UInt32) -> LeafNode? {
        leafIndex < leafCount ? node(2 * leafIndex)?.leafNode : nil
    }

    public func parentNode(_ index: UInt32) -> ParentNode? {
        node(index)?.parentNode
    }

    public func isBlank(_ index: UInt32) -> Bool { Int(index) >= store.count || !store.isOccupied(Int(index)) }

    /// Leaf indices of the members (non-blank leaves), left to right.
    public var occupiedLeaves: [UInt32] {
        (0..<leafCount).filter { store.isOccupied(Int(2 * $0)) }
    }

    // MARK: - Changing nodes

    /// The single writer of the nodes: sets a node and invalidates the caches of the node and its ancestors.
    public mutating func setNode(_ index: UInt32, _ node: Node?) {
        store[Int(index)] = node
        invalidate(from: index)
    }

    private mutating func invalidate(from index: UInt32) {
        var current: UInt32? = index
        while let x = current {
            treeHashCache.invalidate(Int(x))
            if resolutionCache[Int(x)] != nil { resolutionCache[Int(x)] = nil }
            current = TreeMath.parent(x, leafCount: leafCount)
        }
    }

    /// Blanks every parent node on the direct path of `leafIndex` (the leaf itself is untouched).
    public mutating func blankDirectPath(of leafIndex: UInt32) {
        for x in TreeMath.directPath(2 * leafIndex, leafCount: leafCount) where store.isOccupied(Int(x)) {
            setNode(x, nil)
        }
    }

    /// Doubles the tree: the old tree becomes the left subtree of a new blank root.
    private mutating func extend() {
        let added = store.count + 1
        store.appendBlanks(added)
        treeHashCache.append(count: added)
        resolutionCache += Array(repeating: nil, count: added)
        // Only the new root's hash and resolution were never computed; every old entry stays valid.
    }

    /// Halves the tree while its right half is entirely blank (RFC 9420 §7.7), keeping at least one leaf.
    public mutating func truncate() {
        while leafCount > 1 {
            let half = store.count / 2
            guard ((half + 1)..<store.count).allSatisfy({ !store.isOccupied($0) }) else { return }
            // The left subtree (nodes 0..<half) keeps its own caches; its root becomes the tree's root.
            store.removeLast(half + 1)
            treeHashCache.removeLast(half + 1)
            resolutionCache.removeLast(half + 1)
        }
    }

    /// Adds a member at the leftmost blank leaf, extending the tree if there is none (RFC 9420 §12.1.1), and
    /// lists it as unmerged at every non-blank parent above it. Returns its leaf index.
    @discardableResult
    public mutating func addLeaf(_ leafNode: LeafNode) -> UInt32 {
        let leafIndex = (0..<leafCount).first { !store.isOccupied(Int(2 * $0)) } ?? {
            let first = leafCount
            extend()
            return first
        }()
        setNode(2 * leafIndex, .leaf(leafNode))
        for x in TreeMath.directPath(2 * leafIndex, leafCount: leafCount) {
            guard case .parent(var parent) = store[Int(x)] else { continue }
            let position = parent.unmergedLeaves.firstIndex { $0 > leafIndex } ?? parent.unmergedLeaves.endIndex
            parent.unmergedLeaves.insert(leafIndex, at: position)
            setNode(x, .parent(parent))
        }
        return leafIndex
    }

    /// Applies an Update (RFC 9420 §12.1.2): the sender's leaf is replaced and its direct path blanked.
    public mutating func updateLeaf(_ leafIndex: UInt32, with leafNode: LeafNode) throws(MLSError) {
        guard leaf(leafIndex) != nil else { throw .protocolViolation("update of a blank leaf") }
        setNode(2 * leafIndex, .leaf(leafNode))
        blankDirectPath(of: leafIndex)
    }

    /// Applies a Remove (RFC 9420 §12.1.3): blanks the leaf and its direct path, then truncates.
    public mutating func removeLeaf(_ leafIndex: UInt32) throws(MLSError) {
        guard leafIndex < leafCount, leaf(leafIndex) != nil else { throw .protocolViolation("remove of a blank leaf") }
        setNode(2 * leafIndex, nil)
        blankDirectPath(of: leafIndex)
        truncate()
    }

    // MARK: - Resolution and paths

    /// The resolution of a node (RFC 9420 §4.1.1): the nearest non-blank nodes covering its subtree, a
    /// non-blank node followed by its unmerged leaves (as node indices). Cached per node.
    public mutating func resolution(of index: UInt32) -> [UInt32] {
        switch store[Int(index)] {
        case .parent(let parent):
            return [index] + parent.unmergedLeaves.map { 2 * $0 }
        case .leaf:
            return [index]
        case nil:
            guard let left = TreeMath.left(index), let right = TreeMath.right(index) else { return [] }
            if let cached = resolutionCache[Int(index)] { return cached }
            let result = resolution(of: left) + resolution(of: right)
            resolutionCache[Int(index)] = result
            return result
        }
    }

    /// The filtered direct path of a leaf (RFC 9420 §4.1.2) as pairs of a path node and its child on the
    /// copath, bottom-up: path nodes whose copath child has an empty resolution are left out.
    public mutating func filteredDirectPath(of leafIndex: UInt32) -> [(node: UInt32, copathChild: UInt32)] {
        let path = TreeMath.directPath(2 * leafIndex, leafCount: leafCount)
        let copath = TreeMath.copath(2 * leafIndex, leafCount: leafCount)
        var result: [(node: UInt32, copathChild: UInt32)] = []
        for (node, child) in zip(path, copath) where !resolution(of: child).isEmpty {
            result.append((node, child))
        }
        return result
    }

    // MARK: - Tree hash (RFC 9420 §7.8)

    /// The tree hash of the whole tree (its root), as it goes into the GroupContext.
    public mutating func treeHash() -> [UInt8] {
        treeHash(of: root)
    }

    public mutating func treeHash(of index: UInt32) -> [UInt8] {
        if let cached = treeHashCache[Int(index)] { return cached }
        let hash: [UInt8]
        if let left = TreeMath.left(index), let right = TreeMath.right(index) {
            let leftHash = treeHash(of: left)
            let rightHash = treeHash(of: right)
            hash = suite.hash(Self.parentHashInput(store[Int(index)]?.parentNode, leftHash: leftHash, rightHash: rightHash))
        } else {
            hash = suite.hash(Self.leafHashInput(leafIndex: index / 2, store[Int(index)]?.leafNode))
        }
        hashComputations += 1
        treeHashCache[Int(index)] = hash
        return hash
    }

    /// The tree hash of a subtree as it was before the leaves in `removed` joined (the
    /// `original_sibling_tree_hash` of RFC 9420 §7.9): those leaves are blank and absent from every
    /// `unmerged_leaves`. Subtrees that hold none of them reuse the cached hash.
    mutating func treeHash(of index: UInt32, without removed: [UInt32]) -> [UInt8] {
        let range = TreeMath.leafRange(of: index)
        guard removed.contains(where: { range.contains($0) }) else { return treeHash(of: index) }
        if let left = TreeMath.left(index), let right = TreeMath.right(index) {
            var parent = store[Int(index)]?.parentNode
            parent?.unmergedLeaves.removeAll { removed.contains($0) }
            let leftHash = treeHash(of: left, without: removed)
            let rightHash = treeHash(of: right, without: removed)
            hashComputations += 1
            return suite.hash(Self.parentHashInput(parent, leftHash: leftHash, rightHash: rightHash))
        }
        hashComputations += 1
        return suite.hash(Self.leafHashInput(leafIndex: index / 2, nil))
    }

    private static func leafHashInput(leafIndex: UInt32, _ leaf: LeafNode?) -> [UInt8] {
        var writer = TLSWriter()
        writer.writeUInt8(Node.leafType)
        writer.writeUInt32(leafIndex)
        writer.writeOptional(leaf)
        return writer.bytes
    }

    private static func parentHashInput(_ parent: ParentNode?, leftHash: [UInt8], rightHash: [UInt8]) -> [UInt8] {
        var writer = TLSWriter()
        writer.writeUInt8(Node.parentType)
        writer.writeOptional(parent)
        writer.writeOpaque(leftHash)
        writer.writeOpaque(rightHash)
        return writer.bytes
    }
}

/// The nodes in chunks of 256. Copies share chunks until one is written, when only that chunk is copied
/// (Swift's copy-on-write, per chunk): a commit that writes one path copies O(log n) chunks, not n nodes.
struct NodeStore: Sendable {
    private static let shift = 8
    private static let mask = (1 << shift) - 1
    private var chunks: [[Node?]]
    private(set) var count: Int

    init(_ nodes: [Node?]) {
        count = nodes.count
        chunks = stride(from: 0, to: nodes.count, by: 1 << Self.shift).map { Array(nodes[$0..<min($0 + (1 << Self.shift), nodes.count)]) }
    }

    subscript(index: Int) -> Node? {
        get { chunks[index >> Self.shift][index & Self.mask] }
        set { chunks[index >> Self.shift][index & Self.mask] = newValue }
    }

    func isOccupied(_ index: Int) -> Bool {
        if case .none = chunks[index >> Self.shift][index & Self.mask] { return false }
        return true
    }

    mutating func appendBlanks(_ added: Int) {
        for _ in 0..<added {
            if count & Self.mask == 0 { chunks.append([]) }
            chunks[chunks.count - 1].append(nil)
            count += 1
        }
    }

    mutating func removeLast(_ removed: Int) {
        for _ in 0..<removed {
            count -= 1
            chunks[chunks.count - 1].removeLast()
            if count & Self.mask == 0 { chunks.removeLast() }
        }
    }
}

/// Tree hashes of all nodes in one flat byte array (`width` bytes each) with a validity flag per node: a
/// copy of the tree copies it with one memcpy instead of retaining an array per node.
struct HashStore: Sendable {
    let width: Int
    private var bytes: [UInt8]
    private var valid: [Bool]

    init(width: Int, count: Int) {
        self.width = width
        bytes = Array(repeating: 0, count: width * count)
        valid = Array(repeating: false, count: count)
    }

    subscript(index: Int) -> [UInt8]? {
        get { valid[index] ? Array(bytes[(index * width)..<((index + 1) * width)]) : nil }
        set {
            guard let newValue, newValue.count == width else { valid[index] = false; return }
            bytes.replaceSubrange((index * width)..<((index + 1) * width), with: newValue)
            valid[index] = true
        }
    }

    mutating func invalidate(_ index: Int) {
        if valid[index] { valid[index] = false }
    }

    mutating func append(count: Int) {
        bytes += Array(repeating: 0, count: width * count)
        valid += Array(repeating: false, count: count)
    }

    mutating func removeLast(_ count: Int) {
        bytes.removeLast(width * count)
        valid.removeLast(count)
    }
}

extension RatchetTree: CustomStringConvertible {
    /// A short summary: the nodes themselves are too long to print (and tests would dump them all).
    public var description: String {
        "RatchetTree(\(suite), \(leafCount) leaves, \(occupiedLeaves.count) members)"
    }
}

extension RatchetTree: Equatable {
    public static func == (lhs: RatchetTree, rhs: RatchetTree) -> Bool {
        lhs.suite == rhs.suite && lhs.store.count == rhs.store.count && (0..<lhs.store.count).allSatisfy { lhs.store[$0] == rhs.store[$0] }
    }
}

// MARK: - The `ratchet_tree` extension encoding (RFC 9420 §12.4.3.3)

extension RatchetTree {
    /// `optional<Node> ratchet_tree<V>` with the trailing blank nodes left out.
    public var encoded: [UInt8] {
        var writer = TLSWriter()
        encode(to: &writer)
        return writer.bytes
    }

    public func encode(to writer: inout TLSWriter) {
        let last = (0..<store.count).last { store.isOccupied($0) } ?? 0
        writer.writeVector { w in
            for index in 0...last { w.writeOptional(store[index]) }
        }
    }

    /// Decodes a tree: the last node sent must be non-blank, node kinds must match their positions, and
    /// the tree is padded with blanks to a full tree. Structure only; `validate` checks the contents.
    public init(suite: CipherSuite, from reader: inout TLSReader) throws(MLSError) {
        let given = try reader.readVector { (r: inout TLSReader) throws(MLSError) in try r.readOptional(of: Node.self) }
        guard let last = given.last, last != nil else { throw .invalidValue("ratchet tree ends with a blank node") }
        try self.init(suite: suite, nodes: given)
    }

    public init(suite: CipherSuite, encoded bytes: [UInt8]) throws(MLSError) {
        var reader = TLSReader(bytes)
        try self.init(suite: suite, from: &reader)
        try reader.finish()
    }
}
