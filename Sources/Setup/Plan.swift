import Configuration
import PacketSources
import NetfilterSystem
import Attribution
import Rules

/// Everything a run needs, decided from the config file and the command line before anything
/// is installed: the ruleset, the NFLOG settings, and what to follow.
public struct Plan: Sendable {
    public var spec: RulesetSpec
    public var nflog: NflogSettings
    /// The cgroup2 mount, when there is one (classification needs it).
    public var cgroupMount: CgroupMount?
    /// Whether a running monitor adds and removes cgroups as they come and go.
    public var follow: Bool
    /// The cgroup selection that limits classification (nil: every cgroup at the levels).
    public var selection: [CgroupNode]?
    /// Things the user should know (skipped cgroups, no cgroup2, …), one line each.
    public var notes: [String] = []
    /// Hold mode's rules and queue, nil when off (see `HoldRules`).
    public var hold: HoldSpec?
    public var queue: NfqueueSettings?

    /// Whether a new cgroup belongs in the ruleset under this plan: at a classified level, and
    /// inside the selection when there is one.
    public func classifies(_ node: CgroupNode) -> Bool {
        guard spec.cgroupLevels.contains(node.level) else { return false }
        guard let selection else { return true }
        return selection.contains { CgroupPath.isSame(node.path, orBelow: $0.path) }
    }
}

/// Command-line values that override the config file; nil means "not given".
public struct Overrides: Sendable {
    public var group: UInt16?
    public var snaplen: UInt32?
    public var queueThreshold: UInt16?
    /// `--new-flow-seconds` (0: `--batch-new-flows`).
    public var newFlowSeconds: UInt32?
    public var flushTimeout: UInt32?
    public var receiveBuffer: Int?
    /// Selectors from the command line replace the config's of the same kind when non-empty.
    public var uids: [UInt32] = []
    public var userNames: [String] = []
    public var groups: [String] = []
    public var input: Bool?
    /// `--packet-sockets IFACE…`; replaces the config's list when non-empty.
    public var packetSockets: [String] = []
    /// `--no-cgroups`: classic uid/gid logging only.
    public var noCgroups = false
    /// `--hold-new-flows` / `--no-hold-new-flows`, and `--hold-queue`.
    public var holdNewFlows: Bool?
    public var holdQueue: UInt16?

    public init() {}
}

public struct SetupError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum Planner {
    /// Builds the plan. `tree` is the live cgroup2 tree (tests pass a fixture); nil skips
    /// cgroup classification with a note.
    public static func plan(config: NfownerConfig, overrides: Overrides = Overrides(),
                            cgroupMount: CgroupMount?, tree: CgroupTree?,
                            lookUpUser: (String) -> UInt32? = AccountDatabase.uid(ofUser:),
                            lookUpGroup: (String) -> UInt32? = AccountDatabase.gid(ofGroup:)) throws(SetupError) -> Plan {
        var nflog = NflogSettings()
        nflog.groups = overrides.group.map { [$0] } ?? config.nflog.groups
        nflog.copyRange = overrides.snaplen ?? config.nflog.snaplen
        nflog.flushTimeout = overrides.flushTimeout ?? config.nflog.flushTimeout
        nflog.socketReceiveBuffer = overrides.receiveBuffer ?? config.nflog.receiveBuffer
        nflog.coalesceMicroseconds = config.nflog.coalesceMicroseconds

        var spec = RulesetSpec()
        spec.group = nflog.groups.first ?? RulesetSpec.defaultGroup
        spec.snaplen = nflog.copyRange
        spec.queueThreshold = overrides.queueThreshold ?? config.nflog.queueThreshold
        spec.newFlowSeconds = overrides.newFlowSeconds ?? config.nflog.newFlowSeconds
        if spec.newFlowSeconds > 0 {
            // A group of its own, derived from the one the rules log to (--group moves both).
            var groups = config.nflog
            groups.groups = nflog.groups
            if overrides.group != nil { groups.newFlowGroup = nil }
            let newFlowGroup = groups.effectiveNewFlowGroup
            guard !nflog.groups.contains(newFlowGroup) else {
                throw SetupError("NFLOG group \(newFlowGroup) is both a group to read and the new-flow group; "
                                 + "set nflog.new_flow_group to another one, or new_flow_seconds = 0")
            }
            spec.newFlowGroup = newFlowGroup
            nflog.newFlowGroup = newFlowGroup
        }
        spec.hooks = (overrides.input ?? config.hooks.input) ? [.output, .input] : [.output]
        spec.packetSocketInterfaces = overrides.packetSockets.isEmpty ? config.hooks.packetSockets : overrides.packetSockets

        let commandLineUsers = overrides.uids.map(Principal.id) + overrides.userNames.map(Principal.name)
        spec.uids = try resolve(commandLineUsers.isEmpty ? config.select.users : commandLineUsers,
                                what: "user", lookUp: lookUpUser, hint: "getent passwd")
        let commandLineGroups = overrides.groups.map { UInt32($0).map(Principal.id) ?? .name($0) }
        spec.gids = try resolve(commandLineGroups.isEmpty ? config.select.groups : commandLineGroups,
                                what: "group", lookUp: lookUpGroup, hint: "getent group")

        var plan = Plan(spec: spec, nflog: nflog, cgroupMount: cgroupMount,
                        follow: config.cgroups.follow, selection: nil)
        if overrides.holdNewFlows ?? config.nflog.holdNewFlows {
            var queue = NfqueueSettings()
            queue.queue = overrides.holdQueue ?? config.nflog.holdQueue ?? spec.group
            plan.queue = queue
            plan.hold = HoldSpec(queue: queue.queue, uids: spec.uids, gids: spec.gids)
        }
        guard !overrides.noCgroups, !(config.cgroups.levels.isEmpty && config.select.cgroups.isEmpty) else {
            plan.follow = false
            return plan
        }
        guard let cgroupMount, let tree else {
            if !config.select.cgroups.isEmpty {
                throw SetupError("the configuration selects cgroups (\(config.select.cgroups.map(\.description).joined(separator: ", "))), but no cgroup2 filesystem is mounted")
            }
            plan.notes.append("no cgroup2 filesystem is mounted: packets are not classified by cgroup")
            plan.follow = false
            return plan
        }
        var nodes: [CgroupNode]
        if config.select.cgroups.isEmpty {
            nodes = tree.nodes.filter { config.cgroups.levels.contains($0.level) }
        } else {
            let selected = try select(config.select.cgroups, in: tree, mount: cgroupMount)
            plan.selection = selected
            // The selected cgroups themselves, and their descendants at the discovery levels,
            // so each packet is still attributed to its deepest known cgroup.
            nodes = tree.nodes.filter { node in
                selected.contains { $0.id == node.id }
                    || (config.cgroups.levels.contains(node.level)
                        && selected.contains { CgroupPath.isSame(node.path, orBelow: $0.path) })
            }
            plan.spec.logsUnclassified = false
        }
        let (renderable, skipped) = CgroupClassifier.partitionRenderable(
            nodes.map { classifier(for: $0, mount: cgroupMount) })
        for (cgroup, error) in skipped {
            plan.notes.append("skipping cgroup \(cgroup.hierarchyPath): \(error.reason)")
        }
        plan.spec.cgroups = renderable
        plan.spec.cgroupLevels = Array(Set(config.cgroups.levels + (plan.selection ?? []).map(\.level))).sorted()
        return plan
    }

    /// The plan of a trace: log exactly `cgroup`'s packets (children included) to `group`, in a
    /// table of the trace's own, with 10 ms batches — one command's traffic is small, and a short
    /// window tells its short-lived children apart.
    public static func tracePlan(cgroup: CgroupNode, mount: CgroupMount, tableName: String, group: UInt16,
                                 snaplen: UInt32, input: Bool) -> Plan {
        var nflog = NflogSettings()
        nflog.groups = [group]
        nflog.copyRange = snaplen
        nflog.flushTimeout = 1
        var spec = RulesetSpec(tableName: tableName, group: group, snaplen: snaplen,
                               hooks: input ? [.output, .input] : [.output],
                               cgroups: [classifier(for: cgroup, mount: mount)], cgroupLevels: [cgroup.level])
        spec.logsUnclassified = false
        // Each flow's first packet on the next group, read at once (see `NflogSettings.newFlowGroup`):
        // the trace then looks for its sender among the processes alive just before it.
        spec.newFlowGroup = group &+ 1
        nflog.newFlowGroup = group &+ 1
        return Plan(spec: spec, nflog: nflog, cgroupMount: mount, follow: false, selection: [cgroup])
    }

    /// The ruleset's view of a cgroup: its id, level, and the paths nft and iptables resolve.
    public static func classifier(for node: CgroupNode, mount: CgroupMount) -> CgroupClassifier {
        CgroupClassifier(id: node.id, level: node.level,
                         nftPath: mount.nftPath(forHierarchyPath: node.path), hierarchyPath: node.path)
    }

    private static func select(_ selectors: [CgroupSelector], in tree: CgroupTree,
                               mount: CgroupMount) throws(SetupError) -> [CgroupNode] {
        var found: [CgroupNode] = []
        for selector in selectors {
            let matches: [CgroupNode]
            switch selector.kind {
            case .path: matches = selector.absolutePath.flatMap(tree.node(forPath:)).map { [$0] } ?? []
            case .unit: matches = tree.nodes(namedUnit: selector.value)
            }
            guard !matches.isEmpty else {
                throw SetupError("cgroup '\(selector)' does not exist under \(mount.mountPoint); "
                    + "check the name (`systemctl status`, or `ls \(mount.mountPoint)`) or remove it from [select] cgroups")
            }
            found += matches
        }
        return found
    }

    private static func resolve(_ principals: [Principal], what: String, lookUp: (String) -> UInt32?,
                                hint: String) throws(SetupError) -> [UInt32] {
        var ids: Set<UInt32> = []
        for principal in principals {
            switch principal {
            case .id(let id): ids.insert(id)
            case .name(let name):
                guard let id = lookUp(name) else {
                    throw SetupError("no \(what) named '\(name)' on this system (see `\(hint)`)")
                }
                ids.insert(id)
            }
        }
        return ids.sorted()
    }
}
