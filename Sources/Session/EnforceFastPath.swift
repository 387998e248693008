import Policy
import Rules

/// The kernel fast path: a policy compiled into enforce mode's decision chain, so that flows
/// decided by rules the kernel can evaluate alone never reach userspace.
///
/// Kernel-evaluable matchers: `uid`, `gid` (`-m owner`, outbound only), `proto`, `dst`, `src`,
/// `dst_port`/`src_port` (when the rule's protocols are TCP and/or UDP), `icmp_type` (ICMP and
/// ICMPv6), `direction`. A rule that also needs the process or names (`exe`, `comm`, `unit`,
/// `cgroup`, `user`, `group`), or whose decisions are logged, becomes a queue rule for the
/// packets its kernel-evaluable matchers select; nfowner then evaluates the whole policy, whose
/// earlier rules the packet did not match in the kernel either. Lists become one iptables rule
/// per combination of items; a rule that would need more than `maximumLinesPerRule` is queued
/// whole (unconditionally).
///
/// Applies only when it keeps the fail mode's promise: with `fail = "open"` every decision goes
/// through nfowner, so that traffic passes when nfowner is gone; in audit mode everything is
/// reported, so everything is queued; with inbound directions `-m owner` is not allowed, so
/// everything is queued.
enum EnforceFastPath {
    static let maximumLinesPerRule = 256

    /// The decision chain per family, or nil when the fast path does not apply.
    static func compile(_ policy: Policy) -> [IptablesFamily: [EnforceDecision]]? {
        guard policy.mode == .enforce, policy.fail == .closed, policy.directions == [.outbound] else { return nil }
        var chains: [IptablesFamily: [EnforceDecision]] = [:]
        for family in IptablesFamily.allCases {
            var decisions: [EnforceDecision] = []
            for rule in policy.rules {
                decisions += compile(rule, family: family)
            }
            decisions.append(policy.logDefault ? EnforceDecision(target: .queue)
                             : EnforceDecision(target: policy.defaultAction == .allow ? .allow : .deny))
            chains[family] = decisions
        }
        return chains
    }

    /// One rule's decision-chain rules for `family`: none when it cannot match there.
    static func compile(_ rule: PolicyRule, family: IptablesFamily) -> [EnforceDecision] {
        var needsUserspace = rule.log
        // Each dimension: the values to combine (nil: not constrained).
        var protocols: [UInt8]?
        var uids: [UInt32]?, gids: [UInt32]?
        var sources: [String]?, destinations: [String]?
        var sourcePorts: [ClosedRange<UInt16>]?, destinationPorts: [ClosedRange<UInt16>]?
        var icmpTypes: [ICMPTypeMatch]?
        for matcher in rule.matchers {
            switch matcher {
            case .uid(let values): uids = values
            case .gid(let values): gids = values
            case .proto(let values): protocols = values.sorted()
            case .source(let blocks): sources = blocks.filter { $0.isFamily(family) }.map(\.description)
            case .destination(let blocks): destinations = blocks.filter { $0.isFamily(family) }.map(\.description)
            case .sourcePort(let ranges): sourcePorts = ranges.map { $0.lower...$0.upper }
            case .destinationPort(let ranges): destinationPorts = ranges.map { $0.lower...$0.upper }
            case .icmpType(let types): icmpTypes = types
            case .direction(let directions):
                // Only outbound flows are decided here (see `compile(_:)`).
                if !directions.contains(.outbound) { return [] }
            case .user, .group, .unit, .cgroup, .exe, .comm:
                needsUserspace = true
            }
        }
        // Address lists of the other family only: the rule never matches in this one.
        if sources?.isEmpty == true || destinations?.isEmpty == true { return [] }
        let icmpProtocol: UInt8 = family == .ipv4 ? 1 : 58
        if icmpTypes != nil {
            // Only ICMP of this family has ICMP types.
            guard protocols?.contains(icmpProtocol) ?? true else { return [] }
            protocols = [icmpProtocol]
        } else if let given = protocols {
            // The other family's ICMP never appears here.
            protocols = given.filter { $0 != (family == .ipv4 ? 58 : 1) }
            if protocols?.isEmpty == true { return [] }
        }
        let hasPorts = sourcePorts != nil || destinationPorts != nil
        if hasPorts, !(protocols.map { !$0.isEmpty && $0.allSatisfy { $0 == 6 || $0 == 17 } } ?? false) {
            // Ports of SCTP or UDP-Lite, or of "any protocol": left to nfowner, the rest of the
            // rule still narrows what is queued.
            needsUserspace = true
            sourcePorts = nil
            destinationPorts = nil
        }
        let icmpNumbers: [UInt8]? = icmpTypes.map { types in
            Array(Set(types.compactMap { type -> UInt8? in
                switch type {
                case .number(let number): number
                case .named(let name): name.number(protocolNumber: icmpProtocol)
                }
            })).sorted()
        }
        if icmpNumbers?.isEmpty == true { return [] }
        let target: EnforceDecision.Target
        switch rule.action {
        case _ where needsUserspace: target = .queue
        case .allow: target = .allow
        case .deny: target = .deny
        case .reject: target = .reject
        }
        let count = [protocols?.count, uids?.count, gids?.count, sources?.count, destinations?.count,
                     sourcePorts?.count, destinationPorts?.count, icmpNumbers?.count]
            .reduce(1) { $0 * max($1 ?? 1, 1) }
        guard count <= maximumLinesPerRule else {
            // Too many combinations: nfowner decides every packet that reaches this rule.
            return [EnforceDecision(target: .queue)]
        }
        var decisions = [EnforceDecision(target: target)]
        func expand<T>(_ values: [T]?, _ set: (inout EnforceDecision, T) -> Void) {
            guard let values else { return }
            decisions = decisions.flatMap { base in
                values.map { value in
                    var next = base
                    set(&next, value)
                    return next
                }
            }
        }
        expand(protocols) { $0.protocolNumber = $1 }
        expand(uids) { $0.uid = $1 }
        expand(gids) { $0.gid = $1 }
        expand(sources) { $0.source = $1 }
        expand(destinations) { $0.destination = $1 }
        expand(sourcePorts) { $0.sourcePorts = $1 }
        expand(destinationPorts) { $0.destinationPorts = $1 }
        expand(icmpNumbers) { $0.icmpType = $1 }
        return decisions
    }
}

extension CIDR {
    func isFamily(_ family: IptablesFamily) -> Bool {
        switch address {
        case .v4: family == .ipv4
        case .v6: family == .ipv6
        }
    }
}
