import NIOConcurrencyHelpers
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI

/// The mailbox by token: a fetch or an acknowledgement whose token is checked by the storage in the same
/// read as the mailbox (`RelayStorage.acknowledge(_:forTokenHash:thenFetch:…)`): on PostgreSQL one
/// statement per request where the check was one more.
extension RelayCore {
    /// The account `token` belongs to as this node last saw it, nil if it has not seen the token: what a
    /// route charges its per-account rate limit to before a request by token (see `TokenOwners`).
    func knownOwner(ofToken token: String) -> String? {
        tokenOwners.owner(ofTokenHash: SHA256.hash(Array(token.utf8)))
    }

    func fetch(token: String, limit: Int, after: Int64) async throws -> FetchResponse {
        response(try await mailbox(token: token, acknowledging: [], limit: limit, after: after, groups: false).page)
    }

    /// The ids are checked before anything is read: a malformed acknowledgement changes nothing.
    func acknowledge(_ request: AckRequest, token: String, fetch: Int, after: Int64) async throws -> FetchResponse {
        let ids = try Self.messageIds(of: request)
        let page = try await mailbox(token: token, acknowledging: ids, limit: fetch, after: after, groups: false).page
        metrics.envelopesDelivered.increment(by: page.acknowledged)
        return response(page)
    }

    func fetchWithGroups(token: String, limit: Int, after: Int64) async throws -> FetchResponseV2 {
        let (device, page) = try await mailbox(token: token, acknowledging: [], limit: limit, after: after, groups: true)
        return try await responseWithGroups(page, for: device)
    }

    func acknowledgeWithGroups(_ request: AckRequest, token: String, fetch: Int, after: Int64) async throws -> FetchResponseV2 {
        let ids = try Self.messageIds(of: request)
        let (device, page) = try await mailbox(token: token, acknowledging: ids, limit: fetch, after: after, groups: true)
        metrics.envelopesDelivered.increment(by: page.acknowledged)
        return try await responseWithGroups(page, for: device)
    }

    private func mailbox(token: String, acknowledging ids: [Int64], limit: Int, after: Int64,
                         groups: Bool) async throws -> (device: DeviceAddress, page: MailboxPage) {
        let hash = SHA256.hash(Array(token.utf8))
        guard let read = try await storage.acknowledge(ids, forTokenHash: hash, thenFetch: Self.pageSize(limit), after: after,
                                                       now: clock.nowMilliseconds(), groups: groups) else {
            tokenOwners.forget(tokenHash: hash)
            throw RelayError.unauthorized("invalid or expired token")
        }
        tokenOwners.remember(read.device.address, forTokenHash: hash)
        return read
    }
}

/// Which account each token seen by this node belongs to, by the token's hash. A route charges a request's
/// per-account rate limit before the request; where the storage checks the token in the request's own
/// read, the account is only known from here, and a token not here takes the way with a check of its own
/// first (which fills this). Nothing here admits a request: the storage checks the token every time. A
/// token's account never changes (a token is random, stored once), so an entry is at worst the account of
/// a token that has since expired or been revoked, whose request then fails its check. Bounded: emptied
/// when full.
final class TokenOwners: Sendable {
    static let capacity = 10_000
    private let owners = NIOLockedValueBox<[[UInt8]: String]>([:])

    func owner(ofTokenHash hash: [UInt8]) -> String? {
        owners.withLockedValue { $0[hash] }
    }

    func remember(_ owner: String, forTokenHash hash: [UInt8]) {
        owners.withLockedValue { owners in
            guard owners[hash] != owner else { return }
            if owners.count >= Self.capacity { owners.removeAll(keepingCapacity: true) }
            owners[hash] = owner
        }
    }

    func forget(tokenHash hash: [UInt8]) {
        _ = owners.withLockedValue { $0.removeValue(forKey: hash) }
    }
}
