// Socket inode → the processes holding it, from the /proc/PID/fd symbolic links
// ("socket:[307351]"). One inode can be held by several processes (fork, fd passing).
//
// Reading every process's fds costs a readlink per fd (≈ 3 ms for all of a small host's), so the
// index is kept between lookups and refreshed only on a miss: first the few likely holders —
// the processes that held the last new sockets found, then those the caller names (the newest
// processes of the socket's uid) — each one's fds re-read, at any rate; then, at most once per
// `minimumRescanInterval`, in two stages:
//   1. processes not seen before (a new socket most often belongs to a new process);
//   2. if still missing, every other process (fd numbers are reused, so an old process's
//      unchanged fd count proves nothing).
// A likely holder's fds that held sockets at its last scan are read first: a new socket often
// takes the fd of the one closed before it.
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
    /// Misses answered by re-reading a likely holder's fds, without a refresh.
    public private(set) var likelyHolderHits = 0
    /// Of those, the ones found at an fd that held another socket at the process's last scan.
    public private(set) var reusedDescriptorHits = 0
    /// Processes that held the latest sockets found by a scan, newest first: a process that opens
    /// one socket (a client, a resolver) often opens the next.
    private var recentHolders: [Int32] = []
    /// How many likely holders are read before falling back to a refresh.
    public static let likelyHolderLimit = 16
    /// A likely holder with at most this many known socket fds has those read first.
    public static let reusedDescriptorLimit = 8

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
    /// gone, owned by the kernel, or the refresh is rate-limited right now). `likelyHolders`,
    /// asked only when the index does not know the inode, names processes to read first.
    /// `refreshing` false: only what the index knows already, no process's fds read afresh (the
    /// caller only wants to know whether a holder is known cheaply; reading costs up to
    /// milliseconds that every packet queued behind this one would wait).
    public func pids(forInode inode: UInt64, likelyHolders: () -> [Int32] = { [] },
                     refreshing: Bool = true) -> [Int32] {
        guard inode != 0 else { return [] }
        let verified = verifiedPIDs(inode)
        if !verified.isEmpty || !refreshing { return verified }
        if let found = scanLikelyHolders(inode, named: likelyHolders) { return found }
        let time = now()
        guard time - lastRefresh >= minimumRescanInterval else { return [] }
        lastRefresh = time
        refreshes += 1
        let listed = listPIDs()
        let alive = Set(listed)
        for pid in scanned.keys where !alive.contains(pid) { forget(pid) }
        let fresh = Set(listed.filter { scanned[$0] == nil })
        for pid in fresh { scan(pid) }
        if let found = holders[inode], !found.isEmpty { return remembered(Self.sortedPIDs(found)) }
        for pid in listed where !fresh.contains(pid) { scan(pid) }
        return remembered(Self.sortedPIDs(holders[inode] ?? []))
    }

    /// Re-reads the recent holders' and then the named processes' fds, up to
    /// `likelyHolderLimit` processes, until one holds `inode`; nil when none does.
    private func scanLikelyHolders(_ inode: UInt64, named: () -> [Int32]) -> [Int32]? {
        var tried = Set<Int32>()
        func holdsIt(_ pid: Int32) -> Bool {
            guard tried.count < Self.likelyHolderLimit, tried.insert(pid).inserted else { return false }
            if foundAtReusedDescriptor(inode, pid) { return true }
            scan(pid)
            return holders[inode].map { !$0.isEmpty } ?? false
        }
        // The caller's names (a sort of the process table) only when the recent holders miss.
        guard recentHolders.contains(where: holdsIt) || named().contains(where: holdsIt) else { return nil }
        likelyHolderHits += 1
        return remembered(Self.sortedPIDs(holders[inode] ?? []))
    }

    /// Whether `pid` now holds `inode` at one of the fds that held a socket at its last scan,
    /// recorded for that fd alone. A program that opens sockets one after another (a client
    /// connecting per request) mostly gets the lowest free fd, the one its last socket had: one
    /// readlink instead of one per fd — the difference to a queued packet's verdict time, as
    /// the process waits for it (enforce's exe rules).
    private func foundAtReusedDescriptor(_ inode: UInt64, _ pid: Int32) -> Bool {
        guard let known = scanned[pid], known.count <= Self.reusedDescriptorLimit else { return false }
        for (fd, previous) in known where previous != inode && socketInode(pid: pid, fd: fd) == inode {
            let holder = Holder(pid: pid, fd: fd)
            holders[previous]?.remove(holder)
            if holders[previous]?.isEmpty == true { holders[previous] = nil }
            holders[inode, default: []].insert(holder)
            scanned[pid]?[fd] = inode
            reusedDescriptorHits += 1
            return true
        }
        return false
    }

    /// Puts `pids` first among the recent holders (at most 8 are kept) and returns them.
    private func remembered(_ pids: [Int32]) -> [Int32] {
        guard !pids.isEmpty else { return pids }
        recentHolders = Array((pids + recentHolders.filter { !pids.contains($0) }).prefix(8))
        return pids
    }

    /// Rebuilds the whole index now, ignoring the rate limit.
    public func rebuild() {
        holders = [:]
        scanned = [:]
        lastRefresh = now()
        refreshes += 1
        for pid in listPIDs() { scan(pid) }
    }

    /// `rebuild()`, then the holders of `inode` (remembered as recent holders).
    public func rebuild(finding inode: UInt64) -> [Int32] {
        rebuild()
        return remembered(Self.sortedPIDs(holders[inode] ?? []))
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
