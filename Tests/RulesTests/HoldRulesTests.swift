import Rules
import Testing

@Suite struct HoldRulesTests {
    @Test func iptablesHoldsSynsAndEchoRequestsWithBypass() {
        let spec = HoldSpec(queue: 7)
        #expect(spec.chainName == "NFOWNER-HOLD-7")
        #expect(HoldRules.iptablesRestore(spec, family: .ipv4) == """
            *raw
            :NFOWNER-HOLD-7 - [0:0]
            -A NFOWNER-HOLD-7 -p tcp --tcp-flags FIN,SYN,RST,ACK SYN -j NFQUEUE --queue-num 7 --queue-bypass
            -A NFOWNER-HOLD-7 -p icmp --icmp-type echo-request -j NFQUEUE --queue-num 7 --queue-bypass
            COMMIT

            """)
        #expect(HoldRules.iptablesRestore(spec, family: .ipv6).contains(
            "-A NFOWNER-HOLD-7 -p ipv6-icmp --icmpv6-type echo-request -j NFQUEUE --queue-num 7 --queue-bypass"))
    }

    /// With owner selectors only the selected owners' packets are held, one rule per pair.
    @Test func selectorsNarrowWhatIsHeld() {
        let text = HoldRules.iptablesRestore(HoldSpec(queue: 5, uids: [1001, 1000], gids: [100]), family: .ipv4)
        let rules = text.split(separator: "\n").filter { $0.hasPrefix("-A ") }
        #expect(rules.count == 4)
        #expect(rules.allSatisfy { $0.contains("--queue-bypass") })
        #expect(rules[0] == "-A NFOWNER-HOLD-5 -p tcp --tcp-flags FIN,SYN,RST,ACK SYN -m owner --uid-owner 1000 --gid-owner 100 -j NFQUEUE --queue-num 5 --queue-bypass")
        #expect(rules[3].contains("--uid-owner 1001 --gid-owner 100"))
    }

    @Test func nftReplacesItsOwnTableAtRawPriorityWithBypass() {
        let script = HoldRules.nftScript(HoldSpec(queue: 5, uids: [1000]))
        #expect(script.hasPrefix("table inet nfowner_hold_5\ndelete table inet nfowner_hold_5\n"))
        #expect(script.contains("type filter hook output priority -300; policy accept;"))
        #expect(script.contains("meta skuid { 1000 } tcp flags & (fin | syn | rst | ack) == syn queue num 5 bypass"))
        #expect(script.contains("meta skuid { 1000 } icmp type echo-request queue num 5 bypass"))
        #expect(script.contains("meta skuid { 1000 } icmpv6 type echo-request queue num 5 bypass"))
        #expect(script.components(separatedBy: "bypass").count - 1 == 3)
        #expect(HoldRules.nftProbeScript.contains("queue num 0 bypass"))
    }
}
