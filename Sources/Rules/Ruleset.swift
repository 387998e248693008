// The nftables side as values: one table, base chains, rules made of matches and statements.
// Kept independent of any syntax so a later iptables backend can render the same model, and
// so new pieces (cgroup verdict maps, an input chain) are new cases rather than new strings.

/// nfowner's table: everything nfowner installs lives here and nowhere else.
public struct Ruleset: Sendable, Equatable {
    /// Address family of the table. `inet` sees IPv4 and IPv6 with one chain per hook.
    public enum Family: String, Sendable, Equatable {
        case inet
    }

    public var family: Family
    public var tableName: String
    public var chains: [Chain]

    public init(family: Family = .inet, tableName: String, chains: [Chain]) {
        self.family = family
        self.tableName = tableName
        self.chains = chains
    }

    /// The ruleset for `spec`: one base chain per hook holding a single rule — optional uid/gid
    /// matches, a counter (read back by `status`), and the NFLOG statement.
    /// Throws what `spec.validate()` throws.
    public init(spec: RulesetSpec) throws(RulesError) {
        try spec.validate()
        var matches: [Match] = []
        if !spec.uids.isEmpty { matches.append(.socketUID(spec.uids)) }
        if !spec.gids.isEmpty { matches.append(.socketGID(spec.gids)) }
        let log = LogStatement(
            prefix: spec.prefix, group: spec.group, snaplen: spec.snaplen, queueThreshold: spec.queueThreshold)
        let rule = Rule(matches: matches, statements: [.counter, .log(log)], comment: Rule.logRuleComment)
        self.init(
            tableName: spec.tableName,
            chains: spec.hooks.map { Chain(name: $0.rawValue, hook: $0, priority: spec.priority, rules: [rule]) })
    }
}

/// A base chain: attached to a hook, type filter, policy accept (nfowner observes, it never drops).
public struct Chain: Sendable, Equatable {
    public var name: String
    public var hook: Hook
    public var priority: Int32
    public var rules: [Rule]

    public init(name: String, hook: Hook, priority: Int32, rules: [Rule]) {
        self.name = name
        self.hook = hook
        self.priority = priority
        self.rules = rules
    }
}

/// One rule: all matches must hold, then the statements run in order.
public struct Rule: Sendable, Equatable {
    /// Comment on the logging rule, used by `status` to find its counter in a listing.
    public static let logRuleComment = "nfowner log"

    public var matches: [Match]
    public var statements: [Statement]
    public var comment: String?

    public init(matches: [Match], statements: [Statement], comment: String? = nil) {
        self.matches = matches
        self.statements = statements
        self.comment = comment
    }
}

/// A packet selector. Within one match, the listed values are alternatives (any of them).
public enum Match: Sendable, Equatable {
    /// The owning socket's uid (`meta skuid`). Packets without a full socket never match.
    case socketUID([UInt32])
    /// The owning socket's gid (`meta skgid`). Packets without a full socket never match.
    case socketGID([UInt32])
}

/// Something a rule does to a matching packet.
public enum Statement: Sendable, Equatable {
    /// Counts packets and bytes (`counter`).
    case counter
    /// Sends a copy to an NFLOG group (`log … group N`).
    case log(LogStatement)
}

/// The NFLOG statement's parameters.
public struct LogStatement: Sendable, Equatable {
    public var prefix: String
    public var group: UInt16
    /// Bytes copied per packet.
    public var snaplen: UInt32
    /// Packets per batch, or 0 to leave the group's setting.
    public var queueThreshold: UInt16

    public init(prefix: String, group: UInt16, snaplen: UInt32, queueThreshold: UInt16) {
        self.prefix = prefix
        self.group = group
        self.snaplen = snaplen
        self.queueThreshold = queueThreshold
    }
}
