import ParleyProtocol

extension DeviceAddress {
    /// The account of a device the session manager, a sender certificate or an outbox row names. The
    /// protocol core keeps addresses as the text the wire carries (the relay routes by it too); that text
    /// was checked to be an account address where it entered (a certificate's decoder, `AccountAddress`
    /// before it reached the session manager), so this fails only for a damaged store.
    public var account: AccountAddress {
        get throws(AddressError) { try AccountAddress(address) }
    }
}
