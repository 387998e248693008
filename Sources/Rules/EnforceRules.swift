// Enforce mode's rules (issue 15): the first packet of each new flow — and every ICMP echo
// request, whose conntrack state is no guide, and every packet conntrack does not track — is
// decided by the policy. nft's `queue` statement
// would do where the kernel has CONFIG_NFT_QUEUE; this one does not, so the rules are iptables
// (nf_tables backend via xt compat), in the filter table, in chains of nfowner's own:
//
//   *filter
//   :NFOWNER-ENFORCE - [0:0]
//   :NFOWNER-ENFORCE-QUEUE - [0:0]
//   :NFOWNER-ENFORCE-DECIDE - [0:0]
//   -A NFOWNER-ENFORCE -m mark --mark 0x800000/0xc00000 -p tcp -j REJECT --reject-with tcp-reset
//   -A NFOWNER-ENFORCE -m mark --mark 0x800000/0xc00000 -j REJECT --reject-with icmp-port-unreachable
//   -A NFOWNER-ENFORCE -m mark --mark 0x0/0xc00000 -j NFOWNER-ENFORCE-QUEUE
//   -A NFOWNER-ENFORCE -m mark --mark 0x400000/0xc00000 -j MARK --set-xmark 0x0/0xc00000
//   -A NFOWNER-ENFORCE-QUEUE -p icmp --icmp-type echo-request -g NFOWNER-ENFORCE-DECIDE
//   -A NFOWNER-ENFORCE-QUEUE -p icmp -j RETURN
//   -A NFOWNER-ENFORCE-QUEUE -m conntrack --ctstate NEW,UNTRACKED -g NFOWNER-ENFORCE-DECIDE
//   -A NFOWNER-ENFORCE-DECIDE -j NFQUEUE --queue-num 10
//   COMMIT
//   and `-I OUTPUT 1 -j NFOWNER-ENFORCE` (and INPUT, when inbound flows are enforced).
//
// NFOWNER-ENFORCE-DECIDE queues everything, or — the kernel fast path, `EnforceSpec.decisions` —
// holds the policy's rules compiled for the kernel where it can evaluate them alone (uid, gid,
// protocol, addresses, ports, ICMP type): `-j RETURN` for allow, `-j DROP`, `-j REJECT`, and
// `-j NFQUEUE` only for rules that need the process (exe, comm, unit, cgroup, names) or an audit
// event; a flow those rules decide never reaches userspace.
//
// Verdicts (see `VerdictMarks`): deny is NF_DROP. Allow and reject are NF_REPEAT with a mark in
// two bits of the packet mark (NFQA_MARK): the hook's chain runs again from its start; an allowed
// packet, marked, skips the queue, has the mark cleared and returns to OUTPUT, where the rest of
// the host's rules still apply (an NF_ACCEPT would have skipped them); a rejected one meets the
// REJECT rules, so the sender learns at once (connect() fails with ECONNREFUSED).
//
// Fail modes: `fail = "open"` adds `--queue-bypass` (with nobody bound to the queue, packets go
// on) and the queue is bound with NFQA_CFG_F_FAIL_OPEN (a full queue accepts); `fail = "closed"`
// has neither: with nobody listening, queued packets are dropped. The rules stay when nfowner is
// killed — that is what makes fail-closed hold — and a restart replaces the chains' contents in
// one iptables-restore transaction, so there is no moment under the other mode. ICMPv6 other
// than echo requests (neighbour discovery) is never queued.

import PacketModel

/// What enforce mode queues, and how.
public struct EnforceSpec: Sendable, Equatable {
    /// The NFQUEUE queue nfowner reads (the first of `queueCount`).
    public var queue: UInt16
    /// Queues `queue` … `queue + queueCount - 1`, new flows spread over them by the CPU they are
    /// sent on (`--queue-balance … --queue-cpu-fanout`), one reader thread each. Default 1.
    public var queueCount: UInt16 = 1
    /// With nobody listening, let packets pass (`--queue-bypass`); else they are dropped.
    public var failOpen: Bool
    /// Queue new outbound flows (OUTPUT) and/or new inbound ones (INPUT).
    public var output: Bool
    public var input: Bool
    public var marks = VerdictMarks()
    /// The kernel fast path: the decision chain's rules per family, in order (nil: queue every
    /// packet that reaches it).
    public var decisions: [IptablesFamily: [EnforceDecision]]?

    public init(queue: UInt16, failOpen: Bool, output: Bool = true, input: Bool = false) {
        self.queue = queue
        self.failOpen = failOpen
        self.output = output
        self.input = input
    }
}

public enum EnforceRules {
    /// The decision chain, jumped to first from OUTPUT (and INPUT).
    public static let chain = "NFOWNER-ENFORCE"
    /// The chain that selects what is decided: packets without a verdict mark that start a flow.
    public static let queueChain = "NFOWNER-ENFORCE-QUEUE"
    /// The chain that decides: the compiled policy, or one NFQUEUE rule.
    public static let decideChain = "NFOWNER-ENFORCE-DECIDE"
    /// Every chain enforce mode creates, in the order they are deleted.
    public static let allChains = [chain, queueChain, decideChain]
    /// How the rules queue (said at start-up, with what the probe found).
    public static let backendDescription = "iptables NFQUEUE in the filter table"

    /// The `iptables-restore --noflush` input that creates, or empties and refills, the chains.
    public static func iptablesRestore(_ spec: EnforceSpec, family: IptablesFamily) -> String {
        let marks = spec.marks
        func match(_ bits: UInt32) -> String { "-m mark --mark \(hex(bits))/\(hex(marks.mask))" }
        let unreachable = family == .ipv4 ? "icmp-port-unreachable" : "icmp6-port-unreachable"
        let icmp = family == .ipv4 ? "-p icmp" : "-p ipv6-icmp"
        let echo = family == .ipv4 ? "-p icmp --icmp-type echo-request" : "-p ipv6-icmp --icmpv6-type echo-request"
        var lines = [
            "*filter",
            ":\(chain) - [0:0]",
            ":\(queueChain) - [0:0]",
            ":\(decideChain) - [0:0]",
            "-A \(chain) \(match(marks.reject)) -p tcp -j REJECT --reject-with tcp-reset",
            "-A \(chain) \(match(marks.reject)) -j REJECT --reject-with \(unreachable)",
            "-A \(chain) \(match(0)) -j \(queueChain)",
            "-A \(chain) \(match(marks.allow)) -j MARK --set-xmark 0x0/\(hex(marks.mask))",
            "-A \(queueChain) \(echo) -g \(decideChain)",
            "-A \(queueChain) \(icmp) -j RETURN",
            "-A \(queueChain) -m conntrack --ctstate NEW,UNTRACKED -g \(decideChain)",
        ]
        let decisions = spec.decisions.map { $0[family] ?? [] } ?? [EnforceDecision(target: .queue)]
        for decision in decisions {
            lines += decision.lines(family: family, queue: spec.queue, queueCount: spec.queueCount, failOpen: spec.failOpen)
                .map { "-A \(decideChain) \($0)" }
        }
        lines.append("COMMIT")
        return lines.joined(separator: "\n") + "\n"
    }

    static func hex(_ value: UInt32) -> String { "0x" + String(value, radix: 16) }
}

/// Installs and removes enforce mode's chains and their jumps.
public struct EnforceRulesRunner: Sendable {
    public let iptables: IptablesRunner

    public init(netns: String? = nil) {
        iptables = IptablesRunner(netns: netns)
    }

    /// Creates or refills the chains (one transaction per family: a running copy's rules are
    /// replaced, never absent) and puts the jumps first in OUTPUT/INPUT as `spec` asks,
    /// removing a jump it does not.
    public func install(_ spec: EnforceSpec) throws(RulesError) {
        for family in IptablesFamily.allCases {
            try iptables.check(iptables.run(family.restoreCommand, ["--noflush"], input: EnforceRules.iptablesRestore(spec, family: family)),
                               "load the enforce chains (\(family.command), table filter)")
            for (builtin, wanted) in [("OUTPUT", spec.output), ("INPUT", spec.input)] {
                let present = try iptables.hasJump(family, builtin, EnforceRules.chain)
                if wanted && !present {
                    try iptables.check(iptables.run(family.command, ["-I", builtin, "1", "-j", EnforceRules.chain]),
                                       "add the jump \(builtin) -> \(EnforceRules.chain) (\(family.command))")
                } else if !wanted && present {
                    try deleteJumps(family, builtin)
                }
            }
        }
    }

    /// Which backend is used, and why, for the start-up note: nft's `queue` statement is probed
    /// (`nft --check`, as hold mode does); enforce mode's rules are iptables either way — an nft
    /// backend is not built yet — but the note says what the kernel has.
    public func backendNote() -> String {
        let (found, why) = HoldRulesRunner(netns: iptables.netns).probe()
        switch found {
        case .iptables: return "\(EnforceRules.backendDescription) (\(why))"
        case .nft: return "\(EnforceRules.backendDescription) (nft has the queue statement here, but enforce mode's nft backend is not built yet)"
        }
    }

    /// Removes the jumps and its chains (idempotent). Returns whether anything was there.
    @discardableResult
    public func remove() throws(RulesError) -> Bool {
        var removed = false
        for family in IptablesFamily.allCases {
            guard try iptables.run(family.command, ["-S", EnforceRules.chain]).status == 0 else { continue }
            removed = true
            try deleteJumps(family, "OUTPUT")
            try deleteJumps(family, "INPUT")
            for chain in EnforceRules.allChains where try iptables.run(family.command, ["-S", chain]).status == 0 {
                try iptables.check(iptables.run(family.command, ["-F", chain]), "flush \(chain)")
            }
            for chain in EnforceRules.allChains {
                guard try iptables.run(family.command, ["-S", chain]).status == 0 else { continue }
                try iptables.check(iptables.run(family.command, ["-X", chain]), "delete \(chain)")
            }
        }
        return removed
    }

    /// Whether the chains exist (a run, or a killed run's leftovers, enforces).
    public func isInstalled() throws(RulesError) -> Bool {
        try iptables.run(IptablesFamily.ipv4.command, ["-S", EnforceRules.chain]).status == 0
    }

    private func deleteJumps(_ family: IptablesFamily, _ builtin: String) throws(RulesError) {
        for _ in 0..<16 where try iptables.hasJump(family, builtin, EnforceRules.chain) {
            try iptables.check(iptables.run(family.command, ["-D", builtin, "-j", EnforceRules.chain]),
                               "delete the jump \(builtin) -> \(EnforceRules.chain) (\(family.command))")
        }
    }
}

/// One rule of the decision chain (the kernel fast path): matches the kernel evaluates alone,
/// for one family, and what becomes of a packet they match. A nil field matches anything.
public struct EnforceDecision: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        /// Back to OUTPUT/INPUT: the host's other rules still apply.
        case allow
        case deny
        /// TCP reset for TCP, ICMP port unreachable otherwise.
        case reject
        /// To nfowner, which decides by the whole policy.
        case queue
    }

    public var protocolNumber: UInt8?
    public var uid: UInt32?
    public var gid: UInt32?
    /// CIDR blocks of this rule's family, e.g. "10.0.0.0/8".
    public var source: String?
    public var destination: String?
    /// Only with `protocolNumber` TCP (6) or UDP (17).
    public var sourcePorts: ClosedRange<UInt16>?
    public var destinationPorts: ClosedRange<UInt16>?
    /// Only with `protocolNumber` ICMP (1) or ICMPv6 (58).
    public var icmpType: UInt8?
    public var target: Target

    public init(protocolNumber: UInt8? = nil, uid: UInt32? = nil, gid: UInt32? = nil, source: String? = nil,
                destination: String? = nil, sourcePorts: ClosedRange<UInt16>? = nil,
                destinationPorts: ClosedRange<UInt16>? = nil, icmpType: UInt8? = nil, target: Target) {
        self.protocolNumber = protocolNumber
        self.uid = uid
        self.gid = gid
        self.source = source
        self.destination = destination
        self.sourcePorts = sourcePorts
        self.destinationPorts = destinationPorts
        self.icmpType = icmpType
        self.target = target
    }

    /// Its iptables rule(s), without `-A CHAIN`. Reject without a protocol is two rules (TCP
    /// reset first); a queue rule under fail-open is followed by an allow of the same packets
    /// (with nobody listening, bypass falls through: fail-open means they pass).
    func lines(family: IptablesFamily, queue: UInt16, queueCount: UInt16 = 1, failOpen: Bool) -> [String] {
        let matches = matchText(family: family)
        func line(_ target: String) -> String { matches.isEmpty ? target : matches + " " + target }
        switch target {
        case .allow: return [line("-j RETURN")]
        case .deny: return [line("-j DROP")]
        case .reject:
            let unreachable = "-j REJECT --reject-with " + (family == .ipv4 ? "icmp-port-unreachable" : "icmp6-port-unreachable")
            switch protocolNumber {
            case 6?: return [line("-j REJECT --reject-with tcp-reset")]
            case nil: return [line("-p tcp -j REJECT --reject-with tcp-reset"), line(unreachable)]
            default: return [line(unreachable)]
            }
        case .queue:
            // By the CPU the packet is sent on: the queue's hash alone reads only the addresses,
            // so one busy peer would land every flow in one queue.
            let queues = queueCount > 1 ? "--queue-balance \(queue):\(Int(queue) + Int(queueCount) - 1) --queue-cpu-fanout"
                : "--queue-num \(queue)"
            let queueRule = line("-j NFQUEUE \(queues)" + (failOpen ? " --queue-bypass" : ""))
            return failOpen ? [queueRule, line("-j RETURN")] : [queueRule]
        }
    }

    func matchText(family: IptablesFamily) -> String {
        var parts: [String] = []
        if let protocolNumber {
            let name: String = switch protocolNumber {
            case 6: "tcp"
            case 17: "udp"
            case 1: "icmp"
            case 58: "ipv6-icmp"
            default: String(protocolNumber)
            }
            parts.append("-p \(name)")
        }
        if let source { parts.append("-s \(source)") }
        if let destination { parts.append("-d \(destination)") }
        if let sourcePorts { parts.append("--sport \(Self.ports(sourcePorts))") }
        if let destinationPorts { parts.append("--dport \(Self.ports(destinationPorts))") }
        if let icmpType { parts.append(family == .ipv4 ? "--icmp-type \(icmpType)" : "--icmpv6-type \(icmpType)") }
        if uid != nil || gid != nil {
            parts.append("-m owner" + (uid.map { " --uid-owner \($0)" } ?? "") + (gid.map { " --gid-owner \($0)" } ?? ""))
        }
        return parts.joined(separator: " ")
    }

    static func ports(_ range: ClosedRange<UInt16>) -> String {
        range.lowerBound == range.upperBound ? "\(range.lowerBound)" : "\(range.lowerBound):\(range.upperBound)"
    }
}
