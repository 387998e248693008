import Testing
@testable import Rules

/// The netdev table for packet sockets' frames: rendered with the inet one, in its transaction
/// and its hash, and validated before anything reaches nft.
@Suite struct PacketSocketTableTests {
    static func spec(_ interfaces: [String]) -> RulesetSpec {
        var spec = RulesetSpec()
        spec.packetSocketInterfaces = interfaces
        return spec
    }

    @Test func definitionGolden() throws {
        var spec = Self.spec(["eth0", "veth.7"])
        spec.uids = [1000]
        spec.newFlowGroup = 6
        let table = try #require(PacketSocketTable(spec: spec))
        #expect(try NftScriptRenderer.definition(table) == """
            table netdev nfowner {
            \tset packet_senders {
            \t\ttypeof meta skuid
            \t\tsize 4096
            \t\tflags dynamic,timeout
            \t\ttimeout 2s
            \t}
            \tchain egress_eth0 {
            \t\ttype filter hook egress device "eth0" priority 100; policy accept;
            \t\tmeta rtclassid 0-4294967295 return comment "routed: an IP socket's packet, logged at the IP hooks"
            \t\tmeta skuid 1000 meta skuid != @packet_senders add @packet_senders { meta skuid } counter log prefix "nfowner" group 6 snaplen 146 queue-threshold 1 accept
            \t\tmeta skuid 1000 meta skuid 0-4294967295 counter log prefix "nfowner" group 5 snaplen 146 queue-threshold 64 comment "nfowner log"
            \t}
            \tchain egress_veth_7 {
            \t\ttype filter hook egress device "veth.7" priority 100; policy accept;
            \t\tmeta rtclassid 0-4294967295 return comment "routed: an IP socket's packet, logged at the IP hooks"
            \t\tmeta skuid 1000 meta skuid != @packet_senders add @packet_senders { meta skuid } counter log prefix "nfowner" group 6 snaplen 146 queue-threshold 1 accept
            \t\tmeta skuid 1000 meta skuid 0-4294967295 counter log prefix "nfowner" group 5 snaplen 146 queue-threshold 64 comment "nfowner log"
            \t}
            }

            """)
    }

    @Test func installedAndRemovedWithTheInetTableInOneScript() throws {
        let install = try NftScriptRenderer.install(Self.spec(["eth0"]))
        #expect(install.contains("delete table inet nfowner"))
        #expect(install.hasSuffix("}\n") && install.contains("table netdev nfowner\ndelete table netdev nfowner\ntable netdev nfowner {"))
        #expect(!(try NftScriptRenderer.install(RulesetSpec())).contains("netdev"))
        #expect(try NftScriptRenderer.remove(Self.spec(["eth0"])).contains("delete table netdev nfowner"))
        #expect(!(try NftScriptRenderer.remove(RulesetSpec())).contains("netdev"))
    }

    /// Another interface list is another ruleset: an installed one is not taken for it.
    @Test func theInterfacesAreInTheHash() throws {
        let plain = try NftScriptRenderer.contentHash(RulesetSpec())
        let eth0 = try NftScriptRenderer.contentHash(Self.spec(["eth0"]))
        let eth1 = try NftScriptRenderer.contentHash(Self.spec(["eth1"]))
        #expect(Set([plain, eth0, eth1]).count == 3)
    }

    @Test func withoutNewFlowsEveryFrameIsBatched() throws {
        var spec = Self.spec(["eth0"])
        spec.newFlowSeconds = 0
        let text = try NftScriptRenderer.definition(try #require(PacketSocketTable(spec: spec)))
        #expect(!text.contains("packet_senders") && text.contains("group 5 snaplen 146 queue-threshold 64"))
        spec.countsOwners = true
        #expect(PacketSocketTable(spec: spec) == nil)
    }

    @Test(arguments: [
        (["eth 0"], "is not an interface name"),
        (["abcdefghijklmnop"], "is not an interface name"),
        ([""], "is not an interface name"),
        (["eth0\"; flush ruleset"], "is not an interface name"),
        (["eth0", "eth0"], "listed twice"),
        (["a.b", "a_b"], "give two chains one name"),
    ])
    func badInterfaceListsAreRefused(interfaces: [String], message: String) {
        #expect {
            try Self.spec(interfaces).validate()
        } throws: { error in
            (error as? RulesError).map { $0.code == .invalidSpec && $0.reason.contains(message) } ?? false
        }
    }
}
