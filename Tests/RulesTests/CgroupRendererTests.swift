import Foundation
import PacketModel
import Testing
@testable import Rules

@Suite struct CgroupRendererTests {
    static let a = CgroupClassifier(id: 81, level: 1, nftPath: "unified/system.slice", hierarchyPath: "/system.slice")
    static let b = CgroupClassifier(id: 97, level: 2, nftPath: "unified/system.slice/nginx.service",
                                    hierarchyPath: "/system.slice/nginx.service")

    @Test func classificationGolden() throws {
        let spec = RulesetSpec(uids: [0], hooks: [.output, .input], cgroups: [Self.b, Self.a], cgroupLevels: [3],
                               newFlowSeconds: 0)
        let definition = try NftScriptRenderer.definition(Ruleset(spec: spec), withHashComment: false)
        #expect(definition == """
            table inet nfowner {
            \tmap cgroups_l3 {
            \t\ttypeof socket cgroupv2 level 3 : verdict
            \t}
            \tmap cgroups_l2 {
            \t\ttypeof socket cgroupv2 level 2 : verdict
            \t\telements = { "unified/system.slice/nginx.service" : goto cg_97 }
            \t}
            \tmap cgroups_l1 {
            \t\ttypeof socket cgroupv2 level 1 : verdict
            \t\telements = { "unified/system.slice" : goto cg_81 }
            \t}
            \tchain cg_81 {
            \t\tcounter log prefix "nfowner cg=81" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
            \t\taccept
            \t}
            \tchain cg_97 {
            \t\tcounter log prefix "nfowner cg=97" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
            \t\taccept
            \t}
            \tchain classify {
            \t\tsocket cgroupv2 level 3 vmap @cgroups_l3
            \t\tsocket cgroupv2 level 2 vmap @cgroups_l2
            \t\tsocket cgroupv2 level 1 vmap @cgroups_l1
            \t\tcounter log prefix "nfowner" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
            \t}
            \tchain output {
            \t\ttype filter hook output priority 100; policy accept;
            \t\tmeta skuid 0 goto classify
            \t}
            \tchain input {
            \t\ttype filter hook input priority 100; policy accept;
            \t\tmeta skuid 0 goto classify
            \t}
            }

            """)
    }

    @Test func defaultSpecIsUnchangedByTheNewFields() throws {
        #expect(try NftScriptRenderer.contentHash(RulesetSpec()) == RendererTests.defaultHash)
        #expect(try NftScriptRenderer.contentHash(RulesetSpec(cgroupLevels: [1])) != RendererTests.defaultHash)
        #expect(try NftScriptRenderer.contentHash(RulesetSpec(hooks: [.output, .input])) != RendererTests.defaultHash)
    }

    @Test func runtimeScripts() throws {
        let spec = RulesetSpec(cgroupLevels: [1, 2])
        let log = #"log prefix "nfowner cg=97" group 5 snaplen 128"#
        #expect(try NftScriptRenderer.addCgroups([Self.b], spec: spec) == """
            # nfowner: adds 1 cgroup(s) to inet nfowner in one transaction.
            add chain inet nfowner cg_97
            flush chain inet nfowner cg_97
            add rule inet nfowner cg_97 \(RendererTests.newFlowRule(.ipv4, log: log))
            add rule inet nfowner cg_97 \(RendererTests.newFlowRule(.ipv6, log: log))
            add rule inet nfowner cg_97 counter log prefix "nfowner cg=97" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
            add rule inet nfowner cg_97 accept
            add element inet nfowner cgroups_l2 { "unified/system.slice/nginx.service" : goto cg_97 }

            """)
        #expect(try NftScriptRenderer.removeCgroups([Self.a], keeping: [Self.b], spec: spec) == """
            # nfowner: removes 1 cgroup(s) from inet nfowner in one transaction.
            flush map inet nfowner cgroups_l1
            add chain inet nfowner cg_81
            delete chain inet nfowner cg_81

            """)
        let error = #expect(throws: RulesError.self) { try NftScriptRenderer.addCgroups([Self.b], spec: RulesetSpec(cgroupLevels: [1])) }
        #expect(error?.code == .invalidSpec)
    }

    @Test func prefixRoundTrip() {
        #expect(CgroupClassifier.logPrefix(id: 97) == "nfowner cg=97")
        #expect(CgroupClassifier.defaultPrefixStart == "nfowner cg=")
        #expect(ClassificationPrefix.cgroupID(fromPrefix: "nfowner cg=97") == 97)
        #expect(ClassificationPrefix.cgroupID(fromPrefix: "x cg=1 cg=18446744073709551615") == .max)
        for bad in ["nfowner", "nfowner cg=", "nfowner cg=18446744073709551616", "nfowner cg=-1", "nfowner cg=1 ",
                    "nfowner cg=0x10", "", "cg=5", "nfowner cg=١"] {
            #expect(ClassificationPrefix.cgroupID(fromPrefix: bad) == nil, "\(bad)")
        }
    }

    static let hostile = [
        "a\"b", "x\" ; flush ruleset ; \"", "a;b", "a{b", "a}b", "line\nbreak", "a$b", "back\\slash", "a#b", "é",
        "tab\there", "..", ".",
    ]

    @Test(arguments: hostile)
    func hostileCgroupNamesNeverRender(name: String) {
        let cgroup = CgroupClassifier(id: 5, level: 2, nftPath: "unified/evil/" + name, hierarchyPath: "/evil/" + name)
        for spec in [RulesetSpec(cgroups: [cgroup]), RulesetSpec(hooks: [.output], cgroups: [cgroup])] {
            let error = #expect(throws: RulesError.self) { try NftScriptRenderer.install(spec) }
            #expect(error?.code == .unsafeText)
            #expect(error?.reason.contains("\n") == false)
            #expect(throws: RulesError.self) { try IptablesRenderer.render(spec: spec, family: .ipv4) }
        }
        #expect(throws: RulesError.self) { try NftScriptRenderer.addCgroups([cgroup], spec: RulesetSpec(cgroupLevels: [2])) }
        #expect(throws: RulesError.self) {
            try NftScriptRenderer.removeCgroups([], keeping: [cgroup], spec: RulesetSpec(cgroupLevels: [2]))
        }
        let (renderable, skipped) = CgroupClassifier.partitionRenderable([Self.a, cgroup, Self.b])
        #expect(renderable == [Self.a, Self.b])
        #expect(skipped.map(\.cgroup) == [cgroup])
    }

    @Test func inconsistentClassifiersAreRejected() {
        let bad = [
            CgroupClassifier(id: 1, level: 1, nftPath: "unified/a/b", hierarchyPath: "/a/b"),   // depth 2
            CgroupClassifier(id: 1, level: 0, nftPath: "unified", hierarchyPath: "/"),
            CgroupClassifier(id: 1, level: 1, nftPath: "unified/x", hierarchyPath: "/a"),
            CgroupClassifier(id: 1, level: 1, nftPath: "a", hierarchyPath: "a"),
            CgroupClassifier(id: 1, level: 2, nftPath: "a//b", hierarchyPath: "/a//b"),
        ]
        for cgroup in bad { #expect(throws: RulesError.self) { try cgroup.validate() } }
        #expect(throws: RulesError.self) { try RulesetSpec(cgroups: [Self.a, Self.a]).validate() }
        #expect(throws: RulesError.self) { try RulesetSpec(cgroupLevels: [0]).validate() }
        // A prefix that fits alone but not with " cg=<20 digits>".
        #expect(throws: RulesError.self) { try RulesetSpec(prefix: String(repeating: "p", count: 110), cgroupLevels: [1]).validate() }
    }

    @Test func iptablesGolden() throws {
        let spec = RulesetSpec(hooks: [.output, .input], cgroups: [Self.a, Self.b])
        #expect(try IptablesRenderer.render(spec: spec, family: .ipv4) == """
            # Generated by `nfowner rules show --backend iptables --family ipv4`; do not edit.
            # Load with: iptables-restore --noflush < FILE, then add the jump(s) if absent:
            #   iptables -C OUTPUT -j NFOWNER-OUT || iptables -A OUTPUT -j NFOWNER-OUT
            #   iptables -C INPUT -j NFOWNER-IN || iptables -A INPUT -j NFOWNER-IN
            *filter
            :NFOWNER-OUT - [0:0]
            :NFOWNER-IN - [0:0]
            -A NFOWNER-OUT -m cgroup --path "system.slice/nginx.service" -j NFLOG --nflog-group 5 --nflog-prefix "nfowner cg=97" --nflog-size 128 --nflog-threshold 64
            -A NFOWNER-OUT -m cgroup --path "system.slice/nginx.service" -j RETURN
            -A NFOWNER-OUT -m cgroup --path "system.slice" -j NFLOG --nflog-group 5 --nflog-prefix "nfowner cg=81" --nflog-size 128 --nflog-threshold 64
            -A NFOWNER-OUT -m cgroup --path "system.slice" -j RETURN
            -A NFOWNER-OUT -j NFLOG --nflog-group 5 --nflog-prefix "nfowner" --nflog-size 128 --nflog-threshold 64
            -A NFOWNER-IN -m cgroup --path "system.slice/nginx.service" -j NFLOG --nflog-group 5 --nflog-prefix "nfowner cg=97" --nflog-size 128 --nflog-threshold 64
            -A NFOWNER-IN -m cgroup --path "system.slice/nginx.service" -j RETURN
            -A NFOWNER-IN -m cgroup --path "system.slice" -j NFLOG --nflog-group 5 --nflog-prefix "nfowner cg=81" --nflog-size 128 --nflog-threshold 64
            -A NFOWNER-IN -m cgroup --path "system.slice" -j RETURN
            -A NFOWNER-IN -j NFLOG --nflog-group 5 --nflog-prefix "nfowner" --nflog-size 128 --nflog-threshold 64
            COMMIT

            """)
        let owners = try IptablesRenderer.render(spec: RulesetSpec(uids: [1000, 0], gids: [100]), family: .ipv6)
        #expect(owners.contains("-A NFOWNER-OUT -m owner --uid-owner 0 --gid-owner 100 -g NFOWNER-CLS\n"
            + "-A NFOWNER-OUT -m owner --uid-owner 1000 --gid-owner 100 -g NFOWNER-CLS\n"
            + "-A NFOWNER-CLS -j NFLOG"))
        #expect(throws: RulesError.self) { try IptablesRenderer.render(spec: RulesetSpec(uids: [0], hooks: [.input]), family: .ipv4) }
    }

    /// The checked-in files are the default spec's rendering. Regenerate with
    /// `NFOWNER_REGENERATE=1 swift test --filter iptablesFilesAreCurrent` (or `nfowner rules show --backend iptables`).
    @Test func iptablesFilesAreCurrent() throws {
        let folder = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("iptables-rules")
        for (family, name) in [(IptablesFamily.ipv4, "nfowner.rules"), (.ipv6, "nfowner6.rules")] {
            let expected = try IptablesRenderer.render(spec: RulesetSpec(), family: family)
            let file = folder.appendingPathComponent(name)
            if ProcessInfo.processInfo.environment["NFOWNER_REGENERATE"] == "1" {
                try expected.write(to: file, atomically: true, encoding: .utf8)
            }
            let actual = try String(contentsOf: file, encoding: .utf8)
            #expect(actual == expected, "\(name) is stale: regenerate it with `nfowner rules show --backend iptables`")
        }
    }
}
