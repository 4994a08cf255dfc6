import Foundation
internal import GRDB
import ParleyProtocol

extension EncryptedStore {
    /// Saves many contacts in one transaction (one sync to disk, not one each): the members of a large
    /// group, whose device lists a device must hold to accept their leaves.
    public func saveContacts(_ contacts: [Contact]) throws(StoreError) {
        try write { db in
            for contact in contacts { try save(contact, db) }
        }
    }
}
