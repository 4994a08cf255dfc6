import ParleyCrypto

/// Delivery access (PROTOCOL.md §13.1): a random key per account that only its contacts hold (it travels
/// inside the encrypted session). Sealed envelopes to the account are accepted by its relay only with the
/// key; the relay keeps just the verifier, so reading the relay's database does not give the key.
public enum DeliveryAccess {
    public static let keyLength = 32
    /// The HTTP header that carries the key, base64, on `POST /v1/messages/{address}`.
    public static let header = "Unidentified-Access-Key"

    public static func newKey(random: any RandomSource = SystemRandom()) -> [UInt8] { random.bytes(keyLength) }

    /// HMAC-SHA256(key, "Parley_DeliveryAccess_v1"): what the relay stores and compares (in constant time).
    public static func verifier(of key: [UInt8]) -> [UInt8] {
        HMACSHA256.authenticate(ProtocolConstants.infoDeliveryAccess, key: key)
    }
}
