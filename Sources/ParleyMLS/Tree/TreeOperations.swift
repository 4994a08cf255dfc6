/// The membership proposals' effect on the public tree (RFC 9420 §12.1.1–12.1.3). Validation of the
/// proposal itself (KeyPackage and LeafNode checks, who may send what) belongs to the commit that carries
/// it; this is the mechanical change both committer and members make.
extension RatchetTree {
    /// Applies an Add, Update or Remove sent by the member at `sender`. Returns the new member's leaf
    /// index for an Add, `nil` otherwise.
    @discardableResult
    public mutating func apply(_ proposal: Proposal, sender: UInt32) throws(MLSError) -> UInt32? {
        switch proposal {
        case .add(let keyPackage):
            return addLeaf(keyPackage.leafNode)
        case .update(let leafNode):
            try updateLeaf(sender, with: leafNode)
            return nil
        case .remove(let leafIndex):
            try removeLeaf(leafIndex)
            return nil
        default:
            throw .invalidValue("proposal that does not change the tree")
        }
    }
}
