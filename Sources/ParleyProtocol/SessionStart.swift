import ParleyCrypto

/// How the messages of one peer device are decrypted against the sessions held with it (PROTOCOL.md §8):
/// the one code path of the client's session manager and of the interop test peer, so the rules below
/// cannot drift apart between what the messenger does and what the cross-check exercises.
extension PeerDeviceSessions {
    /// What receiving a PreKeyMessage did.
    public struct PreKeyOutcome: Sendable {
        /// The padded plaintext.
        public let plaintext: [UInt8]
        /// Set when the message started a new session: the PQXDH response, and the prekeys with the
        /// one-time keys it used removed (to be stored with the session).
        public let response: PQXDH.Response?
        public let remainingPreKeys: LocalPreKeys?
    }

    /// A PreKeyMessage whose EK_A started a session still held belongs to that session alone: if it does
    /// not decrypt there it is a duplicate or a replay — never a new start, even when the bundle had no
    /// one-time prekey to burn. Otherwise it may continue an existing session (the initiator sends
    /// PreKeyMessages until the first reply); only if none can decrypt it does it start a new one, with
    /// `preKeys()` (asked for only then). Changes nothing when it throws.
    public mutating func receive(_ message: PreKeyMessage, identity: DeviceIdentity, device: DeviceAddress,
                                 preKeys: () throws -> LocalPreKeys, random: any RandomSource) throws -> PreKeyOutcome {
        let ephemeral = message.preKey.ephemeralKey
        if let index = ([active].compactMap { $0 } + inactive).firstIndex(where: { $0.initiationKey == ephemeral }) {
            return PreKeyOutcome(plaintext: try decryptInStartedSession(message.message, at: index, random: random),
                                 response: nil, remainingPreKeys: nil)
        }
        do {
            return PreKeyOutcome(plaintext: try decrypt(message.message, device: device, random: random), response: nil, remainingPreKeys: nil)
        } catch ProtocolError.duplicateOrReplayedMessage {
            throw ProtocolError.duplicateOrReplayedMessage
        } catch {
            var keys = try preKeys()
            let response = try PQXDH.respond(identity: identity, preKeys: keys, header: message.preKey)
            var session = RatchetSession.responder(response, localIdentity: identity.publicKey,
                                                   remoteIdentity: message.preKey.identityKey, initiationKey: ephemeral)
            let plaintext = try session.decrypt(message.message, random: random)
            activate(session)
            // Only now, after the first message decrypted, are the one-time keys burnt.
            keys.consume(message.preKey)
            return PreKeyOutcome(plaintext: plaintext, response: response, remainingPreKeys: keys)
        }
    }

    /// Tries the active session, then the inactive ones newest first; the one that decrypts becomes active.
    public mutating func decrypt(_ message: RatchetMessage, device: DeviceAddress, random: any RandomSource) throws -> [UInt8] {
        if var current = active {
            do {
                let plaintext = try current.decrypt(message, random: random)
                active = current
                return plaintext
            } catch ProtocolError.duplicateOrReplayedMessage {
                throw ProtocolError.duplicateOrReplayedMessage
            } catch {}
        }
        for index in inactive.indices {
            var candidate = inactive[index]
            if let plaintext = try? candidate.decrypt(message, random: random) {
                inactive.remove(at: index)
                activate(candidate)
                return plaintext
            }
        }
        if isEmpty { throw ProtocolError.noSession(address: device.address, deviceId: device.deviceId) }
        throw ProtocolError.decryptionFailed
    }

    /// Decrypts in the session at `index` of [active] + inactive (the one a PreKeyMessage's EK_A started);
    /// anything but success there is a duplicate or replay.
    private mutating func decryptInStartedSession(_ message: RatchetMessage, at index: Int, random: any RandomSource) throws -> [UInt8] {
        let activeCount = active == nil ? 0 : 1
        var session = index < activeCount ? active! : inactive[index - activeCount]
        guard let plaintext = try? session.decrypt(message, random: random) else { throw ProtocolError.duplicateOrReplayedMessage }
        if index < activeCount {
            active = session
        } else {
            inactive.remove(at: index - activeCount)
            activate(session)
        }
        return plaintext
    }
}
