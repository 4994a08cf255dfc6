import Foundation
import ParleyRelayAPI

/// The MLS delivery service's routes (PROTOCOL.md §17) as calls, for a relay in the same process as its
/// clients: what `RelayRoutes` does for each, without HTTP and rate limits.
extension RelayCalls {
    public func uploadKeyPackages(_ upload: KeyPackageUpload, token: String) async throws(RelayRefusal) {
        try await answeringGroups {
            let device = try await core.authenticate(token: token)
            try await core.uploadKeyPackages(upload, by: device)
        }
    }

    public func keyPackageCount(token: String) async throws(RelayRefusal) -> KeyPackageCount {
        try await answeringGroups { try await core.keyPackageCount(for: try await core.authenticate(token: token)) }
    }

    public func claimKeyPackages(of address: String) async throws(RelayRefusal) -> KeyPackageClaim {
        try await answeringGroups { try await core.claimKeyPackages(of: address) }
    }

    public func createGroup(_ creation: GroupCreation, token: String) async throws(RelayRefusal) -> GroupEpoch {
        try await answeringGroups {
            _ = try await core.authenticate(token: token)
            return try await core.createGroup(creation)
        }
    }

    /// A commit (`commit`) or an application message of `send.epoch`, authorised by that epoch's `secret`.
    public func sendToGroup(_ groupId: String, _ send: GroupSend, secret: [UInt8]?, commit: Bool) async throws(RelayRefusal) {
        try await answeringGroups {
            _ = try RelayCore.parseGroupId(groupId)
            _ = try await core.sendToGroup(groupId, send, secret: secret, commit: commit)
        }
    }

    public func groupInfo(of groupId: String, token: String) async throws(RelayRefusal) -> GroupInfoAnswer {
        try await answeringGroups { try await core.groupInfo(groupId, for: try await core.authenticate(token: token)) }
    }

    public func externalCommit(_ send: GroupSend, toGroup groupId: String, token: String) async throws(RelayRefusal) {
        try await answeringGroups { _ = try await core.externalCommit(groupId, send, by: try await core.authenticate(token: token)) }
    }

    public func fetchWithGroups(limit: Int, after: String?, token: String) async throws(RelayRefusal) -> FetchResponseV2 {
        try await answeringGroups { try await core.fetchWithGroups(token: token, limit: limit, after: try RelayCore.afterParameter(after)) }
    }

    public func acknowledgeWithGroups(_ ids: [String], fetch: Int, after: String?, token: String) async throws(RelayRefusal) -> FetchResponseV2 {
        try await answeringGroups {
            try await core.acknowledgeWithGroups(AckRequest(ids: ids), token: token, fetch: fetch, after: try RelayCore.afterParameter(after))
        }
    }

    private func answeringGroups<R>(_ body: () async throws -> R) async throws(RelayRefusal) -> R {
        do { return try await body() } catch {
            throw RelayRefusal(error)
        }
    }
}
