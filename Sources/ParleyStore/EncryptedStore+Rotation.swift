import ParleyProtocol

extension EncryptedStore {
    /// Key rotation (`parley rotate-keys`): the account with its new keys and the new prekeys, and every
    /// ratchet session deleted, in one transaction. Each session was started with this device's old
    /// identity key, which the peer no longer accepts: the next message to each device starts a new one.
    public func replaceLocalIdentity(_ account: LocalAccount, preKeys: LocalPreKeys) throws(StoreError) {
        try write { db in
            try saveLocal("account", account.serialized(), db)
            try saveLocal("prekeys", preKeys.serialized(), db)
            try db.execute(sql: "DELETE FROM sessions")
        }
    }
}
