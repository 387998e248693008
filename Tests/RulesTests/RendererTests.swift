import Testing
@testable import Rules

@Suite struct RendererTests {
    /// sha256sum of the default definition without its comment line (computed with coreutils).
    static let defaultHash = "7e8915af8c40176bd10cd3f54635b090544b5eddfa43f0886663f57b5e5e8f55"

    @Test func defaultSpecGolden() throws {
        let script = try NftScriptRenderer.install(RulesetSpec())
        #expect(script == """
            # nfowner: replaces table inet nfowner in one transaction; no other table is touched.
            table inet nfowner
            delete table inet nfowner
            table inet nfowner {
            \tcomment "nfowner ruleset sha256=\(Self.defaultHash)"
            \tset new_flows_v4 {
            \t\ttypeof ip saddr . ip daddr . meta l4proto . th sport . th dport
            \t\tsize 65536
            \t\tflags dynamic,timeout
            \t\ttimeout 2s
            \t}
            \tset new_flows_v6 {
            \t\ttypeof ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport
            \t\tsize 65536
            \t\tflags dynamic,timeout
            \t\ttimeout 2s
            \t}
            \tchain output {
            \t\ttype filter hook output priority 100; policy accept;
            \t\t\(Self.newFlowRule(.ipv4, log: #"log prefix "nfowner" group 5 snaplen 128"#))
            \t\t\(Self.newFlowRule(.ipv6, log: #"log prefix "nfowner" group 5 snaplen 128"#))
            \t\tcounter log prefix "nfowner" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
            \t}
            }

            """)
        #expect(try NftScriptRenderer.contentHash(RulesetSpec()) == Self.defaultHash)
    }

    /// A family's first rule with new flows delivered at once: `matches` then the flow-set
    /// lookup, remember, count, log with threshold 1, accept.
    static func newFlowRule(_ family: FlowSet.Family, matches: String = "", log: String) -> String {
        let ip = family == .ipv4 ? "ip" : "ip6"
        let set = family == .ipv4 ? "new_flows_v4" : "new_flows_v6"
        let key = "\(ip) saddr . \(ip) daddr . meta l4proto . th sport . th dport"
        return "\(matches)\(key) != @\(set) add @\(set) { \(key) } counter \(log) queue-threshold 1 accept comment \"nfowner log\""
    }

    @Test func newFlowRulesRepeatTheSelectorsAndTheSetTimeout() throws {
        let spec = RulesetSpec(uids: [1000], newFlowSeconds: 30)
        let definition = try NftScriptRenderer.definition(Ruleset(spec: spec), withHashComment: false)
        let log = #"log prefix "nfowner" group 5 snaplen 128"#
        #expect(definition.contains("\t\ttimeout 30s\n"))
        #expect(definition.contains("\t\t" + Self.newFlowRule(.ipv4, matches: "meta skuid 1000 ", log: log) + "\n"))
        #expect(definition.contains("\t\t" + Self.newFlowRule(.ipv6, matches: "meta skuid 1000 ", log: log) + "\n"))
        #expect(definition.contains("\t\tmeta skuid 1000 counter \(log) queue-threshold 64 comment \"nfowner log\"\n"))
        let outOfRange = #expect(throws: RulesError.self) { try Ruleset(spec: RulesetSpec(newFlowSeconds: 3601)) }
        #expect(outOfRange?.code == .invalidSpec)
    }

    @Test func uidAndGidSelectorsGolden() throws {
        let spec = RulesetSpec(group: 7, snaplen: 96, queueThreshold: 0, prefix: "web: ",
                               uids: [1001, 1000, 1001], gids: [100], priority: -5, newFlowSeconds: 0)
        let definition = try NftScriptRenderer.definition(Ruleset(spec: spec), withHashComment: false)
        #expect(definition == """
            table inet nfowner {
            \tchain output {
            \t\ttype filter hook output priority -5; policy accept;
            \t\tmeta skuid { 1000, 1001 } meta skgid 100 counter log prefix "web: " group 7 snaplen 96 comment "nfowner log"
            \t}
            }

            """)
    }

    @Test func selectorOrderDoesNotChangeTheHash() throws {
        let a = try NftScriptRenderer.contentHash(RulesetSpec(uids: [3, 1, 2]))
        let b = try NftScriptRenderer.contentHash(RulesetSpec(uids: [1, 2, 3, 3]))
        #expect(a == b)
    }

    @Test(arguments: [
        RulesetSpec(group: 6), RulesetSpec(snaplen: 129), RulesetSpec(queueThreshold: 21),
        RulesetSpec(prefix: "nfownerx"), RulesetSpec(uids: [0]), RulesetSpec(gids: [0]),
        RulesetSpec(priority: 101), RulesetSpec(tableName: "nfowner2"), RulesetSpec(newFlowSeconds: 0),
        RulesetSpec(newFlowSeconds: 3),
    ])
    func hashChangesWithEveryField(spec: RulesetSpec) throws {
        #expect(try NftScriptRenderer.contentHash(spec) != Self.defaultHash)
    }

    @Test func removeScriptIsIdempotentTransaction() throws {
        #expect(try NftScriptRenderer.remove(RulesetSpec()) == """
            # nfowner: deletes table inet nfowner; no other table is touched.
            table inet nfowner
            delete table inet nfowner

            """)
    }

    @Test(arguments: [
        "a\"b", "x\" ; flush ruleset ; \"", "a;b", "a{b", "a}b", "line\nbreak", "tab\there", "a$b", "back\\slash",
        "a#b", "é", "del\u{7f}", "esc\u{1b}[31m",
    ])
    func hostilePrefixesAreRejected(prefix: String) {
        let error = #expect(throws: RulesError.self) { try NftScriptRenderer.install(RulesetSpec(prefix: prefix)) }
        #expect(error?.code == .unsafeText)
        // The reason must not itself carry the control character.
        #expect(error?.reason.contains("\n") == false)
    }

    @Test func prefixLengthLimitIs127Bytes() throws {
        _ = try NftScriptRenderer.install(RulesetSpec(prefix: String(repeating: "x", count: 127)))
        let error = #expect(throws: RulesError.self) {
            try NftScriptRenderer.install(RulesetSpec(prefix: String(repeating: "x", count: 128)))
        }
        #expect(error?.code == .unsafeText)
        _ = try NftScriptRenderer.install(RulesetSpec(prefix: ""))
        _ = try NftScriptRenderer.install(RulesetSpec(prefix: "host-1.example: uid=1000, grp@x/y+z"))
    }

    @Test(arguments: ["", "1abc", "a-b", "a b", "a;b", "nf\nowner", "a.b", String(repeating: "t", count: 65)])
    func badTableNamesAreRejected(name: String) {
        let error = #expect(throws: RulesError.self) { try NftScriptRenderer.install(RulesetSpec(tableName: name)) }
        #expect(error?.code == .unsafeText)
        #expect(throws: RulesError.self) { try NftScriptRenderer.remove(RulesetSpec(tableName: name)) }
        #expect(throws: RulesError.self) { try NftRunner(netns: nil, nftPath: "/nonexistent").listTable(name: name) }
    }

    @Test func invalidSpecsAreRejected() {
        for spec in [RulesetSpec(snaplen: 0), RulesetSpec(snaplen: 65536), RulesetSpec(hooks: []),
                     RulesetSpec(hooks: [.output, .output])] {
            let error = #expect(throws: RulesError.self) { try spec.validate() }
            #expect(error?.code == .invalidSpec)
        }
    }

    @Test func sha256MatchesKnownVectors() {
        #expect(SHA256.hexDigest([]) == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(SHA256.hexDigest(Array("abc".utf8)) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(SHA256.hexDigest(Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8))
            == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(SHA256.hexDigest([UInt8](repeating: UInt8(ascii: "a"), count: 1000))
            == "41edece42d63e8d9bf515a9ba6932e1c20cbc9f5a5d134645adb5db1b9737ea3")
    }
}
