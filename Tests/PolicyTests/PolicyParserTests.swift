import PacketParsing
import Policy
import Testing

private func check(_ text: String) -> PolicyCheck { PolicyParser.parse(text, file: "p.toml") }

private func only(_ text: String) -> PolicyError? {
    let result = check(text)
    #expect(result.errors.count == 1, "\(result.errors)")
    return result.errors.first
}

@Suite struct PolicyParsing {
    @Test func theIssuesExample() throws {
        let policy = try check("""
            default = "deny"          # allow | deny
            mode = "enforce"
            fail = "closed"

            [[rule]]
            name = "web-only"
            action = "allow"
            log = true
            uid = [1000]
            proto = ["tcp"]
            dst_port = [8080, "8000-8100"]
            """).get()
        #expect(policy.defaultAction == .deny)
        #expect(policy.mode == .enforce)
        #expect(policy.fail == .closed)
        #expect(policy.rules == [PolicyRule(name: "web-only", action: .allow, log: true, matchers: [
            .uid([1000]), .proto([6]), .destinationPort([PortRange(8080, 8080)!, PortRange(8000, 8100)!]),
        ], line: 5)])
    }

    @Test func everyMatcher() throws {
        let policy = try check("""
            default = "allow"
            mode = "audit"
            fail = "open"
            directions = ["out", "in"]
            log_default = true
            [[rule]]
            action = "reject"
            uid = 0
            user = ["alice"]
            gid = [100]
            group = "staff"
            unit = ["nginx.service", "user@*.service"]
            cgroup = "system.slice/"
            exe = ["/usr/bin/curl", "*/wget"]
            comm = "curl"
            direction = "out"
            proto = ["udp", 58, "ICMP"]
            dst = ["10.0.0.0/8", "2001:db8::/32", "192.0.2.1"]
            src = "::1"
            dst_port = "53"
            src_port = ["1024 - 65535"]
            icmp_type = ["echo-request", 3]
            """).get()
        #expect(policy.directions == [.outbound, .inbound])
        #expect(policy.logDefault)
        let rule = try #require(policy.rules.first)
        #expect(rule.name == "rule 1")
        #expect(rule.matchers.map(\.key) == PolicyParser.matcherKeys)
        #expect(rule.matchers.contains(.cgroup(["/system.slice"])))
        #expect(rule.matchers.contains(.proto([17, 58, 1])))
        #expect(rule.matchers.contains(.sourcePort([PortRange(1024, 65535)!])))
        #expect(rule.matchers.contains(.source([CIDR(address: IPAddress(parsing: "::1")!, prefixLength: 128)!])))
    }

    @Test func emptyFileIsDenyEverythingEnforcedFailClosed() throws {
        let policy = try check("").get()
        #expect(policy == Policy())
        #expect(policy.defaultAction == .deny && policy.fail == .closed && policy.directions == [.outbound])
    }

    @Test func syntaxErrorHasItsLine() {
        let error = only("default = \"deny\"\n[[rule]]\naction = allow\n")
        #expect(error?.code == .syntax)
        #expect(error?.line == 3)
        #expect(error?.description.hasPrefix("p.toml:3: invalid TOML") == true)
    }

    @Test func unknownKeySuggests() {
        let error = only("[[rule]]\naction = \"deny\"\n\ndst_prot = 22\n")
        #expect(error?.code == .unknownKey)
        #expect(error?.description == "p.toml:4: unknown key dst_prot in rule 1 (did you mean dst_port?)")
        let top = only("defualt = \"allow\"\n")
        #expect(top?.description == "p.toml:1: unknown top-level key defualt (did you mean default?)")
        let misplaced = only("uid = 5\n")
        #expect(misplaced?.reason.contains("[[rule]]") == true)
        let rules = only("[[rules]]\naction = \"deny\"\n")
        #expect(rules?.description == "p.toml:1: unknown top-level key rules (did you mean rule?)")
    }

    @Test func invalidCIDRs() {
        let bad = only("[[rule]]\naction = \"deny\"\ndst = [\"10.0.0.0/8\", \"10.1.2.3/8\"]\n")
        #expect(bad?.code == .invalidValue)
        #expect(bad?.description == "p.toml:3: rule 1 dst[1]: \"10.1.2.3/8\" is not a valid CIDR block: it has host bits set (did you mean \"10.0.0.0/8\"?)")
        #expect(only("[[rule]]\naction = \"deny\"\nsrc = \"10.0.0.0/33\"\n")?.reason.contains("0 to 32") == true)
        #expect(only("[[rule]]\naction = \"deny\"\nsrc = \"300.0.0.1\"\n")?.reason.contains("not an IPv4 or IPv6") == true)
        #expect(only("[[rule]]\naction = \"deny\"\nsrc = \"fe80::/x\"\n")?.code == .invalidValue)
        #expect(only("[[rule]]\naction = \"deny\"\nsrc = 10\n")?.code == .wrongType)
    }

    @Test func badRanges() {
        let reversed = only("[[rule]]\naction = \"deny\"\ndst_port = \"9000-8000\"\n")
        #expect(reversed?.description == "p.toml:3: rule 1 dst_port: \"9000-8000\" is not a port range: 9000 is above 8000 (did you mean \"8000-9000\"?)")
        #expect(only("[[rule]]\naction = \"deny\"\ndst_port = 70000\n")?.code == .outOfRange)
        #expect(only("[[rule]]\naction = \"deny\"\ndst_port = \"80-\"\n")?.code == .invalidValue)
        #expect(only("[[rule]]\naction = \"deny\"\ndst_port = \"-1\"\n")?.code == .invalidValue)
        #expect(only("[[rule]]\naction = \"deny\"\ndst_port = \"8a\"\n")?.code == .invalidValue)
        #expect(only("[[rule]]\naction = \"deny\"\ndst_port = []\n")?.reason.contains("empty list") == true)
    }

    @Test func wrongTypes() {
        #expect(only("[[rule]]\naction = \"deny\"\nuid = \"alice\"\n")?.description
                == "p.toml:3: rule 1 uid: must be an integer, got \"alice\"")
        #expect(only("[[rule]]\naction = \"deny\"\nlog = \"yes\"\n")?.code == .wrongType)
        #expect(only("default = true\n")?.code == .wrongType)
        #expect(only("rule = 5\n")?.code == .wrongType)
        #expect(only("[[rule]]\naction = \"deny\"\nuid = { a = 1 }\n")?.code == .wrongType)
    }

    @Test func badValues() {
        #expect(only("default = \"reject\"\n")?.reason.contains("is not one of \"allow\", \"deny\"") == true)
        #expect(only("[[rule]]\naction = \"alow\"\n")?.reason.contains("did you mean \"allow\"") == true)
        #expect(only("[[rule]]\naction = \"deny\"\nexe = \"curl\"\n")?.reason.contains("comm") == true)
        #expect(only("[[rule]]\naction = \"deny\"\ncomm = \"a-very-long-program-name\"\n")?.reason.contains("15 bytes") == true)
        #expect(only("[[rule]]\naction = \"deny\"\nproto = \"tcpp\"\n")?.reason.contains("did you mean \"tcp\"") == true)
        #expect(only("[[rule]]\naction = \"deny\"\ncgroup = \"/a/../b\"\n")?.code == .invalidValue)
        #expect(only("[[rule]]\naction = \"deny\"\nuid = -1\n")?.code == .outOfRange)
        #expect(only("[[rule]]\nname = \"x\"\n")?.code == .missingKey)
        #expect(only("[[rule]]\nname = \"x\"\naction = \"deny\"\n[[rule]]\nname = \"x\"\naction = \"allow\"\n")?.line == 5)
    }

    @Test func everyErrorIsReportedEachWithItsLine() {
        let result = check("""
            mode = "enforced"
            [[rule]]
            action = "deny"
            dst = "10.0.0.1/8"
            [[rule]]
            action = "allow"
            dst_port = "9-1"
            colour = "red"
            """)
        #expect(result.policy == nil)
        #expect(result.errors.map(\.line) == [1, 4, 8, 7])
    }

    @Test func shadowedRulesAreWarnedAbout() throws {
        let result = check("""
            [[rule]]
            name = "all-tcp"
            action = "allow"
            proto = "tcp"
            dst = "10.0.0.0/8"

            [[rule]]
            name = "ssh"
            action = "deny"
            proto = "tcp"
            dst = "10.1.0.0/16"
            dst_port = 22

            [[rule]]
            name = "udp"
            action = "deny"
            proto = ["udp", "tcp"]
            """)
        #expect(result.errors.isEmpty)
        #expect(result.policy != nil)
        #expect(result.warnings.map(\.description) == [
            "p.toml:7: warning: rule \"ssh\" can never match: rule \"all-tcp\" (line 1) before it matches everything it would; move it up or remove it",
        ])
    }

    @Test func aRuleWithoutMatchersShadowsEverythingAfterIt() {
        let result = check("[[rule]]\naction = \"allow\"\n[[rule]]\naction = \"deny\"\nexe = \"/bin/x\"\n")
        #expect(result.warnings.count == 1)
        #expect(result.warnings.first?.line == 3)
    }

    @Test func missingFileAndNul() {
        let missing = PolicyParser.load(path: "/nonexistent/policy.toml")
        #expect(missing.errors.first?.code == .fileNotFound)
        #expect(only("default = \"deny\"\n\u{0}")?.code == .unreadable)
    }
}
