// Socket inode → the processes holding it, from the /proc/PID/fd symbolic links
// ("socket:[307351]"). One inode can be held by several processes (fork, fd passing).
//
// Reading every process's fds costs a readlink per fd, so the index is kept between lookups
// and refreshed only on a miss, in two stages, at most once per `minimumRescanInterval`:
//   1. processes not seen before (a new socket most often belongs to a new process);
//   2. if still missing, every other process (fd numbers are reused, so an old process's
//      unchanged fd count proves nothing).
// A hit is verified with one readlink of the remembered pid/fd, so a closed socket whose fd
// now holds something else is not reported. A process that vanishes mid-scan is normal.
// The reading of /proc itself is NetfilterSystem's `ProcessDescriptors`; this is the index.
import Foundation
import NetfilterSystem

public final class SocketOwners: @unchecked Sendable {
    /// The procfs root ("/proc"; a fixture directory in tests).
    public let procRoot: String
    /// Seconds that must pass between two refreshes caused by misses.
    public let minimumRescanInterval: Double
    private let now: () -> Double

    private struct Holder: Hashable {
        var pid: Int32
        var fd: Int32
    }
    private var holders: [UInt64: Set<Holder>] = [:]
    /// Per process: the socket inodes it held at its last scan, by fd.
    private var scanned: [Int32: [Int32: UInt64]] = [:]
    private var lastRefresh: Double = -Double.infinity

    /// Refreshes done so far (for tests and counters).
    public private(set) var refreshes = 0

    public init(procRoot: String = "/proc", minimumRescanInterval: Double = 0.05,
                now: @escaping () -> Double = SocketOwners.monotonicSeconds) {
        self.procRoot = procRoot
        self.minimumRescanInterval = minimumRescanInterval
        self.now = now
    }

    public static func monotonicSeconds() -> Double {
        Double(DispatchTime.now().uptimeNanoseconds) / 1e9
    }

    /// The pids holding socket `inode`, ascending; empty when none is found (the socket is
    /// gone, owned by the kernel, or the refresh is rate-limited right now).
    public func pids(forInode inode: UInt64) -> [Int32] {
        guard inode != 0 else { return [] }
        let verified = verifiedPIDs(inode)
        if !verified.isEmpty { return verified }
        let time = now()
        guard time - lastRefresh >= minimumRescanInterval else { return [] }
        lastRefresh = time
        refreshes += 1
        let listed = listPIDs()
        let alive = Set(listed)
        for pid in scanned.keys where !alive.contains(pid) { forget(pid) }
        let fresh = Set(listed.filter { scanned[$0] == nil })
        for pid in fresh { scan(pid) }
        if let found = holders[inode], !found.isEmpty { return Self.sortedPIDs(found) }
        for pid in listed where !fresh.contains(pid) { scan(pid) }
        return Self.sortedPIDs(holders[inode] ?? [])
    }

    /// Rebuilds the whole index now, ignoring the rate limit.
    public func rebuild() {
        holders = [:]
        scanned = [:]
        lastRefresh = now()
        refreshes += 1
        for pid in listPIDs() { scan(pid) }
    }

    private static func sortedPIDs(_ set: Set<Holder>) -> [Int32] {
        Array(Set(set.map(\.pid))).sorted()
    }

    /// Remembered holders that still have the socket at the same fd.
    private func verifiedPIDs(_ inode: UInt64) -> [Int32] {
        guard let known = holders[inode] else { return [] }
        var stale: [Holder] = []
        var pids: Set<Int32> = []
        for holder in known {
            if socketInode(pid: holder.pid, fd: holder.fd) == inode {
                pids.insert(holder.pid)
            } else {
                stale.append(holder)
            }
        }
        for holder in stale { scan(holder.pid) }  // its fds changed: refresh that one process
        return pids.sorted()
    }

    private func listPIDs() -> [Int32] {
        ProcessDescriptors.pids(procRoot: procRoot)
    }

    /// Re-reads one process's fds; a vanished process is forgotten.
    private func scan(_ pid: Int32) {
        forget(pid)
        guard let sockets = ProcessDescriptors.socketInodes(pid: pid, procRoot: procRoot) else { return }
        for (fd, inode) in sockets {
            holders[inode, default: []].insert(Holder(pid: pid, fd: fd))
        }
        scanned[pid] = sockets
    }

    private func forget(_ pid: Int32) {
        guard let sockets = scanned.removeValue(forKey: pid) else { return }
        for (fd, inode) in sockets {
            holders[inode]?.remove(Holder(pid: pid, fd: fd))
            if holders[inode]?.isEmpty == true { holders[inode] = nil }
        }
    }

    private func socketInode(pid: Int32, fd: Int32) -> UInt64? {
        ProcessDescriptors.socketInode(pid: pid, fd: fd, procRoot: procRoot)
    }
}
