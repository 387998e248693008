import Foundation
import PacketModel
import Testing
@testable import Rules

/// Kernel counting (`RulesetSpec.countsOwners`): the table counts instead of logging, and the
/// daemon reads the owners set back.
@Suite struct OwnerCountingTests {
    static let service = CgroupClassifier(id: 97, level: 2, nftPath: "unified/system.slice/nginx.service",
                                          hierarchyPath: "/system.slice/nginx.service")

    @Test func countsInsteadOfLoggingInEveryCgroupChainAndTheFallback() throws {
        var spec = RulesetSpec(hooks: [.output, .input], cgroups: [Self.service])
        spec.countsOwners = true
        let definition = try NftScriptRenderer.definition(Ruleset(spec: spec), withHashComment: false)
        #expect(definition == """
            table inet nfowner {
            \tmap cgroups_l2 {
            \t\ttypeof socket cgroupv2 level 2 : verdict
            \t\telements = { "unified/system.slice/nginx.service" : goto cg_97 }
            \t}
            \tset owners {
            \t\ttypeof meta iif . meta skuid . meta mark
            \t\tsize 65536
            \t\tflags dynamic
            \t\tcounter
            \t}
            \tcounter owners_overflow {
            \t}
            \tchain cg_97 {
            \t\tadd @owners { meta iif . meta skuid . 97 } accept
            \t\tadd @owners { meta iif . 4294967295 . 97 } accept
            \t\tcounter name owners_overflow accept
            \t}
            \tchain classify {
            \t\tsocket cgroupv2 level 2 vmap @cgroups_l2
            \t\tadd @owners { meta iif . meta skuid . 0 } accept
            \t\tadd @owners { meta iif . 4294967295 . 0 } accept
            \t\tcounter name owners_overflow accept
            \t}
            \tchain output {
            \t\ttype filter hook output priority 100; policy accept;
            \t\tgoto classify
            \t}
            \tchain input {
            \t\ttype filter hook input priority 100; policy accept;
            \t\tgoto classify
            \t}
            }

            """)
        #expect(!definition.contains("log "), "nothing is logged: no per-packet upcall")
        // A cgroup the follower adds later gets the same counting chain.
        let added = try NftScriptRenderer.addCgroups([CgroupClassifier(id: 120, level: 2, nftPath: "unified/x/y",
                                                                       hierarchyPath: "/x/y")], spec: spec)
        #expect(added.contains("add rule inet nfowner cg_120 add @owners { meta iif . meta skuid . 120 } accept"))
    }

    @Test func theIptablesBackendRefusesKernelCounting() {
        var spec = RulesetSpec()
        spec.countsOwners = true
        #expect(throws: RulesError.self) { try IptablesRenderer.render(spec: spec, family: .ipv4) }
    }

    /// nft 1.0.6's listing of the set and the counter, as recorded here.
    static let setJSON = #"""
        {"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"set": {"family": "inet", "name": "owners", "table": "nfowner_counters", "type": ["iface_index", "uid", "mark"], "handle": 5, "size": 65536, "elem": [{"elem": {"val": {"concat": ["0", 0, 61452]}, "counter": {"packets": 2, "bytes": 2056}}}, {"elem": {"val": {"concat": ["0", 4294967295, 61452]}, "counter": {"packets": 2, "bytes": 2056}}}, {"elem": {"val": {"concat": ["lo", 4294967295, 61452]}, "counter": {"packets": 4, "bytes": 4112}}}, {"elem": {"val": {"concat": ["veth0", 4294967295, 61452]}, "counter": {"packets": 1, "bytes": 60}}}, {"elem": {"val": {"concat": ["lo", 1000, 0]}, "counter": {"packets": 3, "bytes": 300}}}], "stmt": [{"counter": null}]}}]}
        """#
    static let counterJSON = #"""
        {"nftables": [{"metainfo": {"version": "1.0.6", "release_name": "Lester Gooch #5", "json_schema_version": 1}}, {"counter": {"family": "inet", "name": "owners_overflow", "table": "nfowner_counters", "handle": 4, "packets": 7, "bytes": 700}}]}
        """#

    @Test func readsTheSetByDirectionUidAndCgroup() throws {
        let reading = try OwnerCounterReading.parse(setJSON: Self.setJSON, counterJSON: Self.counterJSON)
        #expect(reading.counts == [
            OwnerCounterKey(inbound: false, uid: 0, cgroupKey: 61452): OwnerCount(packets: 2, bytes: 2056),
            OwnerCounterKey(inbound: false, uid: nil, cgroupKey: 61452): OwnerCount(packets: 2, bytes: 2056),
            OwnerCounterKey(inbound: true, uid: nil, cgroupKey: 61452): OwnerCount(packets: 5, bytes: 4172),
            OwnerCounterKey(inbound: true, uid: 1000, cgroupKey: 0): OwnerCount(packets: 3, bytes: 300),
        ])
        #expect(reading.overflow == OwnerCount(packets: 7, bytes: 700))
        let empty = try OwnerCounterReading.parse(setJSON: #"{"nftables": [{"set": {"name": "owners"}}]}"#,
                                                  counterJSON: #"{"nftables": []}"#)
        #expect(empty.counts.isEmpty)
    }

    @Test(arguments: [
        #"not json"#, #"{"other": []}"#,
        #"{"nftables": [{"set": {"elem": [{"elem": {"val": {"concat": ["0", 0]}, "counter": {"packets": 1, "bytes": 1}}}]}}]}"#,
        #"{"nftables": [{"set": {"elem": [{"elem": {"val": {"concat": ["0", -1, 5]}, "counter": {"packets": 1, "bytes": 1}}}]}}]}"#,
        #"{"nftables": [{"set": {"elem": [{"elem": {"val": {"concat": ["0", 0, 5]}}}]}}]}"#,
        #"{"nftables": [{"set": {"elem": [{"elem": {"val": {"concat": ["0", 0, 99999999999]}, "counter": {"packets": 1, "bytes": 1}}}]}}]}"#,
    ])
    func refusesWhatItCannotRead(json: String) {
        #expect(throws: RulesError.self) { try OwnerCounterReading.parse(setJSON: json, counterJSON: Self.counterJSON) }
    }
}
