/// struct { ExtensionType extension_types<V>; ProposalType proposal_types<V>; CredentialType credential_types<V>; }
/// RequiredCapabilities (RFC 9420 §11.1): what every member of a group must support.
public struct RequiredCapabilities: TLSCodable, Hashable, Sendable {
    public var extensionTypes: [UInt16]
    public var proposalTypes: [UInt16]
    public var credentialTypes: [UInt16]

    public init(extensionTypes: [UInt16] = [], proposalTypes: [UInt16] = [], credentialTypes: [UInt16] = []) {
        self.extensionTypes = extensionTypes
        self.proposalTypes = proposalTypes
        self.credentialTypes = credentialTypes
    }

    public func encode(to writer: inout TLSWriter) {
        for list in [extensionTypes, proposalTypes, credentialTypes] {
            writer.writeVector { w in for value in list { w.writeUInt16(value) } }
        }
    }

    public init(from reader: inout TLSReader) throws(MLSError) {
        let read = { (r: inout TLSReader) throws(MLSError) -> UInt16 in try r.readUInt16() }
        extensionTypes = try reader.readVector(read)
        proposalTypes = try reader.readVector(read)
        credentialTypes = try reader.readVector(read)
    }

    /// The `required_capabilities` extension among `extensions`, if there is one.
    static func find(in extensions: [MLSExtension]) throws(MLSError) -> RequiredCapabilities? {
        guard let ext = extensions.first(where: { $0.extensionType == ExtensionType.requiredCapabilities }) else { return nil }
        return try RequiredCapabilities(tlsEncoded: ext.data)
    }

    /// Proposal types 1–7 and extension types 1–5 are supported by every client and need no listing (§7.2).
    static let defaultProposalTypes: Set<UInt16> = [1, 2, 3, 4, 5, 6, 7]
    static let defaultExtensionTypes: Set<UInt16> = [1, 2, 3, 4, 5]
}

extension LeafNode {
    /// Whether this leaf can be a member of a group of `suite` with these GroupContext extensions (§§7.2,
    /// 12.1): it lists the protocol version and the suite, every required capability, and every non-default
    /// extension type the group uses.
    func supportsGroup(suite: CipherSuite, extensions: [MLSExtension]) throws(MLSError) -> Bool {
        guard capabilities.versions.contains(mls10), capabilities.cipherSuites.contains(suite.id) else { return false }
        _ = try RequiredCapabilities.find(in: extensions)   // a malformed required_capabilities is an error, not a "no"
        return supportsExtensions(extensions)
    }

    /// Whether this leaf lists every non-default extension type of these GroupContext extensions and every
    /// capability their `required_capabilities` asks for (§§7.3, 13.4). A malformed `required_capabilities`
    /// is supported by nobody.
    func supportsExtensions(_ extensions: [MLSExtension]) -> Bool {
        for ext in extensions where !RequiredCapabilities.defaultExtensionTypes.contains(ext.extensionType) {
            guard capabilities.extensions.contains(ext.extensionType) else { return false }
        }
        guard let ext = extensions.first(where: { $0.extensionType == ExtensionType.requiredCapabilities }) else { return true }
        guard let required = try? RequiredCapabilities(tlsEncoded: ext.data) else { return false }
        return required.areMet(by: capabilities)
    }
}

extension Array where Element == MLSExtension {
    /// §13.4: no list of extensions holds two of one type.
    var hasUniqueTypes: Bool { Set(map(\.extensionType)).count == count }
}
