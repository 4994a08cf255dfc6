/// Array-based tree arithmetic for MLS ratchet trees (RFC 9420 Appendix C).
///
/// Nodes are numbered by an in-order walk: leaf `L` sits at node `2L`, parent nodes at odd indices. The tree
/// is always full (RFC 9420 §7.7): it has a power-of-two number of leaves, so a node's level fixes its place
/// and every function here is a few bit operations, O(1) apart from the paths, which are O(log n).
public enum TreeMath {
    /// The number of trailing one bits of `x`: 0 for leaves, 1 for their parents, and so on.
    public static func level(_ x: UInt32) -> Int {
        (~x).trailingZeroBitCount
    }

    /// Nodes in a tree of `leafCount` leaves.
    public static func nodeWidth(_ leafCount: UInt32) -> UInt32 {
        leafCount == 0 ? 0 : 2 * (leafCount - 1) + 1
    }

    /// The root of a full tree of `leafCount` leaves (a power of two).
    public static func root(_ leafCount: UInt32) -> UInt32 {
        let width = nodeWidth(leafCount)
        guard width > 1 else { return 0 }
        return (1 << UInt32(31 - width.leadingZeroBitCount)) - 1
    }

    public static func isLeaf(_ x: UInt32) -> Bool { x & 1 == 0 }

    /// The left child of a parent node; `nil` for a leaf.
    public static func left(_ x: UInt32) -> UInt32? {
        let k = level(x)
        guard k > 0 else { return nil }
        return x ^ (1 << UInt32(k - 1))
    }

    /// The right child of a parent node; `nil` for a leaf.
    public static func right(_ x: UInt32) -> UInt32? {
        let k = level(x)
        guard k > 0 else { return nil }
        return x ^ (3 << UInt32(k - 1))
    }

    /// The parent of `x` in a tree of `leafCount` leaves; `nil` for the root.
    public static func parent(_ x: UInt32, leafCount: UInt32) -> UInt32? {
        guard x != root(leafCount), x < nodeWidth(leafCount) else { return nil }
        let k = UInt32(level(x))
        let b = (x >> (k + 1)) & 1
        return (x | (1 << k)) ^ (b << (k + 1))
    }

    /// The other child of `x`'s parent; `nil` for the root.
    public static func sibling(_ x: UInt32, leafCount: UInt32) -> UInt32? {
        guard let p = parent(x, leafCount: leafCount) else { return nil }
        return x < p ? right(p) : left(p)
    }

    /// The ancestors of `x` from its parent up to the root (empty for the root).
    public static func directPath(_ x: UInt32, leafCount: UInt32) -> [UInt32] {
        var path: [UInt32] = []
        var node = x
        while let p = parent(node, leafCount: leafCount) {
            path.append(p)
            node = p
        }
        return path
    }

    /// The siblings of `x` and of each ancestor below the root, bottom-up: entry `i` is the child of
    /// `directPath(x)[i]` that is not on the path.
    public static func copath(_ x: UInt32, leafCount: UInt32) -> [UInt32] {
        var path: [UInt32] = []
        var node = x
        while let s = sibling(node, leafCount: leafCount) {
            path.append(s)
            node = parent(node, leafCount: leafCount)!
        }
        return path
    }

    /// The lowest node that has both `x` and `y` in its subtree.
    public static func commonAncestor(_ x: UInt32, _ y: UInt32) -> UInt32 {
        let lx = level(x) + 1, ly = level(y) + 1
        if lx <= ly && x >> UInt32(ly) == y >> UInt32(ly) { return y }
        if ly <= lx && x >> UInt32(lx) == y >> UInt32(lx) { return x }
        var xn = x, yn = y, k: UInt32 = 0
        while xn != yn {
            xn >>= 1
            yn >>= 1
            k += 1
        }
        return (xn << k) + (1 << (k - 1)) - 1
    }

    /// Whether `descendant` lies in the subtree rooted at `ancestor` (a node is in its own subtree).
    public static func isInSubtree(_ descendant: UInt32, of ancestor: UInt32) -> Bool {
        let k = UInt32(level(ancestor))
        // A subtree of level k spans node indices [ancestor - (2^k - 1), ancestor + (2^k - 1)].
        let half = (UInt32(1) << k) - 1
        return descendant >= ancestor - half && descendant <= ancestor + half
    }

    /// The leaf indices covered by the subtree rooted at `x`.
    public static func leafRange(of x: UInt32) -> ClosedRange<UInt32> {
        let k = UInt32(level(x))
        let half = (UInt32(1) << k) - 1
        return (x - half) / 2...(x + half) / 2
    }
}
