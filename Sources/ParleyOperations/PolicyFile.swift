import Foundation
import ParleyClient
import ParleyCrypto
import ParleyStore

/// The policy file's syntax: the TOML subset of config.toml (parley(5): `KEY = VALUE` lines, `#` comments)
/// plus what policies need: arrays of strings and one inline table, all on one line, and an `[attachments]`
/// table. Config.toml's parser lives in the chat window's module and knows only its settings, so the policy
/// has this one; both refuse what they do not understand with the line and the reason.
extension Policy {
    enum Value {
        case string(String)
        case bool(Bool)
        case integer(Int64)
        case array([Value])
        case table([(String, Value)])

        var kind: String {
            switch self {
            case .string: "a string"
            case .bool: "true or false"
            case .integer: "an integer"
            case .array: "an array"
            case .table: "a table"
            }
        }
    }

    public static func parse(_ text: String, file: String) throws(PolicyError) -> Policy {
        var policy = Policy()
        policy.file = file
        var section: String? = nil
        var limits: (size: UInt64?, types: [String]?) = (nil, nil)
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            func fail(_ reason: String) -> PolicyError { .malformed(file: file, line: number, reason: reason) }
            var scanner = Scanner(line: Array(String(raw).unicodeScalars), fail: fail)
            scanner.skipBlanks()
            if scanner.atEnd { continue }
            if scanner.peek == "[" {
                scanner.index += 1
                let name = try scanner.key()
                scanner.skipBlanks()
                guard scanner.take("]") else { throw fail("a table header ends with ]") }
                try scanner.end()
                guard name == "attachments" else { throw fail("unknown table [\(name)]; the only table is [attachments]") }
                guard policy.lines["attachments"] == nil else { throw fail("attachments is set twice") }
                policy.lines["attachments"] = number
                policy.attachments = .limited(maxSize: nil, allowedTypes: nil)
                section = name
                continue
            }
            let key = try scanner.key()
            scanner.skipBlanks()
            guard scanner.take("=") else { throw fail("expected KEY = VALUE") }
            let value = try scanner.value()
            try scanner.end()
            if section == "attachments" {
                try Self.applyLimit(key, value, &limits, fail)
                policy.attachments = .limited(maxSize: limits.size, allowedTypes: limits.types)
                continue
            }
            guard Self.keys.contains(key) else { throw fail("unknown key '\(key)' (parley-policy(5) lists the keys)") }
            guard policy.lines[key] == nil else { throw fail("\(key) is set twice") }
            policy.lines[key] = number
            try policy.apply(key, value, fail)
        }
        if policy.backup == .custodianOnly && policy.custodianKey == nil {
            throw .malformed(file: file, line: policy.lines["backup"] ?? 0,
                             reason: "backup = \"custodian-only\" needs custodian_key, the custodian's public key file")
        }
        if policy.custodianKey != nil && policy.backup != .custodianOnly {
            throw .malformed(file: file, line: policy.lines["custodian_key"] ?? 0,
                             reason: "custodian_key is used only with backup = \"custodian-only\"")
        }
        return policy
    }

    private mutating func apply(_ key: String, _ value: Value, _ fail: (String) -> PolicyError) throws(PolicyError) {
        func string() throws(PolicyError) -> String {
            guard case .string(let s) = value else { throw fail("\(key) takes a quoted string, not \(value.kind)") }
            return s
        }
        func oneOf<T: RawRepresentable & CaseIterable>(_: T.Type) throws(PolicyError) -> T where T.RawValue == String {
            let word = try string()
            guard let chosen = T(rawValue: word) else {
                throw fail("\(key) is one of " + T.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ") + ", not \"\(word)\"")
            }
            return chosen
        }
        switch key {
        case "require_verified":
            guard case .bool(let b) = value else { throw fail("require_verified takes true or false, not \(value.kind)") }
            requireVerified = b
        case "allowed_relays":
            guard case .array(let items) = value else { throw fail("allowed_relays takes an array of \"HOST\" or \"HOST:PORT\"") }
            var relays: [String] = []
            for item in items {
                guard case .string(let relay) = item, !relay.isEmpty, !relay.contains("@"), !relay.contains("/") else {
                    throw fail("allowed_relays takes an array of \"HOST\" or \"HOST:PORT\"")
                }
                relays.append(relay)
            }
            guard !relays.isEmpty else { throw fail("allowed_relays is empty: no account could exist (remove the key to allow every relay)") }
            allowedRelays = relays
        case "attachments":
            switch value {
            case .string("allow"): attachments = .allow
            case .string("block"): attachments = .block
            case .table(let members):
                var limits: (size: UInt64?, types: [String]?) = (nil, nil)
                for (name, member) in members { try Self.applyLimit(name, member, &limits, fail) }
                attachments = .limited(maxSize: limits.size, allowedTypes: limits.types)
            default: throw fail("attachments is \"allow\", \"block\" or { max_size = …, allowed_types = […] }")
            }
        case "min_disappearing", "max_retention":
            guard case .string(let text) = value, let seconds = DurationText.seconds(text), seconds > 0 else {
                throw fail("\(key) takes a duration such as \"30s\", \"10m\", \"1h\", \"7d\" or \"4w\"")
            }
            if key == "min_disappearing" { minDisappearing = seconds } else { maxRetention = seconds }
        case "backup": backup = try oneOf(BackupRule.self)
        case "custodian_key":
            var path = try string()
            // A relative path is read from the policy file's directory, not from wherever parley runs.
            if !path.hasPrefix("/"), let file { path = ((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(path) }
            do { custodianKey = try CustodianKey.readPublic(path) } catch { throw fail("custodian_key: \(error)") }
            custodianKeyFile = path
        case "unlock": unlock = try oneOf(UnlockRule.self)
        case "min_argon2id_ops":
            guard case .integer(let n) = value, (1...16).contains(n) else { throw fail("min_argon2id_ops takes an integer from 1 to 16") }
            minArgon2idOps = UInt64(n)
        case "min_argon2id_memory":
            guard let bytes = Self.size(value), bytes >= 8 << 10, bytes <= 4 << 30 else {
                throw fail("min_argon2id_memory takes a size from \"8KiB\" to \"4GiB\", such as \"256MiB\"")
            }
            minArgon2idMemory = bytes
        case "trust_new_identities":
            let word = try string()
            guard let chosen = TrustPolicy(rawValue: word) else {
                throw fail("trust_new_identities is one of " + TrustPolicy.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
                           + ", not \"\(word)\"")
            }
            trustNewIdentities = chosen
        default: throw fail("unknown key '\(key)'")
        }
    }

    private static func applyLimit(_ key: String, _ value: Value, _ limits: inout (size: UInt64?, types: [String]?),
                                   _ fail: (String) -> PolicyError) throws(PolicyError) {
        switch key {
        case "max_size":
            guard limits.size == nil else { throw fail("max_size is set twice") }
            guard let bytes = size(value) else { throw fail("max_size takes a size in bytes, or a string such as \"10MiB\"") }
            limits.size = bytes
        case "allowed_types":
            guard limits.types == nil else { throw fail("allowed_types is set twice") }
            guard case .array(let items) = value else { throw fail("allowed_types takes an array of content types such as \"image/*\"") }
            var types: [String] = []
            for item in items {
                guard case .string(let type) = item, type.split(separator: "/").count == 2 else {
                    throw fail("allowed_types takes an array of content types such as \"image/png\" or \"image/*\"")
                }
                types.append(type)
            }
            limits.types = types
        default: throw fail("unknown attachments key '\(key)' (max_size, allowed_types)")
        }
    }

    /// An integer of bytes, or "512KiB", "10MiB", "1GiB" (and KB, MB, GB: powers of 1000).
    static func size(_ value: Value) -> UInt64? {
        switch value {
        case .integer(let n): return n >= 0 ? UInt64(n) : nil
        case .string(let text):
            for (suffix, scale) in [("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("GB", 1_000_000_000)]
            where text.hasSuffix(suffix) {
                guard let count = UInt64(text.dropLast(suffix.count)) else { return nil }
                let (bytes, overflow) = count.multipliedReportingOverflow(by: UInt64(scale))
                return overflow ? nil : bytes
            }
            return UInt64(text)
        default: return nil
        }
    }
}

/// One line of the policy file, read left to right.
private struct Scanner {
    let line: [Unicode.Scalar]
    let fail: (String) -> PolicyError
    var index = 0

    var atEnd: Bool { index >= line.count || line[index] == "#" }
    var peek: Unicode.Scalar? { index < line.count ? line[index] : nil }

    mutating func skipBlanks() { while let c = peek, c == " " || c == "\t" || c == "\r" { index += 1 } }

    mutating func take(_ c: Unicode.Scalar) -> Bool {
        guard peek == c else { return false }
        index += 1
        return true
    }

    /// Nothing but blanks and a comment may follow.
    mutating func end() throws(PolicyError) {
        skipBlanks()
        guard atEnd else { throw fail("unexpected text after the value") }
    }

    /// A bare key (letters, digits, _ and -) or a quoted one.
    mutating func key() throws(PolicyError) -> String {
        skipBlanks()
        if peek == "\"" { return try string() }
        var key = ""
        while let c = peek, c.properties.isAlphabetic && c.isASCII || ("0"..."9").contains(c) || c == "_" || c == "-" {
            key.unicodeScalars.append(c); index += 1
        }
        guard !key.isEmpty else { throw fail("expected a key") }
        return key
    }

    mutating func value(depth: Int = 0) throws(PolicyError) -> Policy.Value {
        skipBlanks()
        guard let c = peek else { throw fail("a value is missing") }
        switch c {
        case "\"": return .string(try string())
        case "[":
            guard depth < 2 else { throw fail("values nest too deeply") }
            index += 1
            var items: [Policy.Value] = []
            skipBlanks()
            if take("]") { return .array(items) }
            while true {
                items.append(try value(depth: depth + 1))
                skipBlanks()
                if take("]") { return .array(items) }
                guard take(",") else { throw fail("expected , or ] in the array") }
                skipBlanks()
                if take("]") { return .array(items) }
            }
        case "{":
            guard depth < 2 else { throw fail("values nest too deeply") }
            index += 1
            var members: [(String, Policy.Value)] = []
            skipBlanks()
            if take("}") { return .table(members) }
            while true {
                let name = try key()
                skipBlanks()
                guard take("=") else { throw fail("expected KEY = VALUE in the inline table") }
                members.append((name, try value(depth: depth + 1)))
                skipBlanks()
                if take("}") { return .table(members) }
                guard take(",") else { throw fail("expected , or } in the inline table") }
            }
        default:
            var word = ""
            while let c = peek, c != " " && c != "\t" && c != "," && c != "]" && c != "}" && c != "#" && c != "\r" {
                word.unicodeScalars.append(c); index += 1
            }
            if word == "true" { return .bool(true) }
            if word == "false" { return .bool(false) }
            if let n = Int64(word.replacingOccurrences(of: "_", with: "")), !word.hasPrefix("_"), !word.hasSuffix("_") { return .integer(n) }
            throw fail(word.isEmpty ? "a value is missing" : "'\(word)' is not a value (strings are quoted)")
        }
    }

    /// A basic string: "…" with \" \\ \t \n escapes.
    mutating func string() throws(PolicyError) -> String {
        guard take("\"") else { throw fail("expected a quoted string") }
        var out = ""
        while let c = peek {
            index += 1
            if c == "\"" { return out }
            if c == "\\" {
                guard let e = peek else { break }
                index += 1
                switch e {
                case "\"": out += "\""
                case "\\": out += "\\"
                case "t": out += "\t"
                case "n": out += "\n"
                default: throw fail("unknown escape \\\(e) in a string")
                }
                continue
            }
            guard c.value >= 0x20 || c == "\t" else { throw fail("a control character in a string") }
            out.unicodeScalars.append(c)
        }
        throw fail("a string is not closed")
    }
}
