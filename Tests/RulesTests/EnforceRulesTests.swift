import PacketModel
@testable import Rules
import Testing

@Suite struct EnforceRulesTests {
    /// Without a fast path: the mark rules, the selection of new flows and echo requests, one
    /// queue rule (fail-closed: no bypass).
    @Test func everyNewFlowIsQueuedWithoutAFastPath() {
        #expect(EnforceRules.iptablesRestore(EnforceSpec(queue: 10, failOpen: false), family: .ipv4) == """
            *filter
            :NFOWNER-ENFORCE - [0:0]
            :NFOWNER-ENFORCE-QUEUE - [0:0]
            :NFOWNER-ENFORCE-DECIDE - [0:0]
            -A NFOWNER-ENFORCE -m mark --mark 0x800000/0xc00000 -p tcp -j REJECT --reject-with tcp-reset
            -A NFOWNER-ENFORCE -m mark --mark 0x800000/0xc00000 -j REJECT --reject-with icmp-port-unreachable
            -A NFOWNER-ENFORCE -m mark --mark 0x0/0xc00000 -j NFOWNER-ENFORCE-QUEUE
            -A NFOWNER-ENFORCE -m mark --mark 0x400000/0xc00000 -j MARK --set-xmark 0x0/0xc00000
            -A NFOWNER-ENFORCE-QUEUE -p icmp --icmp-type echo-request -g NFOWNER-ENFORCE-DECIDE
            -A NFOWNER-ENFORCE-QUEUE -p icmp -j RETURN
            -A NFOWNER-ENFORCE-QUEUE -m conntrack --ctstate NEW,UNTRACKED -g NFOWNER-ENFORCE-DECIDE
            -A NFOWNER-ENFORCE-DECIDE -j NFQUEUE --queue-num 10
            COMMIT

            """)
        let v6 = EnforceRules.iptablesRestore(EnforceSpec(queue: 3, failOpen: true), family: .ipv6)
        #expect(v6.contains("-A NFOWNER-ENFORCE -m mark --mark 0x800000/0xc00000 -j REJECT --reject-with icmp6-port-unreachable"))
        #expect(v6.contains("-A NFOWNER-ENFORCE-QUEUE -p ipv6-icmp --icmpv6-type echo-request -g NFOWNER-ENFORCE-DECIDE"))
        // Fail-open: bypass, and with nobody listening the packet passes.
        #expect(v6.contains("-A NFOWNER-ENFORCE-DECIDE -j NFQUEUE --queue-num 3 --queue-bypass\n-A NFOWNER-ENFORCE-DECIDE -j RETURN\n"))
    }

    /// Several queues: one rule spreads the flows over them by CPU (`--queue-balance`,
    /// `--queue-cpu-fanout`).
    @Test func severalQueuesAreOneBalancedRule() {
        var spec = EnforceSpec(queue: 10, failOpen: true)
        spec.queueCount = 3
        let v4 = EnforceRules.iptablesRestore(spec, family: .ipv4)
        #expect(v4.contains("-A NFOWNER-ENFORCE-DECIDE -j NFQUEUE --queue-balance 10:12 --queue-cpu-fanout --queue-bypass\n"), "\(v4)")
        #expect(!v4.contains("--queue-num"))
    }

    @Test func decisionsRenderAsKernelVerdicts() {
        var spec = EnforceSpec(queue: 10, failOpen: false)
        spec.decisions = [.ipv4: [
            EnforceDecision(protocolNumber: 6, uid: 1000, destination: "10.0.0.0/8", destinationPorts: 8000...8100, target: .allow),
            EnforceDecision(protocolNumber: 1, icmpType: 8, target: .deny),
            EnforceDecision(gid: 100, target: .queue),
            EnforceDecision(uid: 1000, target: .reject),
            EnforceDecision(protocolNumber: 17, sourcePorts: 53...53, target: .reject),
            EnforceDecision(target: .deny),
        ]]
        let decide = EnforceRules.iptablesRestore(spec, family: .ipv4).split(separator: "\n")
            .filter { $0.hasPrefix("-A NFOWNER-ENFORCE-DECIDE") }
        #expect(decide == [
            "-A NFOWNER-ENFORCE-DECIDE -p tcp -d 10.0.0.0/8 --dport 8000:8100 -m owner --uid-owner 1000 -j RETURN",
            "-A NFOWNER-ENFORCE-DECIDE -p icmp --icmp-type 8 -j DROP",
            "-A NFOWNER-ENFORCE-DECIDE -m owner --gid-owner 100 -j NFQUEUE --queue-num 10",
            "-A NFOWNER-ENFORCE-DECIDE -m owner --uid-owner 1000 -p tcp -j REJECT --reject-with tcp-reset",
            "-A NFOWNER-ENFORCE-DECIDE -m owner --uid-owner 1000 -j REJECT --reject-with icmp-port-unreachable",
            "-A NFOWNER-ENFORCE-DECIDE -p udp --sport 53 -j REJECT --reject-with icmp-port-unreachable",
            "-A NFOWNER-ENFORCE-DECIDE -j DROP",
        ])
        // A family without decisions (none compiled for it) decides nothing: packets return.
        #expect(!EnforceRules.iptablesRestore(spec, family: .ipv6).contains("-A NFOWNER-ENFORCE-DECIDE"))
    }
}
