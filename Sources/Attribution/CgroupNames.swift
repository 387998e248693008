/// cgroup id → (path, unit) for the monitor's receive thread.
///
/// Wraps a `CgroupIndex` (which re-walks cgroupfs on a miss, at most once a second) and caches
/// the unit derived from each path, so a packet of a known cgroup costs two dictionary lookups.
/// Not thread-safe: owned by one thread.
public final class CgroupNames {
    public struct Entry: Sendable, Equatable {
        /// Path relative to the cgroup2 root, as in /proc/PID/cgroup ("/system.slice/nginx.service").
        public var path: String
        /// The systemd unit or scope in the path, if any ("nginx.service").
        public var unit: String?
    }

    private var index: CgroupIndex
    private var entries: [UInt64: Entry] = [:]
    /// The last cgroup asked for: consecutive packets mostly come from the same one.
    @exclusivity(unchecked) private var last: (id: UInt64, entry: Entry)?
    private static let capacity = 16_384

    public init(index: CgroupIndex) {
        self.index = index
    }

    /// Builds the index from the live cgroup2 tree; nil when there is no cgroup2 mount.
    public convenience init?(mountPoint: String) {
        guard let index = try? CgroupIndex(mountPoint: mountPoint) else { return nil }
        self.init(index: index)
    }

    /// The path and unit of cgroup `id`, or nil when no cgroup with that id is known (it may
    /// have been removed longer ago than the index's grace period).
    public func entry(forID id: UInt64) -> Entry? {
        if let last, last.id == id { return last.entry }
        if let cached = entries[id] {
            last = (id, cached)
            return cached
        }
        guard let path = index.path(forID: id) else { return nil }
        let entry = Entry(path: path, unit: SystemdUnit.name(forCgroupPath: path))
        if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
        entries[id] = entry
        last = (id, entry)
        return entry
    }
}
