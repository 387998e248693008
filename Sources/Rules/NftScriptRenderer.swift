// Ruleset -> nft script text. Pure: no process is run here (NftRunner does that), so every byte
// of output is covered by golden tests.
//
// Installing replaces the table in ONE `nft -f` transaction:
//
//     table inet nfowner            <- create if missing, so the delete below cannot fail
//     delete table inet nfowner     <- drop whatever was there (ours only)
//     table inet nfowner { … }      <- the full new definition
//
// nft sends the whole file as one netlink batch; the kernel applies all of it or none of it, so
// there is never a moment with no table or half a table, and a failure leaves the old one.

/// Renders nfowner's ruleset as nft scripts.
public enum NftScriptRenderer {
    /// Start of the table comment that carries the content hash.
    public static let hashCommentPrefix = "nfowner ruleset sha256="

    /// The script `nft -f` runs to install (or replace) nfowner's table for `spec`, recording
    /// `installer` in the table comment (nil: none, the format before installers were recorded).
    /// Throws `.invalidSpec`/`.unsafeText` when the spec cannot be rendered safely.
    public static func install(_ spec: RulesetSpec, installer: TableInstaller? = nil) throws(RulesError) -> String {
        try install(Ruleset(spec: spec), installer: installer)
    }

    /// The script that installs (or replaces) `ruleset`'s table atomically.
    public static func install(_ ruleset: Ruleset, installer: TableInstaller? = nil) throws(RulesError) -> String {
        let table = try tableReference(ruleset)
        let packetSockets = try ruleset.packetSockets.map { table throws(RulesError) in try replacement(table) } ?? ""
        return """
            # nfowner: replaces \(table) in one transaction; no other table is touched.
            \(table)
            delete \(table)
            \(try definition(ruleset, withHashComment: true, installer: installer))
            """ + packetSockets
    }

    /// The script that deletes nfowner's table. Creating it first makes the delete succeed when
    /// the table is absent, so removing is idempotent and still one transaction.
    /// With packet-socket interfaces, the netdev table of the same name goes in the same
    /// transaction (only then: a kernel without netdev tables refuses even to create one).
    public static func remove(_ spec: RulesetSpec) throws(RulesError) -> String {
        let name = try NftText.validateIdentifier(spec.tableName, what: "table name")
        let table = "table inet \(name)"
        let packetSockets = spec.packetSocketInterfaces.isEmpty ? "" : "table netdev \(name)\ndelete table netdev \(name)\n"
        return """
            # nfowner: deletes \(table); no other table is touched.
            \(table)
            delete \(table)

            """ + packetSockets
    }

    /// SHA-256 (lowercase hex) of the table definition without its hash comment: it changes
    /// whenever anything that reaches the kernel changes, and only then.
    public static func contentHash(_ spec: RulesetSpec) throws(RulesError) -> String {
        try contentHash(Ruleset(spec: spec))
    }

    public static func contentHash(_ ruleset: Ruleset) throws(RulesError) -> String {
        // The packet-socket table is part of what is installed: another interface list is
        // another ruleset.
        let packetSockets = try ruleset.packetSockets.map { table throws(RulesError) in try definition(table) } ?? ""
        return SHA256.hexDigest(Array((try definition(ruleset, withHashComment: false) + packetSockets).utf8))
    }

    /// `table inet NAME { … }` followed by a newline; with the hash comment (see `TableComment`)
    /// when asked.
    public static func definition(_ ruleset: Ruleset, withHashComment: Bool,
                                  installer: TableInstaller? = nil) throws(RulesError) -> String {
        var lines = ["\(try tableReference(ruleset)) {"]
        if withHashComment {
            let comment = TableComment(hash: try contentHash(ruleset), installer: installer).text
            lines.append("\tcomment \(try quoted(comment, what: "table comment", maxBytes: NftText.maxCommentBytes))")
        }
        for set in ruleset.flowSets {
            lines.append("\tset \(try NftText.validateIdentifier(set.name, what: "set name")) {")
            lines.append("\t\ttypeof \(flowKey(set.family))")
            lines.append("\t\tsize \(set.size)")
            lines.append("\t\tflags dynamic,timeout")
            lines.append("\t\ttimeout \(set.timeoutSeconds)s")
            lines.append("\t}")
        }
        for map in ruleset.maps {
            lines.append("\tmap \(try NftText.validateIdentifier(map.name, what: "map name")) {")
            lines.append("\t\ttypeof socket cgroupv2 level \(map.level) : verdict")
            if !map.elements.isEmpty {
                var elements: [String] = []
                for element in map.elements { elements.append(try self.element(element)) }
                lines.append("\t\telements = { " + elements.joined(separator: ",\n\t\t\t     ") + " }")
            }
            lines.append("\t}")
        }
        if ruleset.ownerCounters != nil {
            lines.append("\tset \(OwnerCounterSet.name) {")
            lines.append("\t\ttypeof meta iif . meta skuid . meta mark")
            lines.append("\t\tsize \(OwnerCounterSet.size)")
            lines.append("\t\tflags dynamic")
            lines.append("\t\tcounter")
            lines.append("\t}")
            lines.append("\tcounter \(OwnerCounterSet.overflowCounterName) {")
            lines.append("\t}")
        }
        for chain in ruleset.chains {
            lines.append("\tchain \(try NftText.validateIdentifier(chain.name, what: "chain name")) {")
            if let hook = chain.hook {
                lines.append("\t\ttype filter hook \(hook.rawValue) priority \(chain.priority); policy accept;")
            }
            for rule in chain.rules {
                lines.append("\t\t" + (try render(rule)))
            }
            lines.append("\t}")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// One rule on one line, matches first, in nft's own listing order.
    static func render(_ rule: Rule) throws(RulesError) -> String {
        var words: [String] = []
        for match in rule.matches {
            switch match {
            case .socketUID(let ids): words.append("meta skuid " + (try idSet(ids, what: "uid")))
            case .socketGID(let ids): words.append("meta skgid " + (try idSet(ids, what: "gid")))
            case .flowNotIn(let set):
                words.append("\(flowKey(set.family)) != @\(try NftText.validateIdentifier(set.name, what: "set name"))")
            }
        }
        for statement in rule.statements {
            switch statement {
            case .counter:
                words.append("counter")
            case .log(let log):
                var text = "log prefix \(try quoted(log.prefix, what: "log prefix", maxBytes: NftText.maxLogPrefixBytes))"
                text += " group \(log.group) snaplen \(log.snaplen)"
                if log.queueThreshold > 0 { text += " queue-threshold \(log.queueThreshold)" }
                words.append(text)
            case .cgroupVerdictMap(let level, let map):
                words.append("socket cgroupv2 level \(level) vmap @\(try NftText.validateIdentifier(map, what: "map name"))")
            case .goto(let chain):
                words.append("goto \(try NftText.validateIdentifier(chain, what: "chain name"))")
            case .accept:
                words.append("accept")
            case .addFlow(let set):
                words.append("add @\(try NftText.validateIdentifier(set.name, what: "set name")) { \(flowKey(set.family)) }")
            case .countOwner(let withUID, let cgroupKey):
                let uid = withUID ? "meta skuid" : String(OwnerCounterSet.noUID)
                words.append("add @\(OwnerCounterSet.name) { meta iif . \(uid) . \(cgroupKey) }")
            case .namedCounter(let name):
                words.append("counter name \(try NftText.validateIdentifier(name, what: "counter name"))")
            }
        }
        if let comment = rule.comment {
            words.append("comment " + (try quoted(comment, what: "rule comment", maxBytes: NftText.maxCommentBytes)))
        }
        return words.joined(separator: " ")
    }

    /// `"unified/system.slice/x" : goto cg_123`, the path validated (nft strings have no escapes).
    static func element(_ element: VerdictMap.Element) throws(RulesError) -> String {
        "\(try quoted(element.key, what: "cgroup path", maxBytes: CgroupClassifier.maxPathBytes)) : goto "
            + (try NftText.validateIdentifier(element.chain, what: "chain name"))
    }

    /// A flow as nft's concatenation (see `FlowSet`). `th` reads the transport header of any
    /// protocol; a packet too short for it makes the lookup fail, and the rule with it.
    static func flowKey(_ family: FlowSet.Family) -> String {
        let ip = family == .ipv4 ? "ip" : "ip6"
        return "\(ip) saddr . \(ip) daddr . meta l4proto . th sport . th dport"
    }

    /// `1000` or `{ 1000, 1001 }` (an anonymous set: any of them). Sorted and deduplicated, so
    /// the same selection always renders, and hashes, the same.
    private static func idSet(_ ids: [UInt32], what: String) throws(RulesError) -> String {
        let unique = Set(ids).sorted()
        guard let first = unique.first else {
            throw RulesError(.invalidSpec, "empty \(what) selector: leave it out to match any \(what)")
        }
        if unique.count == 1 { return String(first) }
        return "{ " + unique.map(String.init).joined(separator: ", ") + " }"
    }

    private static func quoted(_ text: String, what: String, maxBytes: Int) throws(RulesError) -> String {
        "\"" + (try NftText.validateQuoted(text, what: what, maxBytes: maxBytes)) + "\""
    }

    private static func tableReference(_ ruleset: Ruleset) throws(RulesError) -> String {
        "table \(ruleset.family.rawValue) \(try NftText.validateIdentifier(ruleset.tableName, what: "table name"))"
    }
}
