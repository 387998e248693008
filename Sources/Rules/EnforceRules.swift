// Enforce mode's rules (issue 15): the first packet of each new flow — and every ICMP echo
// request, whose conntrack state is no guide — goes to an NFQUEUE queue; nfowner evaluates the
// policy against the packet and its owner and answers. nft's `queue` statement would do where
// the kernel has CONFIG_NFT_QUEUE; this one does not, so the rules are iptables (nf_tables
// backend via xt compat), in the filter table, in chains of nfowner's own:
//
//   *filter
//   :NFOWNER-ENFORCE - [0:0]
//   :NFOWNER-ENFORCE-QUEUE - [0:0]
//   -A NFOWNER-ENFORCE -m mark --mark 0x800000/0xc00000 -p tcp -j REJECT --reject-with tcp-reset
//   -A NFOWNER-ENFORCE -m mark --mark 0x800000/0xc00000 -j REJECT --reject-with icmp-port-unreachable
//   -A NFOWNER-ENFORCE -m mark --mark 0x0/0xc00000 -j NFOWNER-ENFORCE-QUEUE
//   -A NFOWNER-ENFORCE -m mark --mark 0x400000/0xc00000 -j MARK --set-xmark 0x0/0xc00000
//   -A NFOWNER-ENFORCE-QUEUE -p icmp --icmp-type echo-request -j NFQUEUE --queue-num 10
//   -A NFOWNER-ENFORCE-QUEUE -p icmp -j RETURN
//   -A NFOWNER-ENFORCE-QUEUE -m conntrack --ctstate NEW -j NFQUEUE --queue-num 10
//   COMMIT
//   and `-I OUTPUT 1 -j NFOWNER-ENFORCE` (and INPUT, when inbound flows are enforced).
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
    /// The NFQUEUE queue nfowner reads.
    public var queue: UInt16
    /// With nobody listening, let packets pass (`--queue-bypass`); else they are dropped.
    public var failOpen: Bool
    /// Queue new outbound flows (OUTPUT) and/or new inbound ones (INPUT).
    public var output: Bool
    public var input: Bool
    public var marks = VerdictMarks()

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
    /// The chain that queues; entered only by packets without a verdict mark.
    public static let queueChain = "NFOWNER-ENFORCE-QUEUE"
    /// How the rules queue on this kernel (said at start-up).
    public static let backendDescription = "iptables NFQUEUE in the filter table (nft's queue statement needs CONFIG_NFT_QUEUE)"

    /// The `iptables-restore --noflush` input that creates, or empties and refills, both chains.
    public static func iptablesRestore(_ spec: EnforceSpec, family: IptablesFamily) -> String {
        let marks = spec.marks
        func match(_ bits: UInt32) -> String { "-m mark --mark \(hex(bits))/\(hex(marks.mask))" }
        let unreachable = family == .ipv4 ? "icmp-port-unreachable" : "icmp6-port-unreachable"
        let icmp = family == .ipv4 ? "-p icmp" : "-p ipv6-icmp"
        let echo = family == .ipv4 ? "-p icmp --icmp-type echo-request" : "-p ipv6-icmp --icmpv6-type echo-request"
        let queue = "-j NFQUEUE --queue-num \(spec.queue)" + (spec.failOpen ? " --queue-bypass" : "")
        return [
            "*filter",
            ":\(chain) - [0:0]",
            ":\(queueChain) - [0:0]",
            "-A \(chain) \(match(marks.reject)) -p tcp -j REJECT --reject-with tcp-reset",
            "-A \(chain) \(match(marks.reject)) -j REJECT --reject-with \(unreachable)",
            "-A \(chain) \(match(0)) -j \(queueChain)",
            "-A \(chain) \(match(marks.allow)) -j MARK --set-xmark 0x0/\(hex(marks.mask))",
            "-A \(queueChain) \(echo) \(queue)",
            "-A \(queueChain) \(icmp) -j RETURN",
            "-A \(queueChain) -m conntrack --ctstate NEW \(queue)",
            "COMMIT",
        ].joined(separator: "\n") + "\n"
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

    /// Removes the jumps and both chains (idempotent). Returns whether anything was there.
    @discardableResult
    public func remove() throws(RulesError) -> Bool {
        var removed = false
        for family in IptablesFamily.allCases {
            guard try iptables.run(family.command, ["-S", EnforceRules.chain]).status == 0 else { continue }
            removed = true
            try deleteJumps(family, "OUTPUT")
            try deleteJumps(family, "INPUT")
            for chain in [EnforceRules.chain, EnforceRules.queueChain] {
                try iptables.check(iptables.run(family.command, ["-F", chain]), "flush \(chain)")
            }
            for chain in [EnforceRules.chain, EnforceRules.queueChain] {
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
