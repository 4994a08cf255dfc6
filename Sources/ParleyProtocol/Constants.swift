/// Every label and limit of PROTOCOL.md §1 and §5.1, in one place.
public enum ProtocolConstants {
    public static let version: UInt8 = 0x01

    public static let infoPQXDH = Array("Parley_PQXDH_CURVE25519_SHA-256_ML-KEM-1024".utf8)
    public static let infoRoot = Array("Parley_Ratchet_Root".utf8)
    public static let infoMessage = Array("Parley_Ratchet_MessageKeys".utf8)
    public static let infoSealed = Array("Parley_SealedSender_v1".utf8)
    public static let infoDeliveryAccess = Array("Parley_DeliveryAccess_v1".utf8)
    public static let signatureDeviceList = "parley.device-list.v1"
    public static let signatureSenderCertificate = "parley.sender-certificate.v1"
    public static let signatureAccountKeyChange = "parley.account-key-change.v1"

    public static let maxSkip = 1000
    public static let maxStoredSkippedKeys = 2000
    public static let maxInactiveSessions = 5
    public static let paddingBlock = 160
}
