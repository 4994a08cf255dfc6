/// Protocol versions and the extension types of RFC 9420 §17.3.

public typealias ProtocolVersion = UInt16
public let mls10: ProtocolVersion = 1

public enum ExtensionType {
    public static let applicationID: UInt16 = 1
    public static let ratchetTree: UInt16 = 2
    public static let requiredCapabilities: UInt16 = 3
    public static let externalPub: UInt16 = 4
    public static let externalSenders: UInt16 = 5
}
