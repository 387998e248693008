// cgroup id → path for the monitor: the packet carries an id (in its log prefix), the output
// wants the path. Kept current by a CgroupWatcher, with a rate-limited re-walk as a fallback for
// ids it has not heard of yet.

/// A cgroup appeared or went away.
public enum CgroupChange: Sendable, Equatable {
    case created(CgroupNode)
    case removed(id: UInt64, path: String)
}

/// id → hierarchy path.
///
/// A removed cgroup stays resolvable for `gracePeriod` (or until `removedCapacity` newer
/// removals push it out): packets logged just before the removal are read from the NFLOG socket
/// after the watcher has reported it.
///
/// Not thread-safe (a value with mutating lookups): the monitor owns one on its receive thread.
public struct CgroupIndex {
    public static let defaultGracePeriod: Duration = .seconds(60)
    public static let defaultRemovedCapacity = 4096
    /// A miss re-walks the tree at most this often: a flood of packets from an unknown cgroup
    /// must not turn into a flood of directory walks.
    public static let rewalkInterval: Duration = .seconds(1)

    public typealias Walk = () throws(CgroupError) -> [CgroupNode]

    private var live: [UInt64: String] = [:]
    private var removed: [UInt64: (path: String, at: ContinuousClock.Instant)] = [:]
    /// Removal order for eviction; entries whose id was re-inserted or re-removed are skipped.
    private var removalQueue: [(id: UInt64, at: ContinuousClock.Instant)] = []
    private var removalQueueHead = 0
    private var lastWalk: ContinuousClock.Instant?
    private let gracePeriod: Duration
    private let removedCapacity: Int
    private let now: () -> ContinuousClock.Instant
    private let walk: Walk

    /// An index of the live tree at `mountPoint`. Throws what the first walk throws.
    public init(mountPoint: String, maxLevel: Int = CgroupTree.defaultMaxLevel,
                gracePeriod: Duration = defaultGracePeriod,
                removedCapacity: Int = defaultRemovedCapacity) throws(CgroupError) {
        let walk: Walk = { () throws(CgroupError) -> [CgroupNode] in
            try CgroupTree(mountPoint: mountPoint, maxLevel: maxLevel).nodes
        }
        self.init(nodes: try walk(), gracePeriod: gracePeriod, removedCapacity: removedCapacity,
                  now: { ContinuousClock.now }, walk: walk)
        lastWalk = now()
    }

    /// An index over `nodes`; `walk` is called on misses (at most once per `rewalkInterval` of
    /// `now`). For tests and for callers that already walked.
    public init(nodes: [CgroupNode], gracePeriod: Duration = defaultGracePeriod,
                removedCapacity: Int = defaultRemovedCapacity,
                now: @escaping () -> ContinuousClock.Instant = { ContinuousClock.now },
                walk: @escaping Walk) {
        self.gracePeriod = gracePeriod
        self.removedCapacity = max(0, removedCapacity)
        self.now = now
        self.walk = walk
        for node in nodes { live[node.id] = node.path }
    }

    /// Live cgroups known.
    public var count: Int { live.count }
    /// Removed cgroups still resolvable.
    public var removedCount: Int { removed.count }

    public mutating func insert(_ node: CgroupNode) {
        live[node.id] = node.path
        removed[node.id] = nil
    }

    /// Marks a cgroup removed: its path stays resolvable for the grace period.
    public mutating func remove(id: UInt64) {
        guard let path = live.removeValue(forKey: id) else { return }
        let time = now()
        removed[id] = (path, time)
        removalQueue.append((id, time))
        evict(at: time)
    }

    public mutating func apply(_ change: CgroupChange) {
        switch change {
        case .created(let node): insert(node)
        case .removed(let id, _): remove(id: id)
        }
    }

    /// The path of `id` from what is known, live or recently removed; never walks.
    public mutating func cachedPath(forID id: UInt64) -> String? {
        if let path = live[id] { return path }
        evict(at: now())
        return removed[id]?.path
    }

    /// The path of `id`; on a miss, re-walks the tree (at most once per `rewalkInterval`) to
    /// catch cgroups created since. Nil when it is still unknown (or the walk failed).
    public mutating func path(forID id: UInt64) -> String? {
        if let path = cachedPath(forID: id) { return path }
        let time = now()
        if let last = lastWalk, time - last < Self.rewalkInterval { return nil }
        try? rewalk()
        return cachedPath(forID: id)
    }

    /// Replaces the live set with a fresh walk; cgroups no longer there become removed.
    /// Counts as a walk for the rate limit even when it throws.
    public mutating func rewalk() throws(CgroupError) {
        lastWalk = now()
        let nodes = try walk()
        var fresh: [UInt64: String] = [:]
        for node in nodes { fresh[node.id] = node.path }
        for id in live.keys where fresh[id] == nil { remove(id: id) }
        for node in nodes { insert(node) }
    }

    private mutating func evict(at time: ContinuousClock.Instant) {
        while removalQueueHead < removalQueue.count {
            let oldest = removalQueue[removalQueueHead]
            let current = removed[oldest.id]
            // Stale queue entry: re-inserted, or removed again later (a newer entry exists).
            if current == nil || current?.at != oldest.at {
                removalQueueHead += 1
                continue
            }
            guard time - oldest.at >= gracePeriod || removed.count > removedCapacity else { break }
            removed[oldest.id] = nil
            removalQueueHead += 1
        }
        if removalQueueHead > 1024, removalQueueHead * 2 > removalQueue.count {
            removalQueue.removeFirst(removalQueueHead)
            removalQueueHead = 0
        }
    }
}
