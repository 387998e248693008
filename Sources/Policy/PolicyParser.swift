// Policy file (TOML) → `Policy`. The file is untrusted input: every key is checked against the
// format (a typo is an error with a suggestion), every value against its type and meaning, and
// every problem is collected — not just the first — each with the line of its key, so
// `nfowner policy check` reports them all at once. Sizes are bounded (file, rules, list items).
//
//   default = "deny"        mode = "enforce"        fail = "closed"
//   directions = ["out"]    log_default = false
//   [[rule]]  name, action, log, and the matchers of `RuleKeys.matchers`

import Configuration
import PacketParsing
import TOMLKit

public enum PolicyParser {
    /// Largest policy file read, in bytes.
    public static let maxFileBytes = 1 << 20
    /// Most rules in one file.
    public static let maxRules = 10_000
    /// Most items in one matcher's list.
    public static let maxItems = 4096

    /// The top-level keys, in the order they are documented.
    public static let topLevelKeys = ["default", "mode", "fail", "directions", "log_default", "rule"]
    /// A rule's own keys, then its matchers.
    public static let ruleKeys = ["name", "action", "log"]
    public static let matcherKeys = ["uid", "user", "gid", "group", "unit", "cgroup", "exe", "comm", "direction",
                                     "proto", "dst", "src", "dst_port", "src_port", "icmp_type"]

    /// Reads and parses `path`; a file that cannot be read is one error.
    public static func load(path: String) -> PolicyCheck {
        do {
            let text = try TOMLDocument.readText(file: path, maxBytes: maxFileBytes,
                                                 missing: "give the path of an existing policy file")
            return parse(text, file: path)
        } catch {
            return PolicyCheck(policy: nil, errors: [PolicyError(error)], warnings: [])
        }
    }

    /// Parses policy text; `file` names it in messages.
    public static func parse(_ text: String, file: String) -> PolicyCheck {
        let document: TOMLDocument
        do {
            document = try TOMLDocument(parsing: text, file: file)
        } catch {
            return PolicyCheck(policy: nil, errors: [PolicyError(error)], warnings: [])
        }
        var reader = Reader(file: file, locator: document.locator)
        let policy = reader.policy(from: document.root)
        var warnings: [PolicyWarning] = []
        if reader.errors.isEmpty {
            for (rule, earlier) in policy.shadowedRules() {
                let later = policy.rules[rule], first = policy.rules[earlier]
                warnings.append(PolicyWarning(
                    "rule \"\(later.name)\" can never match: rule \"\(first.name)\"\(first.line.map { " (line \($0))" } ?? "") "
                        + "before it matches everything it would; move it up or remove it",
                    file: file, line: later.line))
            }
        }
        return PolicyCheck(policy: reader.errors.isEmpty ? policy : nil, errors: reader.errors, warnings: warnings)
    }
}

extension PolicyError {
    /// A config-file reading error (file, UTF-8, TOML syntax) as a policy error.
    init(_ error: ConfigError) {
        let code: Code = switch error.code {
        case .fileNotFound: .fileNotFound
        case .syntax: .syntax
        default: .unreadable
        }
        self.init(code, error.reason, file: error.file, line: error.line)
    }
}

private struct Reader {
    let file: String
    let locator: KeyLocator
    var errors: [PolicyError] = []

    init(file: String, locator: KeyLocator) {
        self.file = file
        self.locator = locator
    }

    mutating func policy(from root: TOMLTable) -> Policy {
        var policy = Policy()
        for key in root.keys.sorted() where !PolicyParser.topLevelKeys.contains(key) {
            if PolicyParser.matcherKeys.contains(key) || PolicyParser.ruleKeys.contains(key) {
                fail(.unknownKey, [key], "unknown top-level key \(printable(key)) (a rule's key: write it under a [[rule]] header)")
            } else if let suggestion = closest(to: key, among: PolicyParser.topLevelKeys) {
                fail(.unknownKey, [key], "unknown top-level key \(printable(key)) (did you mean \(suggestion)?)")
            } else {
                fail(.unknownKey, [key], "unknown top-level key \(printable(key)); the keys are "
                     + PolicyParser.topLevelKeys.joined(separator: ", "))
            }
        }
        if let action = choice(root["default"], ["default"], [PolicyAction.allow, .deny]) {
            policy.defaultAction = action
        }
        if let mode = choice(root["mode"], ["mode"], PolicyMode.allCases) { policy.mode = mode }
        if let fail = choice(root["fail"], ["fail"], FailMode.allCases) { policy.fail = fail }
        if let value = root["directions"], let directions = list(value, ["directions"], "\"out\" or \"in\"", { item in
            choiceItem(item, PolicyDirection.allCases)
        }) {
            policy.directions = Set(directions)
        }
        if let log = bool(root["log_default"], ["log_default"]) { policy.logDefault = log }
        if let value = root["rule"] {
            policy.rules = rules(value)
        }
        return policy
    }

    // MARK: Rules

    private mutating func rules(_ value: TOMLValueConvertible) -> [PolicyRule] {
        guard let array = value.array, array.allSatisfy({ $0.table != nil }) else {
            fail(.wrongType, ["rule"], "rule must be an array of tables, written [[rule]] (one header per rule), got "
                 + TOMLDocument.describe(value))
            return []
        }
        guard array.count <= PolicyParser.maxRules else {
            fail(.tooLarge, ["rule"], "the policy has \(array.count) rules; at most \(PolicyParser.maxRules) are accepted")
            return []
        }
        var rules: [PolicyRule] = []
        var names: [String: Int] = [:]
        for (index, item) in array.enumerated() {
            guard let table = item.table else { continue }
            let path = ["rule", String(index)]
            guard let rule = rule(table, path: path, number: index + 1) else { continue }
            if let first = names[rule.name] {
                fail(.duplicate, path + ["name"], "two rules are named \"\(printable(rule.name))\" (rules \(first) and \(index + 1)); "
                     + "audit events name the deciding rule, so names must differ")
            } else {
                names[rule.name] = index + 1
            }
            rules.append(rule)
        }
        return rules
    }

    private mutating func rule(_ table: TOMLTable, path: [String], number: Int) -> PolicyRule? {
        let allKeys = PolicyParser.ruleKeys + PolicyParser.matcherKeys
        var valid = true
        for key in table.keys.sorted() where !allKeys.contains(key) {
            valid = false
            if let suggestion = closest(to: key, among: allKeys) {
                fail(.unknownKey, path + [key], "unknown key \(printable(key)) in rule \(number) (did you mean \(suggestion)?)")
            } else if PolicyParser.topLevelKeys.contains(key) {
                fail(.unknownKey, path + [key], "\(key) is a top-level key: write it before the first [[rule]]")
            } else {
                fail(.unknownKey, path + [key], "unknown key \(printable(key)) in rule \(number); a rule's keys are "
                     + allKeys.joined(separator: ", "))
            }
        }
        var name = "rule \(number)"
        if let value = table["name"] {
            if let text = value.string, !text.isEmpty, text.utf8.count <= 128, !text.unicodeScalars.contains(where: isControl) {
                name = text
            } else {
                valid = false
                fail(value.string == nil ? .wrongType : .invalidValue, path + ["name"],
                     "a rule's name must be a string of 1 to 128 characters without control characters, got "
                        + TOMLDocument.describe(value))
            }
        }
        var action: PolicyAction?
        if let value = table["action"] {
            action = choice(value, path + ["action"], PolicyAction.allCases)
            if action == nil { valid = false }
        } else {
            valid = false
            fail(.missingKey, path, "rule \(number) (\(printable(name))) has no action; add action = \"allow\", \"deny\" or \"reject\"")
        }
        let log = table["log"].map { bool($0, path + ["log"]) } ?? false
        if table["log"] != nil, log == nil { valid = false }
        var matchers: [PolicyMatcher] = []
        for key in PolicyParser.matcherKeys {
            guard let value = table[key] else { continue }
            if let matcher = matcher(key, value, path + [key]) {
                matchers.append(matcher)
            } else {
                valid = false
            }
        }
        guard valid, let action else { return nil }
        return PolicyRule(name: name, action: action, log: log ?? false, matchers: matchers, line: locator.line(of: path))
    }

    // MARK: Matchers

    private mutating func matcher(_ key: String, _ value: TOMLValueConvertible, _ path: [String]) -> PolicyMatcher? {
        switch key {
        case "uid": return list(value, path, "uids (integers from 0 to 4294967294)", id).map { .uid($0) }
        case "gid": return list(value, path, "gids (integers from 0 to 4294967294)", id).map { .gid($0) }
        case "user": return list(value, path, "user names", principalName).map { .user($0) }
        case "group": return list(value, path, "group names", principalName).map { .group($0) }
        case "unit": return list(value, path, "unit names or globs (\"nginx.service\", \"user@*.service\")", unit).map { .unit($0) }
        case "cgroup": return list(value, path, "cgroup paths (\"/system.slice/nginx.service\")", cgroup).map { .cgroup($0) }
        case "exe": return list(value, path, "executable paths or globs (\"/usr/bin/curl\", \"/opt/*/bin/*\")", exe).map { .exe($0) }
        case "comm": return list(value, path, "process names (\"curl\")", comm).map { .comm($0) }
        case "direction":
            return list(value, path, "\"out\" or \"in\"", { choiceItem($0, PolicyDirection.allCases) }).map { .direction(Set($0)) }
        case "proto": return list(value, path, "protocols (\"tcp\", \"udp\", \"icmp\", \"icmpv6\", or numbers 0-255)", proto).map { .proto(Set($0)) }
        case "dst": return list(value, path, "CIDR blocks (\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.1\")", cidr).map { .destination($0) }
        case "src": return list(value, path, "CIDR blocks (\"10.0.0.0/8\", \"2001:db8::/32\", \"192.0.2.1\")", cidr).map { .source($0) }
        case "dst_port": return list(value, path, "ports (0-65535) or ranges (\"8000-8100\")", port).map { .destinationPort($0) }
        case "src_port": return list(value, path, "ports (0-65535) or ranges (\"8000-8100\")", port).map { .sourcePort($0) }
        case "icmp_type": return list(value, path, "ICMP types (0-255, \"echo-request\", \"echo-reply\", …)", icmpType).map { .icmpType($0) }
        default: return nil
        }
    }

    /// A matcher's value: one item or a non-empty array of them. Every bad item is reported;
    /// nil when any was bad. `item` returns the parsed item or a reason (and whether the type
    /// was wrong).
    private mutating func list<T>(_ value: TOMLValueConvertible, _ path: [String], _ expected: String,
                                  _ item: (TOMLValueConvertible) -> Result<T, ItemProblem>) -> [T]? {
        let items: [TOMLValueConvertible]
        if let array = value.array {
            items = Array(array)
            guard !items.isEmpty else {
                fail(.invalidValue, path, "\(dotted(path)) is an empty list, which matches nothing; list \(expected), or leave the key out to match any")
                return nil
            }
            guard items.count <= PolicyParser.maxItems else {
                fail(.tooLarge, path, "\(dotted(path)) lists \(items.count) items; at most \(PolicyParser.maxItems) are accepted")
                return nil
            }
        } else if value.table != nil {
            fail(.wrongType, path, "\(dotted(path)) must be \(expected) (one, or an array), got a table")
            return nil
        } else {
            items = [value]
        }
        var result: [T] = []
        var ok = true
        for (index, element) in items.enumerated() {
            switch item(element) {
            case .success(let parsed): result.append(parsed)
            case .failure(let problem):
                ok = false
                let which = value.array == nil ? dotted(path) : "\(dotted(path))[\(index)]"
                fail(problem.code, path, "\(which): \(problem.reason)")
            }
        }
        return ok ? result : nil
    }

    private mutating func choice<T: RawRepresentable>(_ value: TOMLValueConvertible?, _ path: [String],
                                                       _ cases: [T]) -> T? where T.RawValue == String {
        guard let value else { return nil }
        switch choiceItem(value, cases) {
        case .success(let found): return found
        case .failure(let problem):
            fail(problem.code, path, "\(dotted(path)): \(problem.reason)")
            return nil
        }
    }

    private mutating func bool(_ value: TOMLValueConvertible?, _ path: [String]) -> Bool? {
        guard let value else { return nil }
        guard let bool = value.bool else {
            fail(.wrongType, path, "\(dotted(path)) must be true or false, got \(TOMLDocument.describe(value))")
            return nil
        }
        return bool
    }

    private mutating func fail(_ code: PolicyError.Code, _ path: [String], _ reason: String) {
        errors.append(PolicyError(code, reason, file: file, line: locator.line(of: path)))
    }

    private func dotted(_ path: [String]) -> String {
        guard path.count >= 2, path[0] == "rule", let index = Int(path[1]) else { return path.joined(separator: ".") }
        return "rule \(index + 1)" + (path.count > 2 ? " " + path[2...].joined(separator: ".") : "")
    }
}

/// Why one item of a list was refused.
struct ItemProblem: Error {
    var code: PolicyError.Code
    var reason: String

    static func type(_ expected: String, _ value: TOMLValueConvertible) -> ItemProblem {
        ItemProblem(code: .wrongType, reason: "must be \(expected), got \(TOMLDocument.describe(value))")
    }

    static func invalid(_ reason: String) -> ItemProblem { ItemProblem(code: .invalidValue, reason: reason) }
}

// MARK: Items (pure functions of one TOML value)

private func choiceItem<T: RawRepresentable>(_ value: TOMLValueConvertible, _ cases: [T]) -> Result<T, ItemProblem>
    where T.RawValue == String {
    let names = cases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
    guard let text = value.string else { return .failure(.type("one of \(names)", value)) }
    if let found = cases.first(where: { $0.rawValue == text }) { return .success(found) }
    let hint = closest(to: text, among: cases.map(\.rawValue)).map { " (did you mean \"\($0)\"?)" } ?? ""
    return .failure(.invalid("\(quotedText(text)) is not one of \(names)\(hint)"))
}

private func id(_ value: TOMLValueConvertible) -> Result<UInt32, ItemProblem> {
    guard let int = value.int else { return .failure(.type("an integer", value)) }
    // (uid_t)-1 means "no change" to the kernel: never an owner.
    guard (0...Int(UInt32.max) - 1).contains(int) else {
        return .failure(ItemProblem(code: .outOfRange, reason: "\(int) is not an id from 0 to 4294967294"))
    }
    return .success(UInt32(int))
}

private func principalName(_ value: TOMLValueConvertible) -> Result<String, ItemProblem> {
    guard let text = value.string else { return .failure(.type("a name (a string; use uid/gid for numbers)", value)) }
    guard !text.isEmpty, text.utf8.count <= 64,
          !text.unicodeScalars.contains(where: { isControl($0) || $0 == " " || $0 == ":" || $0 == "/" })
    else { return .failure(.invalid("\(quotedText(text)) is not a user or group name (1 to 64 characters, no spaces, ':' or '/')")) }
    return .success(text)
}

private func unit(_ value: TOMLValueConvertible) -> Result<Glob, ItemProblem> {
    guard let text = value.string else { return .failure(.type("a unit name (a string)", value)) }
    guard !text.isEmpty, text.utf8.count <= 256, !text.contains("/"), !text.unicodeScalars.contains(where: isControl) else {
        return .failure(.invalid("\(quotedText(text)) is not a unit name (no '/': for a cgroup path use cgroup)"))
    }
    return .success(Glob(text))
}

private func cgroup(_ value: TOMLValueConvertible) -> Result<String, ItemProblem> {
    guard let text = value.string else { return .failure(.type("a cgroup path (a string)", value)) }
    var path = text.hasPrefix("/") ? text : "/" + text
    while path.count > 1, path.hasSuffix("/") { path.removeLast() }
    let parts = path.split(separator: "/")
    guard text.utf8.count <= 4096, !parts.contains(where: { $0 == ".." || $0 == "." }),
          !path.contains("//"), !path.unicodeScalars.contains(where: isControl)
    else { return .failure(.invalid("\(quotedText(text)) is not a cgroup path (relative to the cgroup2 root, no '.', '..' or '//')")) }
    return .success(path)
}

private func exe(_ value: TOMLValueConvertible) -> Result<Glob, ItemProblem> {
    guard let text = value.string else { return .failure(.type("an executable path (a string)", value)) }
    let glob = Glob(text)
    guard !text.isEmpty, text.utf8.count <= 4096, !text.unicodeScalars.contains(where: isControl),
          text.hasPrefix("/") || !glob.isLiteral
    else {
        return .failure(.invalid("\(quotedText(text)) is not an absolute path or a glob; an exe is matched against the "
                                 + "full path (\"/usr/bin/\(text)\", \"*/\(text)\"), or match the process name with comm"))
    }
    return .success(glob)
}

private func comm(_ value: TOMLValueConvertible) -> Result<Glob, ItemProblem> {
    guard let text = value.string else { return .failure(.type("a process name (a string)", value)) }
    let glob = Glob(text)
    guard !text.isEmpty, !text.unicodeScalars.contains(where: isControl) else {
        return .failure(.invalid("\(quotedText(text)) is not a process name"))
    }
    guard !glob.isLiteral || text.utf8.count <= 15 else {
        return .failure(.invalid("\(quotedText(text)) is longer than 15 bytes: the kernel cuts process names (comm) "
                                 + "to 15, so it never matches; match the executable with exe instead"))
    }
    return .success(glob)
}

/// Protocol names nfowner knows, with their numbers.
let protocolNames: [(String, UInt8)] = [("tcp", 6), ("udp", 17), ("icmp", 1), ("icmpv6", 58), ("ipv6-icmp", 58),
                                        ("sctp", 132), ("udplite", 136), ("gre", 47), ("esp", 50), ("ah", 51)]

private func proto(_ value: TOMLValueConvertible) -> Result<UInt8, ItemProblem> {
    if let number = integer(value, "a protocol number", as: UInt8.self) { return number }
    guard let text = value.string else { return .failure(.type("a protocol name or number", value)) }
    if let found = protocolNames.first(where: { $0.0 == text.lowercased() }) { return .success(found.1) }
    let hint = closest(to: text, among: protocolNames.map(\.0)).map { " (did you mean \"\($0)\"?)" } ?? ""
    return .failure(.invalid("\(quotedText(text)) is not a protocol nfowner knows\(hint); the names are "
                             + protocolNames.map(\.0).joined(separator: ", ") + ", or give the number"))
}

private func cidr(_ value: TOMLValueConvertible) -> Result<CIDR, ItemProblem> {
    guard let text = value.string else { return .failure(.type("an address or CIDR block (a string)", value)) }
    let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
    guard text.utf8.count <= 64, let address = IPAddress(parsing: String(parts[0])) else {
        return .failure(.invalid("\(quotedText(text)) is not a valid CIDR block: \(quotedText(String(parts[0]))) is not an IPv4 or IPv6 address"))
    }
    let maximum = if case .v4 = address { 32 } else { 128 }
    var length = maximum
    if parts.count == 2 {
        guard parts[1].utf8.count <= 3, parts[1].allSatisfy(\.isASCII), let parsed = Int(parts[1]), (0...maximum).contains(parsed) else {
            return .failure(.invalid("\(quotedText(text)) is not a valid CIDR block: the prefix length must be 0 to \(maximum)"))
        }
        length = parsed
    }
    guard let block = CIDR(address: address, prefixLength: length) else {
        let network = CIDR.network(of: address, prefixLength: length)
        return .failure(.invalid("\(quotedText(text)) is not a valid CIDR block: it has host bits set (did you mean \"\(network)/\(length)\"?)"))
    }
    return .success(block)
}

private func port(_ value: TOMLValueConvertible) -> Result<PortRange, ItemProblem> {
    if let port = integer(value, "a port", as: UInt16.self) { return port.map { PortRange($0, $0)! } }
    guard let text = value.string else { return .failure(.type("a port or a range \"LOW-HIGH\"", value)) }
    let parts = text.split(separator: "-", maxSplits: 1, omittingEmptySubsequences: false)
    let numbers = parts.map { part -> UInt16? in
        let trimmed = part.trimmingSpaces()
        guard !trimmed.isEmpty, trimmed.utf8.count <= 5, trimmed.allSatisfy({ $0.isASCII && $0.isNumber }) else { return nil }
        return UInt16(trimmed)
    }
    guard numbers.allSatisfy({ $0 != nil }), let lower = numbers.first ?? nil, let upper = numbers.last ?? nil else {
        return .failure(.invalid("\(quotedText(text)) is not a port range: write \"LOW-HIGH\" with ports from 0 to 65535"))
    }
    guard let range = PortRange(lower, upper) else {
        return .failure(.invalid("\(quotedText(text)) is not a port range: \(lower) is above \(upper) (did you mean \"\(upper)-\(lower)\"?)"))
    }
    return .success(range)
}

private func icmpType(_ value: TOMLValueConvertible) -> Result<ICMPTypeMatch, ItemProblem> {
    if let number = integer(value, "an ICMP type", as: UInt8.self) { return number.map { .number($0) } }
    guard let text = value.string else { return .failure(.type("an ICMP type number or name", value)) }
    if let name = ICMPTypeName(rawValue: text) { return .success(.named(name)) }
    let names = ICMPTypeName.allCases.map(\.rawValue)
    let hint = closest(to: text, among: names).map { " (did you mean \"\($0)\"?)" } ?? ""
    return .failure(.invalid("\(quotedText(text)) is not an ICMP type name\(hint); the names are "
                             + names.joined(separator: ", ") + ", or give the number"))
}

/// An integer item of type `T`: nil when `value` is no integer, an out-of-range failure naming
/// `what` when it does not fit.
private func integer<T: FixedWidthInteger>(_ value: TOMLValueConvertible, _ what: String, as: T.Type) -> Result<T, ItemProblem>? {
    guard let int = value.int else { return nil }
    guard let number = T(exactly: int) else {
        return .failure(ItemProblem(code: .outOfRange, reason: "\(int) is not \(what) from \(T.min) to \(T.max)"))
    }
    return .success(number)
}

private func quotedText(_ text: String) -> String { "\"" + printable(text) + "\"" }

private func isControl(_ scalar: Unicode.Scalar) -> Bool {
    scalar.value < 0x20 || scalar.value == 0x7F || (0x80..<0xA0).contains(scalar.value)
}

private extension Substring {
    func trimmingSpaces() -> Substring {
        let start = drop { $0 == " " }
        var end = start.endIndex
        while end > start.startIndex, start[start.index(before: end)] == " " { end = start.index(before: end) }
        return start[..<end]
    }
}

extension CIDR {
    /// `address` with the bits after `prefixLength` cleared.
    static func network(of address: IPAddress, prefixLength: Int) -> IPAddress {
        switch address {
        case .v4(let value): .v4(value & mask32(prefixLength))
        case .v6(let high, let low):
            .v6(high: high & mask128(prefixLength).0, low: low & mask128(prefixLength).1)
        }
    }
}
