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

/// Installs, compares and removes the session's table according to its policy.
final class RulesLifecycle {
    let spec: RulesetSpec
    let policy: RulesPolicy
    let runner = NftRunner()
    private let report: (String) -> Void
    /// Whether this run installed the table (and so may follow cgroups in it and remove it).
    private(set) var owned = false

    init(spec: RulesetSpec, policy: RulesPolicy, report: @escaping (String) -> Void) {
        self.spec = spec
        self.policy = policy
        self.report = report
    }

    func start() throws(SessionError) {
        do {
            switch policy {
            case .none:
                return
            case .installOwn:
                try runner.install(spec)
                owned = true
            case .installIfAbsent(let keepOnExit):
                try installIfAbsent(keepOnExit: keepOnExit)
            }
        } catch {
            throw SessionError(error.description)
        }
    }

    private func installIfAbsent(keepOnExit: Bool) throws(RulesError) {
        if try runner.listTable(name: spec.tableName) == nil {
            let vanished = try runner.installSkippingVanished(spec)
            for cgroup in vanished { report("cgroup \(cgroup.hierarchyPath) vanished before installing; left out") }
            owned = true
            let cgroups = spec.classifiesCgroups ? ", \(spec.cgroups.count - vanished.count) cgroup(s) classified" : ""
            report((keepOnExit
                    ? "installed table inet \(spec.tableName) (kept after exit: --keep-rules)"
                    : "installed table inet \(spec.tableName) for this run; it is removed on exit") + cgroups)
        } else if try runner.status(spec).current {
            report("table inet \(spec.tableName) is already installed; using it as it is")
        } else {
            report("warning: table inet \(spec.tableName) is already installed with other settings than these "
                   + "options (group, snaplen, selectors or cgroups) and is left as it is, so this monitor may "
                   + "see nothing on group \(spec.group); compare with `nfowner rules status`, replace it with "
                   + "`nfowner rules install` and the same options, or pass --no-rules to silence this")
        }
    }

    /// Removes the table if this run installed it and may not keep it.
    func finish() {
        guard owned else { return }
        if case .installIfAbsent(keepOnExit: true) = policy { return }
        do { try runner.remove(spec) } catch {
            report("could not remove table inet \(spec.tableName): \(error); remove it with `nfowner rules remove`")
        }
    }
}
