// Packet sockets (AF_PACKET) send link-layer frames that never pass the IP hooks, so the inet
// table never sees them. A netdev table's egress chain on a device does, and NFLOG there
// carries the packet socket's uid/gid. nft keeps tables per family, so this is a second table
// of nfowner's own, `table netdev <name>`, installed and removed in the same transaction as the
// inet one:
//
//     table netdev nfowner {
//         set packet_senders { typeof meta skuid; … timeout 2s }      (new-flow delivery only)
//         chain egress_eth0 {
//             type filter hook egress device "eth0" priority 100; policy accept;
//             meta rtclassid 0-4294967295 return        <- routed: an IP socket's, logged already
//             meta skuid != @packet_senders add @packet_senders { meta skuid } … log group 6 … accept
//             meta skuid 0-4294967295 counter log … group 5 …
//         }
//     }
//
// Why `meta rtclassid`: every packet an IP socket sends reaches the device with its route
// attached (dropped only after the egress hook), and the route's classid reads as a number; a
// packet socket's frame has no route, so the match fails and the frame goes on to be logged.
// `meta skuid` (any value) keeps frames without a socket (forwarded by a bridge, the kernel's
// ARP) out. A packet socket with PACKET_QDISC_BYPASS skips the egress hook: such frames are
// not seen.

/// The netdev table that logs frames packet sockets send on chosen interfaces.
public struct PacketSocketTable: Sendable, Equatable {
    public var tableName: String
    /// Interface names, in the order given; one egress chain each.
    public var interfaces: [String]
    public var log: LogStatement
    /// The group a uid's first frame goes to at once (queue threshold 1), or nil to batch all.
    public var newSenderGroup: UInt16?
    /// How long a sender's uid is remembered after its frame was delivered at once.
    public var newSenderSeconds: UInt32
    public var uids: [UInt32]
    public var gids: [UInt32]
    public var priority: Int32

    /// Bytes the link layer adds before the IP header that the snap length must still cover:
    /// Ethernet (14) and one VLAN tag (4).
    public static let linkHeaderAllowance: UInt32 = 18
    /// The set of recent senders (by uid) whose frames are batched.
    public static let senderSetName = "packet_senders"
    public static let senderSetSize = 4096
    /// Linux interface names are at most 15 bytes (IFNAMSIZ - 1).
    public static let maxInterfaceNameBytes = 15

    /// The table for `spec`, or nil when it names no interface (or only counts: kernel counting
    /// has no packet path for frames).
    public init?(spec: RulesetSpec) {
        guard !spec.packetSocketInterfaces.isEmpty, !spec.countsOwners else { return nil }
        tableName = spec.tableName
        interfaces = spec.packetSocketInterfaces
        log = LogStatement(prefix: spec.prefix, group: spec.group,
                           snaplen: min(65535, spec.snaplen + Self.linkHeaderAllowance),
                           queueThreshold: spec.queueThreshold)
        newSenderGroup = spec.newFlowSeconds > 0 ? (spec.newFlowGroup ?? spec.group) : nil
        newSenderSeconds = spec.newFlowSeconds
        uids = spec.uids
        gids = spec.gids
        priority = spec.priority
    }

    /// `egress_<interface>`, with characters nft identifiers do not take replaced by `_`.
    public static func chainName(interface: String) -> String {
        "egress_" + String(interface.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") ? $0 : "_" })
    }

    /// Throws `.invalidSpec` for a name Linux would not accept as an interface name, or a name
    /// listed twice.
    static func validate(interfaces: [String]) throws(RulesError) {
        var seen: Set<String> = []
        for name in interfaces {
            let valid = !name.isEmpty && name.utf8.count <= maxInterfaceNameBytes && name != "." && name != ".."
                && name.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.@:".contains($0)) }
            guard valid else {
                throw RulesError(.invalidSpec, "\"\(name)\" is not an interface name (1-15 characters: letters, digits, _-.@:); see `ip link`")
            }
            guard seen.insert(name).inserted else {
                throw RulesError(.invalidSpec, "interface \(name) is listed twice for packet sockets")
            }
        }
        var chains: Set<String> = []
        for name in interfaces where !chains.insert(chainName(interface: name)).inserted {
            throw RulesError(.invalidSpec, "interfaces \(interfaces.joined(separator: ", ")) give two chains one name; leave one out")
        }
    }
}

extension NftScriptRenderer {
    /// `table netdev NAME { … }` and a newline.
    static func definition(_ table: PacketSocketTable) throws(RulesError) -> String {
        let name = try NftText.validateIdentifier(table.tableName, what: "table name")
        let prefix = try NftText.validateQuoted(table.log.prefix, what: "log prefix", maxBytes: NftText.maxLogPrefixBytes)
        var selectors = ""
        if !table.uids.isEmpty { selectors += "meta skuid \(idList(table.uids)) " }
        if !table.gids.isEmpty { selectors += "meta skgid \(idList(table.gids)) " }
        func log(group: UInt16, threshold: UInt16) -> String {
            "log prefix \"\(prefix)\" group \(group) snaplen \(table.log.snaplen)" + (threshold > 0 ? " queue-threshold \(threshold)" : "")
        }
        var lines = ["table netdev \(name) {"]
        if table.newSenderGroup != nil {
            lines += ["\tset \(PacketSocketTable.senderSetName) {", "\t\ttypeof meta skuid",
                      "\t\tsize \(PacketSocketTable.senderSetSize)", "\t\tflags dynamic,timeout",
                      "\t\ttimeout \(table.newSenderSeconds)s", "\t}"]
        }
        for interface in table.interfaces {
            try PacketSocketTable.validate(interfaces: [interface])
            lines.append("\tchain \(PacketSocketTable.chainName(interface: interface)) {")
            lines.append("\t\ttype filter hook egress device \"\(interface)\" priority \(table.priority); policy accept;")
            lines.append("\t\tmeta rtclassid 0-4294967295 return comment \"routed: an IP socket's packet, logged at the IP hooks\"")
            if let group = table.newSenderGroup {
                let set = PacketSocketTable.senderSetName
                lines.append("\t\t\(selectors)meta skuid != @\(set) add @\(set) { meta skuid } counter \(log(group: group, threshold: 1)) accept")
            }
            lines.append("\t\t\(selectors)meta skuid 0-4294967295 counter \(log(group: table.log.group, threshold: table.log.queueThreshold)) comment \"\(Rule.logRuleComment)\"")
            lines.append("\t}")
        }
        lines.append("}")
        return lines.joined(separator: "\n") + "\n"
    }

    /// `1000` or `{ 1000, 1001 }`, sorted and deduplicated.
    private static func idList(_ ids: [UInt32]) -> String {
        let unique = Set(ids).sorted()
        return unique.count == 1 ? String(unique[0]) : "{ " + unique.map(String.init).joined(separator: ", ") + " }"
    }

    /// Replaces the netdev table in the same transaction as the inet one: create (so the delete
    /// cannot fail), delete, define.
    static func replacement(_ table: PacketSocketTable) throws(RulesError) -> String {
        let name = try NftText.validateIdentifier(table.tableName, what: "table name")
        return "table netdev \(name)\ndelete table netdev \(name)\n" + (try definition(table))
    }
}
