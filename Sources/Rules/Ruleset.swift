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
    /// Sets of recently delivered flows (see `FlowSet`), rendered before the chains.
    public var flowSets: [FlowSet]
    /// Verdict maps, rendered before the chains that look them up.
    public var maps: [VerdictMap]
    /// Kernel counting's set and overflow counter (nil: packets are logged).
    public var ownerCounters: OwnerCounterSet?
    public var chains: [Chain]
    /// The netdev table for packet sockets' frames, installed and removed with this one (nil:
    /// none asked for).
    public var packetSockets: PacketSocketTable?

    public init(family: Family = .inet, tableName: String, flowSets: [FlowSet] = [], maps: [VerdictMap] = [],
                ownerCounters: OwnerCounterSet? = nil, chains: [Chain], packetSockets: PacketSocketTable? = nil) {
        self.packetSockets = packetSockets
        self.family = family
        self.tableName = tableName
        self.flowSets = flowSets
        self.maps = maps
        self.ownerCounters = ownerCounters
        self.chains = chains
    }

    /// Name of the regular chain that classifies by cgroup; every base chain goes to it.
    public static let classifyChainName = "classify"

    /// Name of the verdict map for cgroups at `level`: `cgroups_l<level>`.
    public static func mapName(level: Int) -> String { "cgroups_l\(level)" }

    /// The log statement of `spec`, with the cgroup prefix when `cgroup` is given.
    static func logStatement(_ spec: RulesetSpec, cgroup: UInt64? = nil) -> LogStatement {
        LogStatement(
            prefix: cgroup.map { CgroupClassifier.logPrefix(id: $0, prefix: spec.prefix) } ?? spec.prefix,
            group: spec.group, snaplen: spec.snaplen, queueThreshold: spec.queueThreshold)
    }

    /// The flow sets `spec` asks for: one per address family, or none when new flows are batched
    /// (or nothing is logged: kernel counting).
    static func flowSets(_ spec: RulesetSpec) -> [FlowSet] {
        guard spec.newFlowSeconds > 0, !spec.countsOwners else { return [] }
        return FlowSet.Family.allCases.map {
            FlowSet(family: $0, size: RulesetSpec.newFlowSetSize, timeoutSeconds: spec.newFlowSeconds)
        }
    }

    /// The rules that log a packet with `log`'s prefix. Batched alone: count and log. With new
    /// flows delivered at once, each family's first rule catches a flow the kernel has not sent
    /// within `newFlowSeconds`: it remembers the flow, logs it with queue threshold 1 — which
    /// flushes the group's whole pending batch, so order is kept — and accepts (this table only),
    /// so the packet is not logged twice; every later packet of the flow is batched. When a flow
    /// set is full, adding fails, the rule stops there and the packet is batched like the rest.
    static func logRules(_ spec: RulesetSpec, matches: [Match], log: LogStatement) -> [Rule] {
        var rules: [Rule] = []
        for set in flowSets(spec) {
            var immediate = log
            immediate.group = spec.newFlowGroup ?? log.group
            immediate.queueThreshold = 1
            rules.append(Rule(matches: matches + [.flowNotIn(set)],
                              statements: [.addFlow(set), .counter, .log(immediate), .accept],
                              comment: Rule.logRuleComment))
        }
        rules.append(Rule(matches: matches, statements: [.counter, .log(log)], comment: Rule.logRuleComment))
        return rules
    }

    /// Kernel counting's rules: count the packet in the owners set under `cgroup` (0:
    /// unclassified) with its socket's uid, or — no full socket, or an inbound packet the kernel
    /// did not match to one early — without a uid; if the set is full, in the overflow counter.
    /// Each ends with accept, so every packet is counted exactly once.
    static func countRules(matches: [Match], cgroup: UInt64?) -> [Rule] {
        let key = OwnerCounterSet.cgroupKey(cgroup)
        return [
            Rule(matches: matches, statements: [.countOwner(withUID: true, cgroupKey: key), .accept]),
            Rule(matches: matches, statements: [.countOwner(withUID: false, cgroupKey: key), .accept]),
            Rule(matches: matches, statements: [.namedCounter(OwnerCounterSet.overflowCounterName), .accept]),
        ]
    }

    /// The rules for a packet in `cgroup` (nil: none classified it): logged, or counted.
    static func packetRules(_ spec: RulesetSpec, matches: [Match], cgroup: UInt64?) -> [Rule] {
        spec.countsOwners ? countRules(matches: matches, cgroup: cgroup)
                          : logRules(spec, matches: matches, log: logStatement(spec, cgroup: cgroup))
    }

    /// The rules of a cgroup's chain: count and log with its prefix (or count in the owners
    /// set), then accept, which ends this packet's walk through nfowner's base chain only
    /// (other tables' chains still see it).
    static func cgroupChainRules(_ cgroup: CgroupClassifier, spec: RulesetSpec) -> [Rule] {
        packetRules(spec, matches: [], cgroup: cgroup.id) + (spec.countsOwners ? [] : [Rule(matches: [], statements: [.accept])])
    }

    /// The ruleset for `spec`: one base chain per hook holding a single rule — optional uid/gid
    /// matches, a counter (read back by `status`), and the NFLOG statement.
    /// Throws what `spec.validate()` throws.
    public init(spec: RulesetSpec) throws(RulesError) {
        try spec.validate()
        var matches: [Match] = []
        if !spec.uids.isEmpty { matches.append(.socketUID(spec.uids)) }
        if !spec.gids.isEmpty { matches.append(.socketGID(spec.gids)) }
        let flowSets = Self.flowSets(spec)
        let counters = spec.countsOwners ? OwnerCounterSet() : nil
        guard spec.classifiesCgroups else {
            let rules = Self.packetRules(spec, matches: matches, cgroup: nil)
            self.init(
                tableName: spec.tableName, flowSets: flowSets, ownerCounters: counters,
                chains: spec.hooks.map { Chain(name: $0.rawValue, hook: $0, priority: spec.priority, rules: rules) },
                packetSockets: PacketSocketTable(spec: spec))
            return
        }
        // Classification: every base chain goes to one `classify` chain, after the uid/gid
        // matches. A positive match then goto (rather than `meta skuid != … return`) keeps the
        // single-rule semantics: a packet without a full socket never matches `meta skuid`, in
        // either polarity, so with `!= … return` it would fall through and be logged.
        let cgroups = spec.cgroups.sorted { $0.id < $1.id }
        let levels = spec.mapLevels
        let maps = levels.map { level in
            VerdictMap(name: Self.mapName(level: level), level: level,
                       elements: cgroups.filter { $0.level == level }.map { .init(key: $0.nftPath, chain: $0.chainName) })
        }
        var chains = cgroups.map { Chain(regular: $0.chainName, rules: Self.cgroupChainRules($0, spec: spec)) }
        // Deepest level first: the first map that knows one of the packet's ancestors names its
        // deepest known cgroup. Each lookup is O(1) in the number of cgroups.
        let lookups = levels.map { Rule(matches: [], statements: [.cgroupVerdictMap(level: $0, map: Self.mapName(level: $0))]) }
        let fallback = Self.packetRules(spec, matches: [], cgroup: nil)
        chains.append(Chain(regular: Self.classifyChainName, rules: lookups + (spec.logsUnclassified ? fallback : [])))
        let entry = Rule(matches: matches, statements: [.goto(Self.classifyChainName)])
        chains += spec.hooks.map { Chain(name: $0.rawValue, hook: $0, priority: spec.priority, rules: [entry]) }
        self.init(tableName: spec.tableName, flowSets: flowSets, maps: maps, ownerCounters: counters, chains: chains,
                  packetSockets: PacketSocketTable(spec: spec))
    }
}

/// A chain. A base chain (with a hook) is type filter, policy accept (nfowner observes, it never
/// drops); a regular chain (hook nil) is only entered by goto/jump.
public struct Chain: Sendable, Equatable {
    public var name: String
    public var hook: Hook?
    public var priority: Int32
    public var rules: [Rule]

    public init(name: String, hook: Hook?, priority: Int32, rules: [Rule]) {
        self.name = name
        self.hook = hook
        self.priority = priority
        self.rules = rules
    }

    /// A regular chain.
    public init(regular name: String, rules: [Rule]) {
        self.init(name: name, hook: nil, priority: 0, rules: rules)
    }
}

/// A named map from `socket cgroupv2 level N` keys to verdicts (`goto cg_<id>`).
public struct VerdictMap: Sendable, Equatable {
    public struct Element: Sendable, Equatable {
        /// The cgroup path as nft resolves it (see `CgroupClassifier.nftPath`).
        public var key: String
        /// The chain the packet goes to.
        public var chain: String

        public init(key: String, chain: String) {
            self.key = key
            self.chain = chain
        }
    }

    public var name: String
    public var level: Int
    public var elements: [Element]

    public init(name: String, level: Int, elements: [Element]) {
        self.name = name
        self.level = level
        self.elements = elements
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
    /// A packet of `set`'s address family whose flow is not in the set (`<flow key> != @set`).
    case flowNotIn(FlowSet)
}

/// Something a rule does to a matching packet.
public enum Statement: Sendable, Equatable {
    /// Counts packets and bytes (`counter`).
    case counter
    /// Sends a copy to an NFLOG group (`log … group N`).
    case log(LogStatement)
    /// Looks the socket's cgroup ancestor at `level` up in a verdict map
    /// (`socket cgroupv2 level N vmap @map`); no verdict when absent (or no socket).
    case cgroupVerdictMap(level: Int, map: String)
    /// Continues in another chain without coming back (`goto chain`).
    case goto(String)
    /// Ends the packet's walk through this table's base chain (`accept`).
    case accept
    /// Remembers the packet's flow in `set` (`add @set { <flow key> }`); the rule stops here
    /// when the set is full.
    case addFlow(FlowSet)
    /// Counts the packet in the owners set (`add @owners { meta iif . meta skuid . <cgroup> }`,
    /// or the no-uid key instead of `meta skuid`); the rule stops here when the set is full or,
    /// with `withUID`, when the packet has no full socket.
    case countOwner(withUID: Bool, cgroupKey: UInt32)
    /// Counts in a named counter object (`counter name NAME`).
    case namedCounter(String)
}

/// Kernel counting's dynamic set: one element per (input interface, socket uid, classified
/// cgroup), each with its own packet and byte counter, created by the kernel on a key's first
/// packet. The input interface tells the direction: 0 at the output hook, the receiving
/// interface at input. Reading it (`nft -j list set`) resolves no cgroup path: the cgroup is a
/// 32-bit key, the low bits of its id.
public struct OwnerCounterSet: Sendable, Equatable {
    /// The table kernel counting installs: a name of its own, so a logging ruleset that `rules
    /// install` left in place is never taken for it.
    public static let tableName = "nfowner_counters"
    public static let name = "owners"
    public static let overflowCounterName = "owners_overflow"
    /// Distinct keys held; past it packets are counted in the overflow counter.
    public static let size = 65_536
    /// The uid key of a packet without one.
    public static let noUID = UInt32.max

    public init() {}

    /// The 32-bit key of a cgroup id (0: unclassified). Cgroup ids on 64-bit kernels are small
    /// inode numbers; an id past 32 bits is told apart from others by its low bits only.
    public static func cgroupKey(_ id: UInt64?) -> UInt32 { UInt32(truncatingIfNeeded: id ?? 0) }
}

/// A set of flows whose first packet was delivered at once, each remembered for
/// `timeoutSeconds` (nft `set … { flags dynamic,timeout }`), so that only a flow's first packet
/// in that time bypasses batching. Kept in nfowner's own table: no conntrack is needed (a
/// `ct state new` match would turn conntrack on in a namespace that did not use it, and matches
/// every packet of a one-way UDP stream, which conntrack calls new until a reply is seen).
///
/// A flow is the address pair, the protocol and the two 16-bit words at the start of the
/// transport header: the ports for TCP, UDP, SCTP and UDP-Lite; type, code and checksum for
/// ICMP (so each echo request is a flow of its own, as each ping usually is a process of its own).
public struct FlowSet: Sendable, Equatable {
    public enum Family: String, Sendable, CaseIterable {
        case ipv4, ipv6
    }

    public var family: Family
    /// The most flows remembered; when full, new flows are batched like the rest.
    public var size: Int
    public var timeoutSeconds: UInt32

    public init(family: Family, size: Int, timeoutSeconds: UInt32) {
        self.family = family
        self.size = size
        self.timeoutSeconds = timeoutSeconds
    }

    /// `new_flows_v4`, `new_flows_v6`.
    public var name: String { family == .ipv4 ? "new_flows_v4" : "new_flows_v6" }
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
