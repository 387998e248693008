import NetfilterSystem
import Rules

/// What a session does with nfowner's ruleset.
public enum RulesPolicy: Sendable, Equatable {
    /// Read a group some existing ruleset logs to; install nothing (`--no-rules`).
    case none
    /// Install the plan's table when none is installed, and remove it at exit unless
    /// `keepOnExit`; use an installed one as it is (warning when it differs from the plan).
    case installIfAbsent(keepOnExit: Bool)
    /// Install (atomically replace) the plan's table and remove it at exit: a table of the
    /// run's own, e.g. a trace's `nfowner_trace_<pid>`.
    case installOwn
}

/// Installs, adopts and removes the session's table according to its policy.
///
/// A table already installed is adopted or refused as `TableAdoption` decides from its comment:
/// `rules install`'s is used, followed and left installed; one left by a monitor that is no
/// longer running is used, followed and removed at exit; one held by a running monitor is
/// refused. Following an adopted table changes its cgroup maps and `cg_<id>` chains only.
final class RulesLifecycle {
    let spec: RulesetSpec
    let policy: RulesPolicy
    let runner = NftRunner()
    private let wantsFollow: Bool
    private let report: (String) -> Void
    /// Whether the table is deleted when the run ends.
    private(set) var removesAtExit = false
    /// The installer the table's comment must still name for it to be deleted at exit (a
    /// `rules install` meanwhile replaces the table, and then it stays); nil: delete regardless.
    private var removableInstaller: TableInstaller?
    /// What a cgroup follower keeps current: the spec restricted to the levels whose maps the
    /// table has, with the cgroups now in them. Nil: nothing to follow.
    private(set) var followSpec: RulesetSpec?

    /// `wantsFollow`: the plan follows cgroups and there is a cgroup2 mount.
    init(spec: RulesetSpec, policy: RulesPolicy, wantsFollow: Bool, report: @escaping (String) -> Void) {
        self.spec = spec
        self.policy = policy
        self.wantsFollow = wantsFollow && spec.classifiesCgroups
        self.report = report
    }

    private var table: String { "table inet \(spec.tableName)" }

    func start() throws(SessionError) {
        do {
            switch policy {
            case .none:
                return
            case .installOwn:
                try runner.install(spec)
                removesAtExit = true
                followSpec = wantsFollow ? spec : nil
            case .installIfAbsent(let keepOnExit):
                try installIfAbsent(keepOnExit: keepOnExit)
            }
        } catch let error as SessionError {
            throw error
        } catch {
            throw SessionError("\(error)")
        }
    }

    private func installIfAbsent(keepOnExit: Bool) throws {
        guard let installed = try runner.inspectInstalled(name: spec.tableName) else {
            let installer: TableInstaller = keepOnExit
                ? .keptMonitor : (ProcessStamp.current().map { .monitor($0) } ?? .rulesInstall)
            let vanished = try runner.installSkippingVanished(spec, installer: installer)
            for cgroup in vanished { report("cgroup \(cgroup.hierarchyPath) vanished before installing; left out") }
            removesAtExit = !keepOnExit
            if case .monitor = installer { removableInstaller = installer }
            followSpec = wantsFollow ? spec : nil
            var cgroups = spec.classifiesCgroups ? ", \(spec.cgroups.count - vanished.count) cgroup(s) classified" : ""
            if !spec.packetSocketInterfaces.isEmpty {
                cgroups += "; with table netdev \(spec.tableName) for packet sockets on \(spec.packetSocketInterfaces.joined(separator: ", "))"
            }
            report((keepOnExit
                    ? "installed \(table) (kept after exit: --keep-rules)"
                    : "installed \(table) for this run; it is removed on exit") + cgroups)
            return
        }
        try adopt(installed, keepOnExit: keepOnExit)
    }

    private func adopt(_ installed: InstalledTable, keepOnExit: Bool) throws {
        let holder = TableHolder.classify(installed.comment, me: ProcessStamp.current(), isRunning: { $0.isRunning() })
        let decision = TableAdoption.decide(holder, keepOnExit: keepOnExit)
        if case .runningMonitor(let stamp) = holder {
            throw SessionError(decision.refusal(table: table, command: stamp.command()) ?? "\(table) is in use")
        }
        removesAtExit = decision.removesAtExit
        removableInstaller = installed.comment?.installer
        let logsLike = installed.logsLike(spec)
        if !spec.packetSocketInterfaces.isEmpty, !runner.hasPacketSocketTable(name: spec.tableName) {
            report("warning: \(table) is already installed without table netdev \(spec.tableName), so packet sockets' frames "
                   + "are not logged; replace it with `nfowner rules install --packet-sockets "
                   + "\(spec.packetSocketInterfaces.joined(separator: " "))`")
        }
        if !logsLike {
            report("warning: \(table) is already installed with other settings than these options (group, snaplen, "
                   + "queue threshold or prefix), so this monitor may see nothing on group \(spec.group); compare with "
                   + "`nfowner rules status`, replace it with `nfowner rules install` and the same options, or pass "
                   + "--no-rules to silence this")
        }
        let following: String
        if !decision.follows {
            following = "not following cgroups"
        } else if !wantsFollow {
            following = "not following cgroups (off for this run)"
        } else if !logsLike {
            following = "not following cgroups: its log rules differ from these options"
        } else {
            following = follow(installed)
        }
        report(decision.startLine(table: table, following: following) ?? "using \(table)")
    }

    /// Brings the adopted table's maps up to date with the plan's cgroups and sets `followSpec`;
    /// returns how that reads in the start-up line. Levels the plan classifies but the table has
    /// no map for are not followed (a map cannot be added without replacing the table).
    private func follow(_ installed: InstalledTable) -> String {
        let levels = spec.mapLevels.filter(installed.mapLevels.contains)
        guard !levels.isEmpty else {
            return "not following cgroups: it has no cgroup map at level(s) \(Self.list(spec.mapLevels)) "
                + "(replace it with `nfowner rules install` to classify by cgroup)"
        }
        var follow = spec
        follow.cgroupLevels = levels.sorted()
        follow.cgroups = spec.cgroups.filter { levels.contains($0.level) }
        // Stale chains can go only when no map left unflushed may still refer to them.
        let stale = Set(installed.mapLevels).isSubset(of: levels) ? installed.cgroupChains : []
        do {
            let vanished = Set(try runner.resyncCgroups(follow.cgroups, deletingChains: stale, spec: follow).map(\.id))
            follow.cgroups.removeAll { vanished.contains($0.id) }
        } catch {
            return "not following cgroups: updating its cgroup maps failed: \(error.reason)"
        }
        followSpec = follow
        let missing = spec.mapLevels.filter { !levels.contains($0) }
        guard !missing.isEmpty else { return "following cgroups" }
        return "following cgroups at level(s) \(Self.list(levels)); not at level(s) \(Self.list(missing)): the "
            + "table has no map for them (replace it with `nfowner rules install` to add them)"
    }

    private static func list(_ levels: [Int]) -> String { levels.sorted().map(String.init).joined(separator: ",") }

    /// Removes the table if this run installed it, or adopted a stale monitor's, and may not keep it.
    func finish() {
        guard removesAtExit else { return }
        do {
            if let removableInstaller {
                guard let installed = try runner.inspectInstalled(name: spec.tableName) else { return }
                let installer = installed.comment?.installer
                guard installer == removableInstaller else {
                    report("left \(table) installed: it was replaced meanwhile, now installed by "
                           + (installer?.description ?? TableInstaller.rulesInstall.description))
                    return
                }
            }
            try runner.remove(spec)
        } catch {
            report("could not remove \(table): \(error); remove it with `nfowner rules remove`")
        }
    }
}
