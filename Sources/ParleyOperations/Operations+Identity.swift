import ParleyClient
import ParleyCrypto
import ParleyProtocol
import ParleyRelayAPI
import ParleyStore

/// Contacts, their identity keys, verification and trust.
extension Operations {
    public func contacts() throws -> [ContactResult] {
        try engine.contacts().map(ContactResult.init)
    }

    /// Looks the account up on its relay and adds it (its key trusted on first use).
    public func addContact(_ address: AccountAddress) async throws -> ContactResult {
        try policy.checkRelay(of: address)
        return ContactResult(try await engine.addContact(address))
    }

    /// Every contact's (or only `only`'s) identity key, trust level and safety number.
    public func identities(of only: AccountAddress? = nil) async throws -> [IdentityResult] {
        var contacts = try engine.contacts()
        if let only {
            contacts = contacts.filter { $0.address == only }
            guard !contacts.isEmpty else { throw ClientError.unknownContact(only) }
        }
        var out: [IdentityResult] = []
        for contact in contacts {
            let number = try await engine.safetyNumber(with: contact.address)
            out.append(IdentityResult(address: contact.address.description, trustLevel: TrustLevel.name(contact.trust),
                                      devices: contact.account.deviceList?.devices.count ?? 0,
                                      accountKey: KeyFingerprint.full(contact.account.accountKey.bytes),
                                      safetyNumber: number.digits, scannableSafetyNumber: Hex.encode(number.scannable)))
        }
        return out
    }

    public func safetyNumber(with peer: AccountAddress) async throws -> SafetyNumberResult {
        let number = try await engine.safetyNumber(with: peer)
        return SafetyNumberResult(address: peer.description, safetyNumber: number.digits, scannableSafetyNumber: Hex.encode(number.scannable))
    }

    /// What the contact's safety number is compared with: the 60 digits, or the payload of their scanned code.
    public enum Evidence: Sendable {
        case digits(String)
        case scanned([UInt8])
    }

    /// Compares the contact's number with ours and marks them verified on a match. A mismatch is a result
    /// (nothing changes); evidence that is no safety number at all is an error.
    public func verify(_ peer: AccountAddress, _ evidence: Evidence) async throws -> VerificationResult {
        let outcome = switch evidence {
        case .digits(let digits): try await engine.verify(peer, digits: digits)
        case .scanned(let bytes): try await engine.verify(peer, scanned: bytes)
        }
        switch outcome {
        case .verified: return VerificationResult(address: peer.description, result: .verified)
        case .mismatch:
            return VerificationResult(address: peer.description, result: .mismatch, stillVerified: try engine.contact(peer)?.trust == .verified)
        case .versionMismatch(let theirs, let ours):
            return VerificationResult(address: peer.description, result: .versionMismatch, theirVersion: theirs, ourVersion: ours)
        case .malformed: throw OperationError.notASafetyNumber
        }
    }

    /// Accepts the contact's current identity key; with `verifiedSafetyNumber`, only if it matches, and then
    /// the contact is verified.
    public func trust(_ peer: AccountAddress, verifiedSafetyNumber digits: String? = nil) async throws -> TrustResult {
        if let digits {
            guard try await engine.verify(peer, digits: digits) == .verified else { throw OperationError.safetyNumberMismatch }
        } else {
            try await engine.trust(peer)
        }
        guard let contact = try engine.contact(peer) else { throw ClientError.unknownContact(peer) }
        return TrustResult(address: peer.description, trustLevel: TrustLevel.name(contact.trust))
    }
}

/// How a key is shown: in full as hex (JSON), or its first bytes in groups for people to compare.
public enum KeyFingerprint {
    public static func full(_ key: [UInt8]) -> String { Hex.encode(key) }

    /// The first 16 bytes in groups of four hex digits ("1a2b 3c4d …"), as the chat window and
    /// `parley devices` and `parley identities` show keys.
    public static func short(_ key: [UInt8]) -> String {
        let hex = Hex.encode(Array(key.prefix(16)))
        return stride(from: 0, to: hex.count, by: 4).map { start in
            let s = hex.index(hex.startIndex, offsetBy: start)
            return String(hex[s..<hex.index(s, offsetBy: min(4, hex.count - start))])
        }.joined(separator: " ")
    }
}
