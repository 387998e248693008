// What the user asks for: which packets to log to which NFLOG group. `Ruleset(spec:)` turns it
// into the nftables model; `NftScriptRenderer` turns that into text.

/// A netfilter hook nfowner attaches a chain to. Each hook gets one base chain named after it.
public enum Hook: String, Sendable, Hashable, CaseIterable {
    /// Locally generated packets (NF_INET_LOCAL_OUT). The only hook where every packet from a
    /// local socket still carries that socket, so NFLOG can attach uid/gid.
    case output
    /// Packets delivered to local sockets (NF_INET_LOCAL_IN). NFLOG carries uid/gid only for
    /// packets that went through early demux (not on loopback, not a SYN to a listener), but
    /// `socket cgroupv2` looks the socket up itself, so cgroup classification works for those too.
    case input
}

/// The user's choice of what to log. Defaults are chosen for the monitor in this package; each
/// field says why.
public struct RulesetSpec: Sendable, Equatable {
    /// Name of nfowner's own table in the `inet` family. nfowner creates, replaces and deletes
    /// this table and nothing else.
    public var tableName: String
    /// NFLOG group the packets go to (`log group N`). Default 5: group 0 is what a bare
    /// `log group` means and, like 1 and 2, is what ulogd and IDS examples use; 5 avoids them.
    public var group: UInt16
    /// Bytes of each packet copied to userspace (`snaplen`), 1…65535. Default 128: enough for an
    /// IPv4 header with options (≤ 60) or an IPv6 header (40) plus a TCP header with options
    /// (≤ 60), which is all the monitor parses; payload is never needed.
    public var snaplen: UInt32
    /// Packets the kernel batches before sending them to userspace (`queue-threshold`), or 0 to
    /// leave the group's own setting. Default 64, what the monitor asks of the group (a rule can
    /// only lower the group's threshold): one recv per 64 messages rather than 20 cost the monitor
    /// 126–154 instead of 212–215 ns per message at max rate (`bench/`), and a batch (≈ 64 × 300
    /// bytes) is still far below the receive buffer. The group's flush timeout (set by the
    /// listener) bounds latency at low rates.
    public var queueThreshold: UInt16
    /// Log prefix sent with every packet (NFULA_PREFIX), so a listener sharing the group can tell
    /// nfowner's packets apart. At most 127 bytes of ASCII letters, digits, space and `_-.:/=+,@`.
    public var prefix: String
    /// Log only packets whose socket belongs to one of these uids (`meta skuid`). Empty: any.
    public var uids: [UInt32]
    /// Log only packets whose socket belongs to one of these gids (`meta skgid`). Empty: any.
    /// With both uids and gids, a packet must match both.
    public var gids: [UInt32]
    /// Chain priority. Default 100: after mangle (-150), dstnat (-100), filter (0) and
    /// security (50) in the output hook, so the logged destination is the post-DNAT one and a
    /// packet an earlier filter chain dropped is not reported as sent.
    public var priority: Int32
    /// Hooks to attach to; one base chain each.
    public var hooks: [Hook]
    /// Cgroups to classify packets by: each packet is logged once, by its deepest cgroup in this
    /// list, with the prefix `"<prefix> cg=<id>"`; packets in none of them by the fallback rule
    /// with the plain prefix. Empty (and no `cgroupLevels`): the plain single-rule ruleset.
    public var cgroups: [CgroupClassifier]
    /// Levels whose verdict maps are created even while they hold no cgroup, so a running monitor
    /// can add elements at those depths later without a reload. The levels of `cgroups` are
    /// always added.
    public var cgroupLevels: [Int]
    /// Whether packets in none of `cgroups` are logged too (with the plain prefix). False makes
    /// `cgroups` a selector: only their packets (and their descendants') are logged.
    public var logsUnclassified: Bool
    /// Seconds a flow's first packet is remembered after it was delivered at once (queue
    /// threshold 1), 0…3600; 0 batches every packet. Default 2, the monitor's flow lifetime: a
    /// short-lived sender is looked up while its socket still exists (a batch waits up to the
    /// flush timeout, by when a one-shot sender has exited), and a long flow is delivered at
    /// once again about when the monitor's cached owner expires. See `FlowSet`.
    public var newFlowSeconds: UInt32
    /// The NFLOG group a flow's first packet is logged to; nil: `group`. A group of its own lets
    /// the monitor read new flows at once while it lets the bulk collect (`NflogSettings`).
    public var newFlowGroup: UInt16?
    /// Kernel counting (`[accounting] mode = "kernel"`): nothing is logged; every packet is
    /// counted in the table's set `owners` instead, by input interface (none for outbound),
    /// socket uid and classified cgroup (see `OwnerCounterSet`). Needs no per-packet upcall;
    /// the daemon reads the set's counters. nft only.
    public var countsOwners = false
    /// Interfaces whose packet sockets' frames are logged too (a netdev egress chain each, in
    /// `PacketSocketTable`); empty: none. nft only.
    public var packetSocketInterfaces: [String] = []

    public static let defaultTableName = "nfowner"
    public static let defaultGroup: UInt16 = 5
    public static let defaultSnaplen: UInt32 = 128
    public static let defaultQueueThreshold: UInt16 = 64
    public static let defaultPrefix = "nfowner"
    public static let defaultPriority: Int32 = 100
    public static let defaultNewFlowSeconds: UInt32 = 2
    public static let newFlowSecondsRange: ClosedRange<UInt32> = 0...3600
    /// Flows remembered per address family (about 100 bytes of kernel memory each, so at most
    /// ≈ 6.5 MiB per family); beyond it new flows are batched.
    public static let newFlowSetSize = 65_536

    public init(
        tableName: String = RulesetSpec.defaultTableName,
        group: UInt16 = RulesetSpec.defaultGroup,
        snaplen: UInt32 = RulesetSpec.defaultSnaplen,
        queueThreshold: UInt16 = RulesetSpec.defaultQueueThreshold,
        prefix: String = RulesetSpec.defaultPrefix,
        uids: [UInt32] = [],
        gids: [UInt32] = [],
        priority: Int32 = RulesetSpec.defaultPriority,
        hooks: [Hook] = [.output],
        cgroups: [CgroupClassifier] = [],
        cgroupLevels: [Int] = [],
        logsUnclassified: Bool = true,
        newFlowSeconds: UInt32 = RulesetSpec.defaultNewFlowSeconds,
        newFlowGroup: UInt16? = nil
    ) {
        self.tableName = tableName
        self.group = group
        self.snaplen = snaplen
        self.queueThreshold = queueThreshold
        self.prefix = prefix
        self.uids = uids
        self.gids = gids
        self.priority = priority
        self.hooks = hooks
        self.cgroups = cgroups
        self.cgroupLevels = cgroupLevels
        self.logsUnclassified = logsUnclassified
        self.newFlowSeconds = newFlowSeconds
        self.newFlowGroup = newFlowGroup
    }

    /// Whether the ruleset classifies by cgroup (verdict maps and per-cgroup chains).
    public var classifiesCgroups: Bool { !cgroups.isEmpty || !cgroupLevels.isEmpty }

    /// Every level that gets a verdict map, deepest first (the order the lookups run in).
    public var mapLevels: [Int] { Set(cgroupLevels + cgroups.map(\.level)).sorted(by: >) }

    /// Throws `.invalidSpec` or `.unsafeText` when the spec cannot be rendered; does nothing
    /// otherwise. Rendering calls this, so callers only need it to fail early (e.g. in `validate()`).
    public func validate() throws(RulesError) {
        _ = try NftText.validateIdentifier(tableName, what: "table name")
        _ = try NftText.validateQuoted(prefix, what: "log prefix", maxBytes: NftText.maxLogPrefixBytes)
        guard (1...65535).contains(snaplen) else {
            throw RulesError(.invalidSpec, "snaplen \(snaplen) is out of range: NFLOG copies 1…65535 bytes per packet")
        }
        guard !hooks.isEmpty else {
            throw RulesError(.invalidSpec, "no hook selected: nfowner needs at least one (output)")
        }
        guard Self.newFlowSecondsRange.contains(newFlowSeconds) else {
            throw RulesError(.invalidSpec, "new-flow memory of \(newFlowSeconds) s is out of range 0…3600 (0 batches every packet)")
        }
        try PacketSocketTable.validate(interfaces: packetSocketInterfaces)
        guard Set(hooks).count == hooks.count else {
            throw RulesError(.invalidSpec, "a hook is listed twice: \(hooks.map(\.rawValue).joined(separator: ", "))")
        }
        guard classifiesCgroups else { return }
        for level in cgroupLevels where !(1...CgroupClassifier.maxLevel).contains(level) {
            throw RulesError(.invalidSpec, "cgroup level \(level) is out of range 1…\(CgroupClassifier.maxLevel)")
        }
        var seen: Set<UInt64> = []
        for cgroup in cgroups {
            try cgroup.validate()
            guard seen.insert(cgroup.id).inserted else {
                throw RulesError(.invalidSpec, "cgroup \(cgroup.id) is listed twice")
            }
        }
        // The longest classified prefix must fit too (the fallback's was checked above).
        _ = try NftText.validateQuoted(CgroupClassifier.logPrefix(id: .max, prefix: prefix),
                                       what: "log prefix with cgroup id", maxBytes: NftText.maxLogPrefixBytes)
    }
}
