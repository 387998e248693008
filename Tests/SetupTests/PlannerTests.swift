import Configuration
import Attribution
import Rules
import Setup
import Testing

@Suite struct PlannerTests {
    static let hybrid = CgroupMount(mountPoint: "/sys/fs/cgroup/unified")
    static let tree = CgroupTree(mountPoint: "/sys/fs/cgroup/unified", maxLevel: 8, nodes: [
        CgroupNode(id: 1, path: "/", level: 0),
        CgroupNode(id: 10, path: "/system.slice", level: 1),
        CgroupNode(id: 11, path: "/system.slice/nginx.service", level: 2),
        CgroupNode(id: 12, path: "/system.slice/cron.service", level: 2),
        CgroupNode(id: 20, path: "/user.slice", level: 1),
        CgroupNode(id: 21, path: "/user.slice/user-1000.slice", level: 2),
        CgroupNode(id: 22, path: "/user.slice/user-1000.slice/session-3.scope", level: 3),
        CgroupNode(id: 23, path: "/user.slice/user-1000.slice/session-3.scope/deep", level: 4),
        CgroupNode(id: 30, path: "/evil\"; drop", level: 1),
    ])

    static func plan(_ config: NfownerConfig = NfownerConfig(), _ overrides: Overrides = Overrides(),
                     mount: CgroupMount? = hybrid, tree: CgroupTree? = tree) throws -> Plan {
        try Planner.plan(config: config, overrides: overrides, cgroupMount: mount, tree: tree,
                         lookUpUser: { $0 == "alice" ? 1000 : nil }, lookUpGroup: { $0 == "adm" ? 4 : nil })
    }

    @Test func defaultsClassifyLevelsOneToThreeAndSkipUnsafeNames() throws {
        let plan = try Self.plan()
        #expect(plan.spec.group == 5)
        #expect(plan.spec.snaplen == 128)
        #expect(plan.spec.hooks == [.output])
        #expect(plan.spec.cgroupLevels == [1, 2, 3])
        #expect(Set(plan.spec.cgroups.map(\.id)) == [10, 11, 12, 20, 21, 22])
        #expect(plan.spec.logsUnclassified)
        #expect(plan.follow)
        let nginx = try #require(plan.spec.cgroups.first { $0.id == 11 })
        #expect(nginx.nftPath == "unified/system.slice/nginx.service")
        #expect(nginx.level == 2)
        #expect(plan.notes.contains { $0.contains("skipping cgroup /evil") })
        // The unsafe name never reaches nft text.
        let script = try NftScriptRenderer.install(plan.spec)
        #expect(!script.contains("evil"))
    }

    /// Hold mode is off by default; on, its queue is the group's number unless set, and what it
    /// holds is narrowed by the same owner selectors as the ruleset.
    @Test func holdModeTakesTheGroupsNumberAndTheSelectors() throws {
        #expect(try Self.plan().hold == nil)
        #expect(try Self.plan().queue == nil)
        var overrides = Overrides()
        overrides.holdNewFlows = true
        overrides.group = 9
        overrides.userNames = ["alice"]
        let held = try Self.plan(NfownerConfig(), overrides)
        #expect(held.hold == HoldSpec(queue: 9, uids: [1000]))
        #expect(held.queue?.queue == 9)
        #expect(held.queue?.failOpen == true)
        var config = NfownerConfig()
        config.nflog.holdNewFlows = true
        config.nflog.holdQueue = 40
        #expect(try Self.plan(config).hold?.queue == 40)
        overrides = Overrides()
        overrides.holdNewFlows = false
        #expect(try Self.plan(config, overrides).hold == nil)
        overrides.holdNewFlows = nil
        overrides.holdQueue = 41
        #expect(try Self.plan(config, overrides).queue?.queue == 41)
    }

    @Test func newFlowsGoToAGroupOfTheirOwnThatFollowsTheGroup() throws {
        let defaults = try Self.plan()
        #expect(defaults.spec.newFlowSeconds == 2)
        #expect(defaults.spec.newFlowGroup == 6)
        #expect(defaults.nflog.newFlowGroup == 6)
        var overrides = Overrides()
        overrides.group = 20
        #expect(try Self.plan(NfownerConfig(), overrides).nflog.newFlowGroup == 21)
        overrides.newFlowSeconds = 0
        let batched = try Self.plan(NfownerConfig(), overrides)
        #expect(batched.spec.newFlowGroup == nil)
        #expect(batched.nflog.newFlowGroup == nil)
        var config = NfownerConfig()
        config.nflog.newFlowGroup = 5
        overrides = Overrides()
        overrides.group = 5
        #expect(try Self.plan(config, overrides).nflog.newFlowGroup == 6)  // --group re-derives it
    }

    @Test func commandLineOverridesTheFile() throws {
        var config = NfownerConfig()
        config.nflog.groups = [7, 8]
        config.select.users = [.name("alice")]
        var overrides = Overrides()
        overrides.snaplen = 256
        overrides.input = true
        overrides.groups = ["adm", "50"]
        let plan = try Self.plan(config, overrides)
        #expect(plan.spec.group == 7)
        #expect(plan.nflog.groups == [7, 8])
        #expect(plan.spec.snaplen == 256)
        #expect(plan.nflog.copyRange == 256)
        #expect(plan.spec.hooks == [.output, .input])
        #expect(plan.spec.uids == [1000])
        #expect(plan.spec.gids == [4, 50])
        overrides.uids = [33]
        #expect(try Self.plan(config, overrides).spec.uids == [33])
    }

    @Test func cgroupSelectorsLimitLoggingToTheirSubtrees() throws {
        var config = NfownerConfig()
        config.select.cgroups = [try CgroupSelector("nginx.service"), try CgroupSelector("user.slice/user-1000.slice")]
        let plan = try Self.plan(config)
        #expect(!plan.spec.logsUnclassified)
        #expect(Set(plan.spec.cgroups.map(\.id)) == [11, 21, 22])
        #expect(plan.classifies(CgroupNode(id: 99, path: "/user.slice/user-1000.slice/new.scope", level: 3)))
        #expect(!plan.classifies(CgroupNode(id: 98, path: "/system.slice/other.service", level: 2)))
        #expect(!plan.classifies(CgroupNode(id: 97, path: "/user.slice/user-1000.slice/a/b/c", level: 5)))
        let script = try NftScriptRenderer.install(plan.spec)
        #expect(!script.contains("log prefix \"nfowner\" group"))
    }

    @Test func unknownNamesAreClearErrors() {
        var config = NfownerConfig()
        config.select.cgroups = [try! CgroupSelector("missing.service")]
        #expect(throws: SetupError.self) { try Self.plan(config) }
        do {
            _ = try Self.plan(config)
        } catch {
            #expect(String(describing: error).contains("cgroup 'missing.service' does not exist under /sys/fs/cgroup/unified"))
        }
        var users = Overrides()
        users.userNames = ["mallory"]
        do {
            _ = try Self.plan(NfownerConfig(), users)
            Issue.record("an unknown user must be an error")
        } catch {
            #expect(String(describing: error).contains("no user named 'mallory'"))
        }
    }

    @Test func withoutCgroup2ClassificationIsOffWithANote() throws {
        let plan = try Self.plan(mount: nil, tree: nil)
        #expect(!plan.spec.classifiesCgroups)
        #expect(!plan.follow)
        #expect(plan.notes.contains { $0.contains("no cgroup2") })
        var off = Overrides()
        off.noCgroups = true
        let plain = try Self.plan(NfownerConfig(), off)
        #expect(!plain.spec.classifiesCgroups)
        #expect(plain.notes.isEmpty)
    }
}
