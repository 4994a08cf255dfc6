import ParleyProtocol
@testable import ParleyRelay
import Testing

/// The key relay nodes wake a device by over PostgreSQL's channel: what a node of this version sends must
/// be what a node of the last one listened for.
@Suite("Wake key")
struct WakeKeyTests {
    @Test("a device's key is the first 16 bytes of SHA-256 of parley-wake-v1, its address and its id, in hex")
    func keyIsTheTruncatedHash() {
        // hashlib.sha256(b"parley-wake-v1\0alice@relay.example\0" + b"2").hexdigest()[:32]
        #expect(WakeKey(DeviceAddress(address: "alice@relay.example", deviceId: 2)).hex == "07f3708dc7cbd24b9be6040399bfe7b7")
        #expect(WakeKey(DeviceAddress(address: "alice@relay.example", deviceId: 3)).hex == "76a601432d6b62f0eb9bc551ff02996d")
    }

    @Test("a payload's key reads back as the device's key; anything but 32 hex digits names none")
    func payloadKeys() {
        let key = WakeKey(DeviceAddress(address: "alice@relay.example", deviceId: 2))
        #expect(WakeKey(hex: Substring(key.hex)) == key)
        #expect(WakeKey(hex: Substring(key.hex)) != WakeKey(DeviceAddress(address: "alice@relay.example", deviceId: 3)))
        for junk in ["", "07f3708dc7cbd24b9be6040399bfe7b", "07f3708dc7cbd24b9be6040399bfe7b7a", "zzf3708dc7cbd24b9be6040399bfe7b7", "07f3708dc7cbd24b9be6040399bfe7é"] {
            #expect(WakeKey(hex: Substring(junk)) == nil, "\(junk)")
        }
    }
}
