// Reads and validates the config file. TOMLKit does the TOML syntax; everything after that is ours:
// every table and key is checked against the schema (a typo is an error with a suggestion, never
// silently ignored), every value against its type and range, and every error carries the file
// and the line of the offending key.
//
// Note on TOMLKit 0.6.0: its parsed tables are never freed (the wrapper has no deinit), so each
// parse leaks the document. The config is read once per run, so this is accepted.

import Foundation
import TOMLKit

public enum ConfigLoader {
    /// Where nfowner looks when no `--config` is given. A missing file there means "use the
    /// embedded defaults"; a missing file named explicitly is an error.
    public static let defaultPath = "/etc/nfowner/nfowner.toml"
    /// Largest config file read, in bytes; a config is a few hundred bytes, this only stops
    /// `--config /dev/zero` from eating memory.
    public static let maxFileBytes = 1 << 20

    /// Reads and parses `path`, or `defaultPath` when nil. Throws `.fileNotFound` when an explicit
    /// path does not exist, `.unreadable` when the file cannot be read, and whatever `parse` throws.
    public static func load(path: String? = nil) throws(ConfigError) -> NfownerConfig {
        let file = path ?? defaultPath
        if path == nil, !FileManager.default.fileExists(atPath: file) { return NfownerConfig() }
        let text = try TOMLDocument.readText(file: file, maxBytes: maxFileBytes,
                                             missing: "give an existing config file or leave out --config to use the defaults")
        return try parse(text, file: file)
    }

    /// Parses and validates config text. `file` names the source in errors. Every key is
    /// optional; missing keys keep `NfownerConfig()`'s defaults.
    public static func parse(_ text: String, file: String) throws(ConfigError) -> NfownerConfig {
        let document = try TOMLDocument(parsing: text, file: file)
        let reader = Reader(file: file, locator: document.locator)
        return try reader.config(from: document.root)
    }
}

/// The file's layout: tables and their keys, in the order they are validated and documented.
enum Schema {
    static let tables: [(name: String, keys: [String])] = [
        ("nflog", ["groups", "snaplen", "queue_threshold", "flush_timeout", "receive_buffer", "coalesce_us", "new_flow_seconds", "new_flow_group", "hold_new_flows", "hold_queue"]),
        ("hooks", ["input", "packet_sockets"]),
        ("select", ["users", "groups", "cgroups"]),
        ("cgroups", ["levels", "follow"]),
        ("accounting", ["mode", "bucket_s", "max_remotes", "max_rows", "input"]),
        ("storage", ["path", "retention_days", "max_mb"]),
        ("metrics", ["listen", "remote_labels"]),
        ("run", ["keep_rules"]),
        ("enforce", ["policy", "queue", "queues", "audit_log"]),
    ]

    static func keys(of table: String) -> [String] {
        tables.first { $0.name == table }?.keys ?? []
    }
}

/// Maps the TOMLKit document onto `NfownerConfig`, throwing the first problem found.
private struct Reader {
    let file: String
    let locator: KeyLocator

    func config(from root: TOMLTable) throws(ConfigError) -> NfownerConfig {
        for key in root.keys.sorted() where !Schema.tables.contains(where: { $0.name == key }) {
            throw unknown(table: key, value: root[key])
        }
        var config = NfownerConfig()
        if let nflog = try table("nflog", in: root) {
            let path = ["nflog"]
            if let groups = try integers(nflog, path + ["groups"], element: 0...65535, count: 1...8, noun: "NFLOG groups") {
                config.nflog.groups = groups.map { UInt16(truncatingIfNeeded: $0) }
            }
            if let snaplen = try integer(nflog, path + ["snaplen"], 1...65535) {
                config.nflog.snaplen = UInt32(truncatingIfNeeded: snaplen)
            }
            if let threshold = try integer(nflog, path + ["queue_threshold"], 1...65535) {
                config.nflog.queueThreshold = UInt16(truncatingIfNeeded: threshold)
            }
            if let timeout = try integer(nflog, path + ["flush_timeout"], 1...6000) {
                config.nflog.flushTimeout = UInt32(truncatingIfNeeded: timeout)
            }
            if let buffer = try integer(nflog, path + ["receive_buffer"], 65536...(1 << 30)) {
                config.nflog.receiveBuffer = buffer
            }
            let coalesceRange = NfownerConfig.Nflog.coalesceMicrosecondsRange
            if let coalesce = try integer(nflog, path + ["coalesce_us"],
                                          Int(coalesceRange.lowerBound)...Int(coalesceRange.upperBound)) {
                config.nflog.coalesceMicroseconds = UInt32(truncatingIfNeeded: coalesce)
            }
            if let seconds = try integer(nflog, path + ["new_flow_seconds"], 0...3600) {
                config.nflog.newFlowSeconds = UInt32(truncatingIfNeeded: seconds)
            }
            if let group = try integer(nflog, path + ["new_flow_group"], 0...65535) {
                guard !config.nflog.groups.contains(UInt16(group)) else {
                    throw error(.duplicate, path + ["new_flow_group"],
                                "nflog.new_flow_group \(group) is also in nflog.groups; new flows need a group of their own")
                }
                config.nflog.newFlowGroup = UInt16(truncatingIfNeeded: group)
            }
            if let hold = try bool(nflog, path + ["hold_new_flows"]) {
                config.nflog.holdNewFlows = hold
            }
            if let queue = try integer(nflog, path + ["hold_queue"], 0...65535) {
                config.nflog.holdQueue = UInt16(truncatingIfNeeded: queue)
            }
        }
        if let hooks = try table("hooks", in: root) {
            if let input = try bool(hooks, ["hooks", "input"]) { config.hooks.input = input }
            if let interfaces = try interfaceNames(hooks, ["hooks", "packet_sockets"]) {
                config.hooks.packetSockets = interfaces
            }
        }
        if let select = try table("select", in: root) {
            if let users = try principals(select, ["select", "users"], kind: "user", idName: "uid") {
                config.select.users = users
            }
            if let groups = try principals(select, ["select", "groups"], kind: "group", idName: "gid") {
                config.select.groups = groups
            }
            if let cgroups = try cgroupSelectors(select, ["select", "cgroups"]) {
                config.select.cgroups = cgroups
            }
        }
        if let cgroups = try table("cgroups", in: root) {
            if let levels = try integers(cgroups, ["cgroups", "levels"], element: 1...16, count: 0...16, noun: "levels") {
                config.cgroups.levels = levels
            }
            if let follow = try bool(cgroups, ["cgroups", "follow"]) {
                config.cgroups.follow = follow
            }
        }
        if let accounting = try table("accounting", in: root) {
            let path = ["accounting"]
            if let mode = try string(accounting, path + ["mode"]) {
                guard let known = NfownerConfig.Accounting.Mode(rawValue: mode) else {
                    throw error(.outOfRange, path + ["mode"], "accounting.mode must be \"packets\" or \"kernel\", got \(quoted(mode))")
                }
                config.accounting.mode = known
            }
            if let seconds = try integer(accounting, path + ["bucket_s"], 1...86400) {
                config.accounting.bucketSeconds = seconds
            }
            if let remotes = try integer(accounting, path + ["max_remotes"], 0...100_000) {
                config.accounting.maxRemotes = remotes
            }
            if let rows = try integer(accounting, path + ["max_rows"], 100...10_000_000) {
                config.accounting.maxRows = rows
            }
            if let input = try bool(accounting, path + ["input"]) {
                config.accounting.input = input
            }
        }
        if let storage = try table("storage", in: root) {
            let path = ["storage"]
            if let file = try string(storage, path + ["path"]) {
                guard file.isEmpty || file.hasPrefix("/") else {
                    throw error(.outOfRange, path + ["path"], "storage.path must be an absolute path (or \"\" for no history), got \(quoted(file))")
                }
                config.storage.path = file
            }
            if let days = try integer(storage, path + ["retention_days"], 1...36500) {
                config.storage.retentionDays = days
            }
            if let megabytes = try integer(storage, path + ["max_mb"], 1...1_048_576) {
                config.storage.maxMegabytes = megabytes
            }
        }
        if let metrics = try table("metrics", in: root) {
            if let listen = try string(metrics, ["metrics", "listen"]) {
                guard listen.isEmpty || ListenAddress(listen) != nil else {
                    throw error(.outOfRange, ["metrics", "listen"], "metrics.listen must be ADDRESS:PORT (e.g. \"127.0.0.1:9465\", \"[::1]:9465\") or \"\" to turn metrics off, got \(quoted(listen))")
                }
                config.metrics.listen = listen
            }
            if let labels = try bool(metrics, ["metrics", "remote_labels"]) {
                config.metrics.remoteLabels = labels
            }
        }
        if let run = try table("run", in: root), let keep = try bool(run, ["run", "keep_rules"]) {
            config.run.keepRules = keep
        }
        if let enforce = try table("enforce", in: root) {
            for (key, what) in [("policy", "the policy file"), ("audit_log", "the audit log")] {
                guard let file = try string(enforce, ["enforce", key]) else { continue }
                guard file.isEmpty || file.hasPrefix("/") else {
                    throw error(.outOfRange, ["enforce", key], "enforce.\(key) must be an absolute path to \(what) (or \"\" for none), got \(quoted(file))")
                }
                if key == "policy" { config.enforce.policy = file } else { config.enforce.auditLog = file }
            }
            if let queue = try integer(enforce, ["enforce", "queue"], 0...65535) { config.enforce.queue = queue }
            if let queues = try integer(enforce, ["enforce", "queues"], 1...16) { config.enforce.queues = queues }
            guard config.enforce.queue + config.enforce.queues - 1 <= 65535 else {
                throw error(.outOfRange, ["enforce", "queues"], "enforce.queue \(config.enforce.queue) with enforce.queues \(config.enforce.queues) goes past queue 65535; choose a lower enforce.queue")
            }
        }
        return config
    }

    // MARK: Tables and keys

    /// The sub-table `name` after checking its keys, or nil when the file does not have it.
    private func table(_ name: String, in root: TOMLTable) throws(ConfigError) -> TOMLTable? {
        guard let value = root[name] else { return nil }
        guard let table = value.table else {
            throw error(.wrongType, [name], "[\(name)] must be a table, got \(describe(value))")
        }
        let known = Schema.keys(of: name)
        for key in table.keys.sorted() where !known.contains(key) {
            throw unknown(key: key, in: name, value: table[key])
        }
        return table
    }

    private func unknown(table name: String, value: TOMLValueConvertible?) -> ConfigError {
        let tables = Schema.tables.map(\.name)
        if value?.type != .table, let owner = Schema.tables.first(where: { $0.keys.contains(name) }) {
            return error(.unknownKey, [name], "unknown top-level key \(name) (did you mean \(owner.name).\(name), under [\(owner.name)]?)")
        }
        if let suggestion = closest(to: name, among: tables) {
            return error(.unknownKey, [name], "unknown table [\(printable(name))] (did you mean [\(suggestion)]?)")
        }
        return error(.unknownKey, [name], "unknown table [\(printable(name))]; the tables are "
            + tables.map { "[\($0)]" }.joined(separator: ", "))
    }

    private func unknown(key: String, in table: String, value: TOMLValueConvertible?) -> ConfigError {
        let known = Schema.keys(of: table)
        let path = [table, key]
        if let suggestion = closest(to: key, among: known) {
            return error(.unknownKey, path, "unknown key \(table).\(printable(key)) (did you mean \(table).\(suggestion)?)")
        }
        if let owner = Schema.tables.first(where: { $0.name != table && $0.keys.contains(key) }) {
            return error(.unknownKey, path, "unknown key \(table).\(printable(key)) (did you mean \(owner.name).\(key), under [\(owner.name)]?)")
        }
        return error(.unknownKey, path, "unknown key \(table).\(printable(key)); the keys of [\(table)] are "
            + known.joined(separator: ", "))
    }

    // MARK: Values

    private func integer(_ table: TOMLTable, _ path: [String], _ range: ClosedRange<Int>) throws(ConfigError) -> Int? {
        guard let key = path.last, let value = table[key] else { return nil }
        guard let int = value.int, range.contains(int) else {
            throw error(value.type == .int ? .outOfRange : .wrongType, path,
                        "\(dotted(path)) must be an integer from \(range.lowerBound) to \(range.upperBound), got \(describe(value))")
        }
        return int
    }

    private func string(_ table: TOMLTable, _ path: [String]) throws(ConfigError) -> String? {
        guard let key = path.last, let value = table[key] else { return nil }
        guard let string = value.string else {
            throw error(.wrongType, path, "\(dotted(path)) must be a string, got \(describe(value))")
        }
        guard !string.unicodeScalars.contains(where: isControl) else {
            throw error(.wrongType, path, "\(dotted(path)) must not contain control characters")
        }
        return string
    }

    private func bool(_ table: TOMLTable, _ path: [String]) throws(ConfigError) -> Bool? {
        guard let key = path.last, let value = table[key] else { return nil }
        guard let bool = value.bool else {
            throw error(.wrongType, path, "\(dotted(path)) must be true or false, got \(describe(value))")
        }
        return bool
    }

    private func array(_ table: TOMLTable, _ path: [String], expected: String) throws(ConfigError) -> [TOMLValueConvertible]? {
        guard let key = path.last, let value = table[key] else { return nil }
        guard let array = value.array else {
            throw error(.wrongType, path, "\(dotted(path)) must be \(expected), got \(describe(value))")
        }
        return Array(array)
    }

    /// An array of unique integers, each in `element`, with a length in `count`.
    private func integers(_ table: TOMLTable, _ path: [String], element: ClosedRange<Int>, count: ClosedRange<Int>,
                          noun: String) throws(ConfigError) -> [Int]? {
        let expected = "an array of \(count.lowerBound == 0 ? "up to \(count.upperBound)" : "\(count.lowerBound) to \(count.upperBound)") integers from \(element.lowerBound) to \(element.upperBound)"
        guard let items = try array(table, path, expected: expected) else { return nil }
        guard count.contains(items.count) else {
            throw error(.outOfRange, path, "\(dotted(path)) must list \(count.lowerBound == 0 ? "at most \(count.upperBound)" : "\(count.lowerBound) to \(count.upperBound)") \(noun), got \(items.count)")
        }
        var result: [Int] = []
        for (index, item) in items.enumerated() {
            guard let int = item.int, element.contains(int) else {
                throw error(item.type == .int ? .outOfRange : .wrongType, path,
                            "\(dotted(path))[\(index)] must be an integer from \(element.lowerBound) to \(element.upperBound), got \(describe(item))")
            }
            guard !result.contains(int) else {
                throw error(.duplicate, path, "\(dotted(path)) lists \(int) twice")
            }
            result.append(int)
        }
        return result
    }

    private func principals(_ table: TOMLTable, _ path: [String], kind: String, idName: String) throws(ConfigError) -> [Principal]? {
        let maxID = Int(UInt32.max) - 1  // (uid_t)-1 means "no change" to the kernel, never an owner
        let expected = "an array of \(kind) names (strings) or \(idName)s (integers from 0 to \(maxID))"
        guard let items = try array(table, path, expected: expected) else { return nil }
        var result: [Principal] = []
        for (index, item) in items.enumerated() {
            let principal: Principal
            if let name = item.string {
                if let problem = PrincipalRules.problem(withName: name) {
                    throw error(.invalidName, path, "\(dotted(path))[\(index)]: the \(kind) name \(quoted(name)) \(problem)")
                }
                principal = .name(name)
            } else if let id = item.int {
                guard (0...maxID).contains(id) else {
                    throw error(.outOfRange, path, "\(dotted(path))[\(index)] must be a \(idName) from 0 to \(maxID), got \(id)")
                }
                principal = .id(UInt32(truncatingIfNeeded: id))
            } else {
                throw error(.wrongType, path, "\(dotted(path))[\(index)] must be a \(kind) name or a \(idName), got \(describe(item))")
            }
            guard !result.contains(principal) else {
                throw error(.duplicate, path, "\(dotted(path)) lists \(TOMLText.principal(principal)) twice")
            }
            result.append(principal)
        }
        return result
    }

    /// An array of distinct interface names (Linux's rules: 1-15 bytes, no '/', no space).
    private func interfaceNames(_ table: TOMLTable, _ path: [String]) throws(ConfigError) -> [String]? {
        let expected = "an array of interface names (strings), e.g. [\"eth0\"]"
        guard let items = try array(table, path, expected: expected) else { return nil }
        var result: [String] = []
        for (index, item) in items.enumerated() {
            guard let name = item.string else {
                throw error(.wrongType, path, "\(dotted(path))[\(index)] must be an interface name (a string), got \(describe(item))")
            }
            guard (1...15).contains(name.utf8.count), name != ".", name != "..",
                  name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || "_-.@:".contains($0)) }) else {
                throw error(.invalidName, path, "\(dotted(path))[\(index)]: \(quoted(name)) is not an interface name (1-15 characters: letters, digits, _-.@:); see `ip link`")
            }
            guard !result.contains(name) else {
                throw error(.duplicate, path, "\(dotted(path)) lists \(quoted(name)) twice")
            }
            result.append(name)
        }
        return result
    }

    private func cgroupSelectors(_ table: TOMLTable, _ path: [String]) throws(ConfigError) -> [CgroupSelector]? {
        let expected = "an array of cgroup paths or unit names (strings)"
        guard let items = try array(table, path, expected: expected) else { return nil }
        var result: [CgroupSelector] = []
        for (index, item) in items.enumerated() {
            guard let text = item.string else {
                throw error(.wrongType, path, "\(dotted(path))[\(index)] must be a cgroup path or unit name (a string), got \(describe(item))")
            }
            let selector: CgroupSelector
            switch CgroupSelector.classify(text) {
            case .success(let valid): selector = valid
            case .failure(let reason): throw error(.invalidCgroup, path, "\(dotted(path))[\(index)]: \(reason.text)")
            }
            guard !result.contains(selector) else {
                throw error(.duplicate, path, "\(dotted(path)) lists \(quoted(selector.description)) twice")
            }
            result.append(selector)
        }
        return result
    }

    // MARK: Errors

    private func error(_ code: ConfigError.Code, _ path: [String], _ reason: String) -> ConfigError {
        ConfigError(code, reason, file: file, line: locator.line(of: path))
    }

    private func dotted(_ path: [String]) -> String { path.joined(separator: ".") }

    private func describe(_ value: TOMLValueConvertible) -> String { TOMLDocument.describe(value) }
}

/// `text` with control characters escaped, so a message is always one line.
public func printable(_ text: String) -> String {
    text.unicodeScalars.contains(where: isControl) ? TOMLText.escapeBasic(text) : text
}
