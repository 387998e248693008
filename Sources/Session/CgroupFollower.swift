import NetfilterSystem
import Attribution
import Rules

/// Keeps the installed ruleset's cgroup maps in step with the cgroup2 tree while the monitor
/// runs: a cgroup created under a classified level gets its map element and chain, a removed one
/// loses them — map updates in one nft transaction each, never a ruleset reload.
///
/// Runs on a thread of its own (nft takes milliseconds; the receive loop must not wait for it),
/// blocking in poll on the inotify descriptor and a wakeup eventfd.
public final class CgroupFollower: @unchecked Sendable {
    private let watcher: CgroupWatcher
    private let runner: NftRunner
    private let spec: RulesetSpec
    private let classifies: (CgroupNode) -> Bool
    private let classifier: (CgroupNode) -> CgroupClassifier
    private let wakeup: WakeupEvent
    private let report: (String) -> Void
    /// The cgroups currently in the ruleset, by id.
    private var live: [UInt64: CgroupClassifier]
    /// Changes are gathered for this long after the first one, so `mkdir -p a/b/c` or a unit
    /// start with several scopes becomes one transaction.
    private let settleMilliseconds: Int32 = 30

    public private(set) var added = 0
    public private(set) var removed = 0
    public private(set) var failures = 0

    /// What the follower changed so far (read after `run` returned).
    public var counters: FollowerCounters { FollowerCounters(added: added, removed: removed, failures: failures) }

    public init(watcher: CgroupWatcher, runner: NftRunner, spec: RulesetSpec,
                classifies: @escaping (CgroupNode) -> Bool,
                classifier: @escaping (CgroupNode) -> CgroupClassifier,
                wakeup: WakeupEvent, report: @escaping (String) -> Void) {
        self.watcher = watcher
        self.runner = runner
        self.spec = spec
        self.classifies = classifies
        self.classifier = classifier
        self.wakeup = wakeup
        self.report = report
        live = Dictionary(spec.cgroups.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
    }

    /// Asks `run` to return (from any thread).
    public func requestStop() { wakeup.signal() }

    /// Follows changes until `requestStop`. Catches up once at start, for cgroups created
    /// between planning the ruleset and starting to watch.
    public func run() {
        apply(watcher.resync())
        while true {
            guard let ready = try? waitReadable([watcher.descriptor, wakeup.descriptor], timeoutMilliseconds: -1) else {
                return
            }
            if ready.contains(wakeup.descriptor) { return }
            var changes = watcher.readChanges()
            while let more = try? waitReadable([watcher.descriptor], timeoutMilliseconds: settleMilliseconds), !more.isEmpty {
                changes += watcher.readChanges()
            }
            apply(changes)
        }
    }

    private func apply(_ changes: [CgroupChange]) {
        var additions: [UInt64: CgroupClassifier] = [:]
        var removals: [UInt64: CgroupClassifier] = [:]
        for change in changes {
            switch change {
            case .created(let node):
                guard classifies(node), live[node.id] == nil else { continue }
                let candidate = classifier(node)
                do {
                    try candidate.validate()
                    additions[node.id] = candidate
                } catch {
                    report("not classifying new cgroup \(node.path): \(error.reason)")
                }
            case .removed(let id, _):
                if additions.removeValue(forKey: id) != nil { continue }
                if let gone = live[id] { removals[id] = gone }
            }
        }
        if !additions.isEmpty {
            do {
                let vanished = try runner.addCgroups(Array(additions.values), spec: spec)
                let vanishedIDs = Set(vanished.map(\.id))
                for (id, cgroup) in additions where !vanishedIDs.contains(id) { live[id] = cgroup }
                added += additions.count - vanished.count
            } catch {
                failures += 1
                report("could not add \(additions.count) new cgroup(s) to table inet \(spec.tableName): \(error.reason)")
            }
        }
        if !removals.isEmpty {
            for id in removals.keys { live.removeValue(forKey: id) }
            do {
                let alsoGone = try runner.removeCgroups(Array(removals.values), keeping: Array(live.values), spec: spec)
                for cgroup in alsoGone { live.removeValue(forKey: cgroup.id) }
                removed += removals.count + alsoGone.count
            } catch {
                failures += 1
                report("could not remove \(removals.count) cgroup(s) from table inet \(spec.tableName): \(error.reason)")
            }
        }
    }
}
