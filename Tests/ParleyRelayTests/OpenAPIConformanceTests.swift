import Foundation
@testable import ParleyRelay
import ParleyRelayAPI
import Testing

// openapi/relay.yaml against the code: the routes of `RelayRoutes.endpoints`, and the JSON keys of every
// Codable type of Sources/ParleyRelayAPI/RelayAPI.swift. There is no YAML library in the package, so the
// document is read by indentation; relay.yaml's header states the layout rules this reader relies on.
// (Tests/relay-fuzz checks the statuses and bodies against a running relay.)

@Suite("openapi/relay.yaml matches the relay")
struct OpenAPIConformanceTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func document() throws -> OpenAPIOutline {
        try OpenAPIOutline(yaml: String(contentsOf: root.appendingPathComponent("openapi/relay.yaml"), encoding: .utf8))
    }

    @Test("the documented (method, path) pairs are exactly RelayRoutes.endpoints")
    func routes() throws {
        let documented = try Self.document().operations
        let served = RelayRoutes.endpoints.map { OpenAPIOutline.Operation(method: $0.0, path: $0.1) }
        #expect(Set(served).count == served.count, "RelayRoutes.endpoints lists a route twice")
        let missing = Set(served).subtracting(documented), extra = Set(documented).subtracting(served)
        #expect(missing.isEmpty, "served but not in openapi/relay.yaml: \(missing.sorted())")
        #expect(extra.isEmpty, "in openapi/relay.yaml but not served: \(extra.sorted())")
        #expect(documented.count == Set(documented).count, "openapi/relay.yaml lists an operation twice")
    }

    @Test("components/schemas has one schema per Codable type of RelayAPI.swift, and nothing else")
    func schemaNames() throws {
        let source = try ["RelayAPI.swift", "GroupAPI.swift"].map {
            try String(contentsOf: Self.root.appendingPathComponent("Sources/ParleyRelayAPI/" + $0), encoding: .utf8)
        }.joined(separator: "\n")
        let declared = Set(source.components(separatedBy: "\n").compactMap { line -> String? in
            let words = line.trimmingCharacters(in: .whitespaces).split(whereSeparator: { $0 == " " || $0 == ":" })
            guard words.count >= 4, words[0] == "public", words[1] == "struct", line.contains("Codable") else { return nil }
            return String(words[2])
        })
        #expect(declared.count > 10, "RelayAPI.swift was not read as expected")
        let documented = Set(try Self.document().schemas.keys)
        #expect(declared.subtracting(documented).isEmpty, "no schema for: \(declared.subtracting(documented).sorted())")
        #expect(documented.subtracting(declared).isEmpty, "no Codable type for: \(documented.subtracting(declared).sorted())")
        #expect(Set(WireSamples.all.map(\.name)) == declared, "WireSamples must cover every Codable type of RelayAPI.swift")
    }

    @Test("every schema's properties are the type's JSON keys, its required list the non-optional ones",
          arguments: WireSamples.all)
    func schemaFields(_ sample: WireSamples.Sample) throws {
        let schema = try #require(try Self.document().schemas[sample.name], "no schema \(sample.name) in openapi/relay.yaml")
        let full = try WireSamples.jsonObject(sample.full)
        let minimal = try WireSamples.jsonObject(sample.minimal)
        #expect(Set(schema.properties.keys) == Set(full.keys),
                "\(sample.name): document has \(schema.properties.keys.sorted()), Swift encodes \(full.keys.sorted())")
        #expect(schema.required == Set(minimal.keys),
                "\(sample.name): document requires \(schema.required.sorted()), Swift always encodes \(minimal.keys.sorted())")
        for (key, value) in full {
            guard let documentedKind = schema.properties[key] else { continue }
            #expect(documentedKind == value, "\(sample.name).\(key): document says \(documentedKind), Swift encodes \(value)")
        }
    }

    @Test("every $ref names a schema, response or parameter that exists")
    func references() throws {
        let document = try Self.document()
        let missing = document.references.filter { !document.definitions.contains($0) }
        #expect(missing.isEmpty, "dangling $ref: \(missing.sorted())")
        #expect(!document.references.isEmpty)
    }

    @Test("the reader itself: a route or a field added on one side only is seen")
    func readerSeesChanges() throws {
        let yaml = """
            openapi: 3.0.3
            paths:
              /v1/a/{x}:
                get:
                  parameters:
                    - name: x
                      in: path
                      schema:
                        $ref: "#/components/schemas/T"
                  responses:
                    "200":
                      $ref: "#/components/responses/R"
                put:
                  description: "x"
            components:
              responses:
                R:
                  description: r
              schemas:
                T:
                  type: object
                  required: [a, b]
                  properties:
                    a:
                      type: string
                    b:
                      $ref: "#/components/schemas/U"
                    c:
                      type: array
                      items:
                        type: integer
            """
        let outline = try OpenAPIOutline(yaml: yaml)
        #expect(outline.operations == [.init(method: "GET", path: "/v1/a/{x}"), .init(method: "PUT", path: "/v1/a/{x}")])
        #expect(outline.schemas["T"]?.properties == ["a": .string, "b": .object, "c": .array])
        #expect(outline.schemas["T"]?.required == ["a", "b"])
        #expect(outline.references == ["#/components/responses/R", "#/components/schemas/T", "#/components/schemas/U"])
        #expect(outline.definitions == ["#/components/responses/R", "#/components/schemas/T"])
        let sample = try WireSamples.jsonObject(HealthResponse(status: "ok", name: "n", version: "1"))
        #expect(Set(sample.keys) == ["status", "name", "version"])
    }
}

// MARK: One value of every wire type

enum WireSamples {
    struct Sample: Sendable, CustomTestStringConvertible {
        let name: String
        /// Every optional set, so that every key is encoded.
        let full: any Encodable & Sendable
        /// Every optional nil: the keys always present.
        let minimal: any Encodable & Sendable
        var testDescription: String { name }

        init(_ full: any Encodable & Sendable, minimal: (any Encodable & Sendable)? = nil) {
            name = String(describing: type(of: full))
            self.full = full
            self.minimal = minimal ?? full
        }
    }

    static let bytes = Base64Bytes([1, 2, 3])
    static let signed = SignedPreKeyEntry(id: 7, key: bytes, signature: bytes)

    static let all: [Sample] = [
        Sample(ErrorBody(error: "bad_request", message: "m")),
        Sample(RegisterRequest(address: "a@b", accountKey: bytes, deviceList: bytes)),
        Sample(AccountResponse(address: "a@b", accountKey: bytes, deviceList: bytes, keyChange: bytes),
               minimal: AccountResponse(address: "a@b", accountKey: bytes, deviceList: bytes)),
        Sample(DeviceListUpdate(deviceList: bytes)),
        Sample(AccountKeyChangeRequest(keyChange: bytes, deviceList: bytes)),
        Sample(DeliveryAccessUpdate(verifier: bytes)),
        Sample(ChallengeRequest(address: "a@b", deviceId: 1)),
        Sample(ChallengeResponse(challenge: bytes, expiresAt: 1)),
        Sample(SessionRequest(address: "a@b", deviceId: 1, challenge: bytes, signature: bytes)),
        Sample(SessionResponse(token: "t", expiresAt: 1)),
        Sample(signed),
        Sample(OneTimePreKeyEntry(id: 1, key: bytes)),
        Sample(PreKeyUpload(signedPreKey: signed, lastResortPQPreKey: signed, oneTimePreKeys: [], oneTimePQPreKeys: []),
               minimal: PreKeyUpload(signedPreKey: nil, lastResortPQPreKey: nil, oneTimePreKeys: [], oneTimePQPreKeys: [])),
        Sample(PreKeyCount(oneTimePreKeys: 1, oneTimePQPreKeys: 1, low: false)),
        Sample(BundleResponse(bundle: bytes)),
        Sample(OutgoingMessage(deviceId: 1, deviceKey: bytes, envelope: bytes)),
        Sample(SendRequest(messages: [])),
        Sample(DeviceMismatch(missingDevices: [1], extraDevices: [], staleDevices: [])),
        Sample(QueuedMessage(id: "1", envelope: bytes, receivedAt: 1)),
        Sample(FetchResponse(messages: [], more: false, preKeysLow: false)),
        Sample(AckRequest(ids: ["1"])),
        Sample(AttachmentSlotRequest(size: 1)),
        Sample(AttachmentSlot(id: "i", size: 1, expiresAt: 1, uploadSecret: "s")),
        Sample(ProvisioningSlot(id: "p", expiresAt: 1)),
        Sample(ProvisioningMessage(message: Base64Bytes([1]))),
        Sample(HealthResponse(status: "degraded", name: "n", version: "1", reason: "storage_low"),
               minimal: HealthResponse(status: "ok", name: "n", version: "1")),
        Sample(KeyPackageUpload(keyPackages: [bytes], lastResort: bytes), minimal: KeyPackageUpload(keyPackages: [bytes], lastResort: nil)),
        Sample(KeyPackageCount(keyPackages: 1, lastResort: true, low: false)),
        Sample(ClaimedKeyPackage(deviceId: 1, keyPackage: bytes, lastResort: false)),
        Sample(KeyPackageClaim(keyPackages: [])),
        Sample(GroupCreation(groupId: "00", verifier: bytes)),
        Sample(GroupEpoch(groupId: "00", epoch: 1)),
        Sample(EpochConflict(error: "epoch_conflict", message: "m", epoch: 1)),
        Sample(GroupRecipient(address: "a@b", deviceId: 1)),
        Sample(GroupSend(epoch: 1, message: bytes, recipients: [], nextVerifier: bytes, groupInfo: bytes, rejoiners: [],
                         welcome: GroupWelcome(message: bytes, recipients: [])),
               minimal: GroupSend(epoch: 1, message: bytes, recipients: [])),
        Sample(GroupInfoAnswer(groupId: "00", epoch: 1, groupInfo: bytes)),
        Sample(GroupWelcome(message: bytes, recipients: [])),
        Sample(GroupDelivery(groupId: "00", epoch: 1, kind: "message", message: bytes)),
        Sample(MailboxEntry(id: "1", receivedAt: 1, envelope: bytes, group: GroupDelivery(groupId: "00", epoch: 1, kind: "message", message: bytes)),
               minimal: MailboxEntry(id: "1", receivedAt: 1, envelope: nil, group: nil)),
        Sample(FetchResponseV2(messages: [], more: false, preKeysLow: false, keyPackagesLow: false)),
    ]

    /// The value as JSONEncoder writes it, one level deep.
    static func jsonObject(_ value: any Encodable) throws -> [String: JSONKind] {
        try JSONDecoder().decode([String: JSONKind].self, from: try JSONEncoder().encode(value))
    }
}

/// The JSON kind of a value, as an OpenAPI `type` names it (`$ref` to an object schema: `object`).
enum JSONKind: String, Decodable, Sendable, CustomStringConvertible {
    case string, integer, number, boolean, array, object, null

    var description: String { rawValue }

    init(from decoder: any Decoder) throws {
        if (try? decoder.container(keyedBy: AnyKey.self)) != nil { self = .object; return }
        if (try? decoder.unkeyedContainer()) != nil { self = .array; return }
        let value = try decoder.singleValueContainer()
        if value.decodeNil() { self = .null }
        else if (try? value.decode(Bool.self)) != nil { self = .boolean }  // JSONDecoder never reads 0/1 as Bool
        else if (try? value.decode(Int64.self)) != nil || (try? value.decode(UInt64.self)) != nil { self = .integer }
        else if (try? value.decode(Double.self)) != nil { self = .number }
        else { _ = try value.decode(String.self); self = .string }
    }

    private struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init?(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }
}

// MARK: A minimal reader of the document's outline

/// Operations, schema properties (with their JSON kind), required lists and `$ref`s of an OpenAPI YAML
/// document written in block style with two-space indentation.
struct OpenAPIOutline {
    struct Operation: Hashable, Comparable, CustomStringConvertible {
        let method: String
        let path: String
        static func < (a: Self, b: Self) -> Bool { (a.path, a.method) < (b.path, b.method) }
        var description: String { "\(method) \(path)" }
    }

    struct Schema {
        var properties: [String: JSONKind] = [:]
        var required: Set<String> = []
    }

    private(set) var operations: [Operation] = []
    private(set) var schemas: [String: Schema] = [:]
    /// Every `$ref` target, and every `#/components/<section>/<name>` that is defined.
    private(set) var references: Set<String> = []
    private(set) var definitions: Set<String> = []

    static let methods: Set<String> = ["get", "put", "post", "delete", "patch", "head", "options", "trace"]

    init(yaml: String) throws {
        // (indent, key, value) of every `key: value` or `key:` line; comments and blanks skipped. In a list
        // item `- key: value` the key counts as indented past the dash, like the item's other keys.
        var lines: [(indent: Int, key: String, value: String)] = []
        for raw in yaml.components(separatedBy: "\n") {
            var indent = raw.prefix(while: { $0 == " " }).count
            var text = raw.dropFirst(indent)
            if text.hasPrefix("- ") {
                text = text.dropFirst(2)
                indent += 2
            }
            guard !text.isEmpty, !text.hasPrefix("#"), let colon = Self.keyEnd(text) else { continue }
            let key = Self.unquote(String(text[..<colon]))
            let value = String(text[text.index(after: colon)...]).trimmingCharacters(in: .whitespaces)
            lines.append((indent, key, value))
        }

        var section: [String] = []  // the keys of the enclosing lines, by depth (indent / 2)
        var property: String?
        var blockScalarIndent: Int?  // inside `key: |`, deeper lines are text
        for line in lines {
            if let block = blockScalarIndent {
                if line.indent > block { continue }
                blockScalarIndent = nil
            }
            if line.value == "|" || line.value == ">" { blockScalarIndent = line.indent }
            guard line.indent % 2 == 0 else { throw OutlineError("odd indentation at '\(line.key)'") }
            let depth = line.indent / 2
            // A list under a key adds a level without a key of its own.
            section = Array(section.prefix(depth)) + Array(repeating: "-", count: max(0, depth - section.count)) + [line.key]

            if line.key == "$ref" { references.insert(Self.unquote(line.value)) }
            switch (section.first, depth) {
            case ("paths", 2) where Self.methods.contains(line.key):
                operations.append(Operation(method: line.key.uppercased(), path: section[1]))
            case ("components", 2):
                definitions.insert("#/components/\(section[1])/\(line.key)")
                if section[1] == "schemas" { schemas[line.key] = Schema() }
            case ("components", 3) where section[1] == "schemas" && line.key == "required":
                schemas[section[2]]?.required = Set(Self.flowList(line.value))
            case ("components", 4) where section[1] == "schemas" && section[3] == "properties":
                property = line.key
                schemas[section[2]]?.properties[line.key] = .null  // set by its `type:` or `$ref:` below
            case ("components", 5) where section[1] == "schemas" && section[3] == "properties" && section[4] == property:
                if line.key == "type" { schemas[section[2]]?.properties[section[4]] = JSONKind(rawValue: line.value) }
                if line.key == "$ref" { schemas[section[2]]?.properties[section[4]] = .object }
            default:
                break
            }
        }
        guard !operations.isEmpty, !schemas.isEmpty else { throw OutlineError("no paths or no components/schemas found") }
    }

    /// The colon ending a mapping key (outside quotes), if the line is `key:` or `key: value`.
    private static func keyEnd(_ text: Substring) -> String.Index? {
        var quote: Character?
        for index in text.indices {
            let c = text[index]
            if let q = quote { if c == q { quote = nil }; continue }
            if c == "\"" || c == "'" { quote = c; continue }
            if c == ":" {
                let next = text.index(after: index)
                if next == text.endIndex || text[next] == " " { return index }
            }
        }
        return nil
    }

    private static func unquote(_ s: String) -> String {
        guard s.count >= 2, let first = s.first, first == "\"" || first == "'", s.last == first else { return s }
        return String(s.dropFirst().dropLast())
    }

    /// `[a, b, c]` → ["a", "b", "c"].
    private static func flowList(_ value: String) -> [String] {
        guard value.hasPrefix("["), value.hasSuffix("]") else { return [] }
        return value.dropFirst().dropLast().split(separator: ",").map { unquote($0.trimmingCharacters(in: .whitespaces)) }
    }
}

struct OutlineError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
