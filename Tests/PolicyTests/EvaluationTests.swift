import PacketParsing
import Policy
import Testing

private func ip(_ text: String) -> IPAddress { IPAddress(parsing: text)! }

private func tcp(uid: UInt32? = 1000, dst: String = "10.0.0.2", port: UInt16 = 8080, exe: String? = nil,
                 comm: String? = nil) -> PolicySubject {
    PolicySubject(direction: .outbound, protocolNumber: 6, source: ip("10.0.0.1"), destination: ip(dst),
                  sourcePort: 40000, destinationPort: port, uid: uid, gid: uid, exe: exe, comm: comm)
}

private func policy(_ text: String) throws -> Policy { try PolicyParser.parse(text, file: "p").get() }

@Suite struct PolicyEvaluation {
    @Test func firstMatchWinsElseDefault() throws {
        let p = try policy("""
            default = "deny"
            [[rule]]
            name = "web"
            action = "allow"
            uid = 1000
            proto = "tcp"
            dst_port = 8080
            [[rule]]
            name = "rest"
            action = "reject"
            uid = 1000
            log = true
            """)
        #expect(p.evaluate(tcp()) == PolicyDecision(action: .allow, ruleIndex: 0, ruleName: "web", log: false))
        #expect(p.evaluate(tcp(port: 9090)) == PolicyDecision(action: .reject, ruleIndex: 1, ruleName: "rest", log: true))
        #expect(p.evaluate(tcp(uid: 1001)).action == .deny)
        #expect(p.evaluate(tcp(uid: nil)).ruleName == "default")
    }

    @Test func exeGlobsAndComm() throws {
        let p = try policy("""
            default = "allow"
            [[rule]]
            action = "reject"
            exe = ["/usr/bin/*curl", "/opt/bad"]
            [[rule]]
            action = "deny"
            comm = "nc?"
            """)
        #expect(p.evaluate(tcp(exe: "/usr/bin/curl")).action == .reject)
        #expect(p.evaluate(tcp(exe: "/usr/bin/xcurl")).action == .reject)
        #expect(p.evaluate(tcp(exe: "/usr/bin/curl2")).action == .allow)
        #expect(p.evaluate(tcp(exe: "/opt/bad")).action == .reject)
        #expect(p.evaluate(tcp(exe: "/opt/bad/x")).action == .allow)
        #expect(p.evaluate(tcp(comm: "ncx")).action == .deny)
        #expect(p.evaluate(tcp(comm: "nc")).action == .allow)
        // Unknown exe: the rule does not match.
        #expect(p.evaluate(tcp()).action == .allow)
    }

    @Test func addressesBothFamilies() throws {
        let p = try policy("[[rule]]\naction = \"allow\"\ndst = [\"10.0.0.0/8\", \"fd00::/8\"]\n")
        #expect(p.evaluate(tcp(dst: "10.200.1.1")).action == .allow)
        #expect(p.evaluate(tcp(dst: "11.0.0.1")).action == .deny)
        var v6 = tcp()
        v6.destination = ip("fd12::1")
        #expect(p.evaluate(v6).action == .allow)
        v6.destination = ip("fe80::1")
        #expect(p.evaluate(v6).action == .deny)
    }

    @Test func icmpTypesByNameDependOnTheProtocol() throws {
        let p = try policy("default = \"deny\"\n[[rule]]\naction = \"allow\"\nicmp_type = \"echo-request\"\n")
        let ping4 = PolicySubject(direction: .outbound, protocolNumber: 1, source: ip("10.0.0.1"),
                                  destination: ip("10.0.0.2"), icmpType: 8)
        let ping6 = PolicySubject(direction: .outbound, protocolNumber: 58, source: ip("fd00::1"),
                                  destination: ip("fd00::2"), icmpType: 128)
        var wrong = ping6
        wrong.icmpType = 8
        #expect(p.evaluate(ping4).action == .allow)
        #expect(p.evaluate(ping6).action == .allow)
        #expect(p.evaluate(wrong).action == .deny)
    }

    @Test func cgroupPrefixesAtSlashes() throws {
        let p = try policy("[[rule]]\naction = \"allow\"\ncgroup = \"/system.slice/web\"\n")
        var subject = tcp()
        subject.cgroupPath = "/system.slice/web/child"
        #expect(p.evaluate(subject).action == .allow)
        subject.cgroupPath = "/system.slice/web"
        #expect(p.evaluate(subject).action == .allow)
        subject.cgroupPath = "/system.slice/webserver"
        #expect(p.evaluate(subject).action == .deny)
    }

    @Test func subjectFromAPacket() {
        let packet = PacketSummary(family: .ipv4, source: ip("10.0.0.1"), destination: ip("10.0.0.2"), protocolNumber: 17,
                                   totalLength: 40, fragment: nil,
                                   transport: .udp(PortPair(source: 5000, destination: 53)))
        let subject = PolicySubject(packet: packet, direction: .outbound)
        #expect(subject.sourcePort == 5000 && subject.destinationPort == 53 && subject.icmpType == nil)
    }

    @Test func globs() {
        #expect(Glob("*").matches(""))
        #expect(Glob("a*b*c").matches("aXXbYYc"))
        #expect(!Glob("a*b*c").matches("aXXbYY"))
        #expect(Glob("??").matches("ab") && !Glob("??").matches("abc"))
        #expect(Glob("*.service").matches("nginx.service"))
        #expect(Glob("/usr/bin/curl").isLiteral)
    }
}
