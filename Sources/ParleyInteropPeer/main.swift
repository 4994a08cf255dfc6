// parley-interop-peer: a TEST TOOL, not part of the messenger. It exposes one Parley device over a
// JSON-lines protocol on stdin/stdout so that Tests/interop (third-party Python packages configured to
// PROTOCOL.md) can drive it, and it prints session secrets on request. Never use it with real keys.
import Foundation
import ParleyCrypto
import ParleyProtocol

let usage = """
parley-interop-peer — TEST TOOL for the independent cross-check (Tests/interop). Not for real use: it
reveals session secrets (root, chain and shared keys) on request.

usage: parley-interop-peer [--device-id N] [--one-time N] [--identity-seed HEX32]
       parley-interop-peer --help

Reads one JSON object per line on stdin and answers each with one JSON line on stdout:
  {"ok": true, ...}  or  {"ok": false, "error": KIND, "detail": TEXT}
Byte strings are lowercase hex. Commands:
  {"cmd":"hello"}                                  → identity (Ed25519, hex), device_id
  {"cmd":"bundle","opk":true,"pq_one_time":true}   → bundle: a PreKeyBundle (§3.3); one-time keys
                                                     are offered once each
  {"cmd":"init","bundle":HEX,"plaintext":HEX}      → start a session as initiator (§4) and encrypt the
                                                     first content: content_type 2, message (PreKeyMessage)
  {"cmd":"encrypt","plaintext":HEX}                → content_type (1 RatchetMessage, 2 PreKeyMessage), message
  {"cmd":"decrypt","content_type":N,"message":HEX} → plaintext (content, padding removed)
  {"cmd":"secrets"}                                → sk, ad, rk, cks, ckr, dhs, dhr, ns, nr, pn, skipped
  {"cmd":"quit"}
Error kinds: badSignature, decryptionFailed, duplicateOrReplayedMessage, tooManySkippedMessages,
unknownPreKey, malformed, unsupportedVersion, crypto, noSession, badRequest.
"""

// MARK: Arguments

var deviceId: UInt32 = 1
var oneTime = 5
var identitySeed: [UInt8]?
var arguments = CommandLine.arguments.dropFirst()
while let arg = arguments.popFirst() {
    switch arg {
    case "--help", "-h":
        print(usage)
        exit(0)
    case "--device-id":
        guard let v = arguments.popFirst().flatMap(UInt32.init) else { fatalError("--device-id needs a number") }
        deviceId = v
    case "--one-time":
        guard let v = arguments.popFirst().flatMap(Int.init) else { fatalError("--one-time needs a number") }
        oneTime = v
    case "--identity-seed":
        guard let v = arguments.popFirst().flatMap(unhex), v.count == 32 else { fatalError("--identity-seed needs 32 bytes of hex") }
        identitySeed = v
    default:
        FileHandle.standardError.write(Data("unknown argument \(arg)\n\n\(usage)\n".utf8))
        exit(2)
    }
}

// MARK: JSON lines

func jsonValue(_ v: Any) -> Any {
    if v is NSNullish { return NSNull() }
    return v
}

func send(_ object: [String: Any]) {
    let cleaned = object.mapValues(jsonValue)
    let data = (try? JSONSerialization.data(withJSONObject: cleaned, options: [.sortedKeys])) ?? Data("{\"ok\":false}".utf8)
    FileHandle.standardOutput.write(data + Data("\n".utf8))
}

func errorKind(_ error: any Error) -> (String, String) {
    switch error {
    case let f as InteropPeer.Failure:
        return (f.kind, f.detail)
    case let e as ProtocolError:
        let kind: String = switch e {
        case .unsupportedVersion: "unsupportedVersion"
        case .malformed: "malformed"
        case .badSignature: "badSignature"
        case .crypto: "crypto"
        case .unknownPreKey: "unknownPreKey"
        case .duplicateOrReplayedMessage: "duplicateOrReplayedMessage"
        case .tooManySkippedMessages: "tooManySkippedMessages"
        case .noSession: "noSession"
        case .decryptionFailed: "decryptionFailed"
        default: "protocol"
        }
        return (kind, String(describing: e))
    case let e as CryptoError:
        return ("crypto", String(describing: e))
    default:
        return ("error", String(describing: error))
    }
}

func bytesArgument(_ request: [String: Any], _ name: String) throws -> [UInt8] {
    guard let s = request[name] as? String, let b = unhex(s) else {
        throw InteropPeer.Failure(kind: "badRequest", detail: "missing or non-hex field \(name)")
    }
    return b
}

let peer: InteropPeer
do {
    peer = try InteropPeer(deviceId: deviceId, identitySeed: identitySeed, oneTime: oneTime, random: SystemRandom())
} catch {
    FileHandle.standardError.write(Data("cannot create the peer: \(error)\n".utf8))
    exit(1)
}

while let line = readLine(strippingNewline: true) {
    if line.isEmpty { continue }
    guard let data = line.data(using: .utf8),
          let request = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
          let cmd = request["cmd"] as? String else {
        send(["ok": false, "error": "badRequest", "detail": "not a JSON object with a cmd"])
        continue
    }
    do {
        switch cmd {
        case "hello":
            send(["ok": true, "identity": hex(peer.identity.publicKey.bytes), "device_id": Int(peer.identity.deviceId),
                  "tool": "parley-interop-peer (test tool)"])
        case "bundle":
            let bundle = peer.bundle(oneTime: request["opk"] as? Bool ?? true, oneTimePQ: request["pq_one_time"] as? Bool ?? true)
            send(["ok": true, "bundle": hex(bundle.encoded)])
        case "init":
            let (type, message) = try peer.initiate(bundleBytes: try bytesArgument(request, "bundle"),
                                                    content: try bytesArgument(request, "plaintext"))
            send(["ok": true, "content_type": Int(type), "message": hex(message)])
        case "encrypt":
            let (type, message) = try peer.encrypt(try bytesArgument(request, "plaintext"))
            send(["ok": true, "content_type": Int(type), "message": hex(message)])
        case "decrypt":
            guard let type = request["content_type"] as? Int, let t8 = UInt8(exactly: type) else {
                throw InteropPeer.Failure(kind: "badRequest", detail: "content_type")
            }
            let content = try peer.decrypt(contentType: t8, bytes: try bytesArgument(request, "message"))
            send(["ok": true, "plaintext": hex(content)])
        case "secrets":
            var out = peer.secrets()
            out["ok"] = true
            send(out)
        case "quit":
            send(["ok": true])
            exit(0)
        default:
            throw InteropPeer.Failure(kind: "badRequest", detail: "unknown command \(cmd)")
        }
    } catch {
        let (kind, detail) = errorKind(error)
        send(["ok": false, "error": kind, "detail": detail])
    }
}
