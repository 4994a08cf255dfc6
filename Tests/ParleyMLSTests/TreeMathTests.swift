@testable import ParleyMLS
import Testing

/// tree-math.json: root, children, parent and sibling of every node of full trees up to 512 leaves
/// (RFC 9420 Appendix C). The file has no cipher suite.
@Suite struct TreeMathTests {
    @Test func vectors() throws {
        let cases = try MLSVectors.load("tree-math")
        #expect(!cases.isEmpty, "tree-math.json yielded no vector")
        for v in cases {
            let leafCount = UInt32(try v.int("n_leaves"))
            #expect(TreeMath.nodeWidth(leafCount) == UInt32(try v.int("n_nodes")))
            #expect(TreeMath.root(leafCount) == UInt32(try v.int("root")))
            let expected: [(String, (UInt32) -> UInt32?)] = [
                ("left", { TreeMath.left($0) }), ("right", { TreeMath.right($0) }),
                ("parent", { TreeMath.parent($0, leafCount: leafCount) }),
                ("sibling", { TreeMath.sibling($0, leafCount: leafCount) }),
            ]
            for (field, function) in expected {
                guard let values = v[field] as? [Any] else { throw VectorError.malformed(field) }
                for (index, value) in values.enumerated() {
                    #expect(function(UInt32(index)) == (value as? Int).map(UInt32.init), "\(field)[\(index)] with \(leafCount) leaves")
                }
            }
        }
        print("tree-math.json: \(cases.count) vectors passed")
    }

    /// RFC 9420 §4.1.2's eight-leaf example: direct paths and copaths, and the common ancestor used when
    /// joining.
    @Test func pathsOfTheRFCExample() {
        #expect(TreeMath.directPath(0, leafCount: 8) == [1, 3, 7])
        #expect(TreeMath.copath(0, leafCount: 8) == [2, 5, 11])
        #expect(TreeMath.directPath(12, leafCount: 8) == [13, 11, 7])
        #expect(TreeMath.copath(12, leafCount: 8) == [14, 9, 3])
        #expect(TreeMath.directPath(0, leafCount: 1).isEmpty)
        #expect(TreeMath.commonAncestor(0, 2) == 1)
        #expect(TreeMath.commonAncestor(0, 14) == 7)
        #expect(TreeMath.commonAncestor(8, 12) == 11)
        #expect(TreeMath.commonAncestor(4, 4) == 4)
        #expect(TreeMath.leafRange(of: 11) == 4...7)
        #expect(TreeMath.isInSubtree(9, of: 11) && !TreeMath.isInSubtree(7, of: 11))
    }
}
