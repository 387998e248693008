// Hold mode's rules: each new TCP connection's SYN and each ping's echo request, from the
// selected owners, go to an NFQUEUE queue and wait there until the monitor has looked up their
// owner — while the sender still waits for its answer — and accepts them. Always with bypass:
// when no monitor listens, the packets pass as if the rule were not there.
//
// Two ways to queue, probed at run time:
//   nft (kernels with CONFIG_NFT_QUEUE):
//     table inet nfowner_hold_5 {
//       chain output { type filter hook output priority -300; policy accept;
//         tcp flags & (fin | syn | rst | ack) == syn queue num 5 bypass
//         icmp type echo-request queue num 5 bypass
//         icmpv6 type echo-request queue num 5 bypass } }
//   iptables (xt_NFQUEUE; the nf_tables backend's compat layer), in the raw table:
//     *raw
//     :NFOWNER-HOLD-5 - [0:0]
//     -A NFOWNER-HOLD-5 -p tcp --tcp-flags FIN,SYN,RST,ACK SYN -j NFQUEUE --queue-num 5 --queue-bypass
//     -A NFOWNER-HOLD-5 -p icmp --icmp-type echo-request -j NFQUEUE --queue-num 5 --queue-bypass
//     COMMIT
//   and `-A OUTPUT -j NFOWNER-HOLD-5` in raw, appended.
//
// An accept verdict ends the packet's walk through the chain that queued it, like a rule's
// ACCEPT. In a base chain of our own (nft) that skips nothing of anyone else's. In iptables the
// queue must live in a built-in chain: raw's OUTPUT, jumped to last, where accepting is what
// the chain's end does anyway (its policy must be ACCEPT, checked before installing), and where
// the packet is held before conntrack and every filter chain, so nothing is decided twice.
//
// UDP is not held: sendto() returns as soon as the packet is queued, so a one-shot sender is
// gone by the time its owner is looked up whether or not its packet waits.

/// How packets are queued.
public enum HoldBackend: String, Sendable, Equatable {
    /// nft's `queue` statement in a table of our own.
    case nft = "nft queue"
    /// iptables' NFQUEUE target in the raw table's OUTPUT chain.
    case iptables = "iptables NFQUEUE"
}

/// What hold mode queues, and where to.
public struct HoldSpec: Sendable, Equatable {
    /// The NFQUEUE queue number the monitor reads.
    public var queue: UInt16
    /// Hold only packets of sockets owned by these uids / gids (empty: any).
    public var uids: [UInt32]
    public var gids: [UInt32]

    public init(queue: UInt16, uids: [UInt32] = [], gids: [UInt32] = []) {
        self.queue = queue
        self.uids = uids
        self.gids = gids
    }

    /// The nft table: `nfowner_hold_<queue>`.
    public var tableName: String { "nfowner_hold_\(queue)" }
    /// The iptables chain in raw: `NFOWNER-HOLD-<queue>`.
    public var chainName: String { "\(HoldRules.chainPrefix)\(queue)" }
}

public enum HoldRules {
    /// The held packets' priority: raw, before conntrack (-200) and every filter chain.
    public static let priority: Int32 = -300
    /// Every hold chain's name starts with this (the queue number follows).
    public static let chainPrefix = "NFOWNER-HOLD-"

    /// The nft script that creates (or replaces) the hold table.
    public static func nftScript(_ spec: HoldSpec) -> String {
        var owner = ""
        if !spec.uids.isEmpty { owner += "meta skuid { \(Set(spec.uids).sorted().map(String.init).joined(separator: ", ")) } " }
        if !spec.gids.isEmpty { owner += "meta skgid { \(Set(spec.gids).sorted().map(String.init).joined(separator: ", ")) } " }
        let verdict = "queue num \(spec.queue) bypass"
        return """
            table inet \(spec.tableName)
            delete table inet \(spec.tableName)
            table inet \(spec.tableName) {
            \tcomment "nfowner hold mode: new TCP connections and pings wait here until their owner is known"
            \tchain output {
            \t\ttype filter hook output priority \(priority); policy accept;
            \t\t\(owner)tcp flags & (fin | syn | rst | ack) == syn \(verdict)
            \t\t\(owner)icmp type echo-request \(verdict)
            \t\t\(owner)icmpv6 type echo-request \(verdict)
            \t}
            }

            """
    }

    /// A table that only `nft --check` sees: whether this kernel has the `queue` statement.
    public static let nftProbeScript = """
        table inet nfowner_hold_probe {
        \tchain output {
        \t\ttype filter hook output priority \(priority); policy accept;
        \t\tmeta l4proto tcp queue num 0 bypass
        \t}
        }

        """

    /// The `iptables-restore --noflush -T raw` input that creates or empties and fills the
    /// hold chain of `family`.
    public static func iptablesRestore(_ spec: HoldSpec, family: IptablesFamily) -> String {
        let echo = family == .ipv4 ? "-p icmp --icmp-type echo-request" : "-p ipv6-icmp --icmpv6-type echo-request"
        let verdict = "-j NFQUEUE --queue-num \(spec.queue) --queue-bypass"
        var lines = ["*raw", ":\(spec.chainName) - [0:0]"]
        for owner in IptablesRenderer.ownerMatches(uids: spec.uids, gids: spec.gids) {
            let match = owner.isEmpty ? "" : " " + owner
            lines.append("-A \(spec.chainName) -p tcp --tcp-flags FIN,SYN,RST,ACK SYN\(match) \(verdict)")
            lines.append("-A \(spec.chainName) \(echo)\(match) \(verdict)")
        }
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }
}
