// The processes of the machine, alive and recently exited, kept current by process events.
//
// Why a table and not a lookup at packet time: a process that sends one datagram and exits is
// gone from /proc before its packet reaches userspace (NFLOG batches for up to its flush
// timeout). The table keeps exited processes for a grace period, so "which processes of uid U
// in cgroup C were alive when this packet was sent" still has an answer.
//
// Times are nanoseconds of CLOCK_MONOTONIC — the clock of proc_event.timestamp_ns and of
// `WallClock.monotonicNanoseconds()`; a packet's time is its receive time on that clock.
// Only processes (thread-group leaders) are tracked; thread forks and exits are ignored.
import NetfilterSystem
import NetlinkWire

/// One process as the table knows it: what /proc says about a process (a `ProcessSnapshot`), kept
/// current by process events, plus when it lived on the table's clock.
public struct ProcessEntry: Sendable, Equatable {
    /// pid, ppid, names, ids and cgroup: read from /proc at seed, fork and exec (for a fork whose
    /// parent is known: the parent's, with the child's cgroup), then changed by comm, uid and gid
    /// events. `uid` is the fsuid: the uid a socket it creates carries (after a uid event the new
    /// effective uid, which the fsuid follows unless setfsuid was used). `cgroupPath` is re-read at
    /// seed, fork and exec only; moves are not reported by the kernel, so a later move is seen at
    /// the next exec or rescan. `process.startTime` is /proc's (ns after boot; nil when it was not
    /// read), kept to tell a reused pid apart during rescans.
    public var process: ProcessSnapshot
    /// Monotonic ns: the fork event's time, or for processes found by a /proc scan their start
    /// time after boot (clamped to the scan time).
    public var startTime: UInt64
    /// Monotonic ns of the exit event (or of the scan that found it gone); nil while alive.
    public var exitTime: UInt64?
    /// True when an exec was seen but /proc was already gone when it was read: `exe` and
    /// `cmdline` are then unknown (nil), and so is `comm` unless the status was still readable
    /// (a process that exited but was not reaped yet).
    public var missedExec: Bool = false
    /// True from a fork seen as an event until the process's first exec: it still runs its
    /// parent's program — most often a shell about to exec the next command.
    public var forkedWithoutExec: Bool = false
    /// True when the table saw the process's fork and no thread of it start since: then its
    /// exit event is when it stopped sending. A thread can outlive the leader's exit event, and
    /// a process found by a /proc scan may have threads the table never saw start.
    public var knownSingleThreaded: Bool = false

    public init(process: ProcessSnapshot, startTime: UInt64, exitTime: UInt64? = nil) {
        self.process = process
        self.startTime = startTime
        self.exitTime = exitTime
    }

    public var pid: Int32 { process.pid }

    /// True when the process existed at some time in [time - window, time].
    public func isAlive(at time: UInt64, window: UInt64) -> Bool {
        guard startTime <= time else { return false }
        guard let exitTime else { return true }
        return exitTime >= time.subtractingClamped(window)
    }

    /// True when the process is known to have stopped sending before `time`: it exited earlier,
    /// by its exit event's kernel time, and had no thread that could outlive that event.
    public func exited(before time: UInt64) -> Bool {
        guard knownSingleThreaded, let exitTime else { return false }
        return exitTime < time
    }

    /// True when the process started or exited within [time - window, time] (or exited since):
    /// what a sender whose socket is gone looks like when nothing narrows it down (no cgroup).
    /// A long-running process that neither started nor ended around the packet is not one.
    public func startedOrExited(around time: UInt64, window: UInt64) -> Bool {
        startTime >= time.subtractingClamped(window) || exitTime.map { $0 >= time.subtractingClamped(window) } == true
    }
}

/// The process table. Not thread-safe: the monitor keeps it behind a lock (`OwnerResolution`),
/// applied to by a thread of its own as process events arrive and, before a new flow is
/// resolved, by the receive thread, so a packet is never attributed before its sender's exec was
/// applied.
public final class ProcessTable {
    public struct Counters: Sendable, Equatable {
        /// Exited entries dropped before their grace period ended because the cap was reached.
        public var evictedByCap = 0
        /// Exited entries dropped after their grace period.
        public var expired = 0
        /// Events for processes the table did not know (it started after they did, or an
        /// overrun lost their fork): the entry is then built from /proc.
        public var unknownProcess = 0
        /// Full /proc scans (the seed, fallback rescans, reseeds after an overrun).
        public var scans = 0
    }

    /// How long exited processes stay queryable, in nanoseconds.
    public var gracePeriod: UInt64
    /// At most this many entries (alive + exited). Exited ones are evicted oldest first to stay
    /// under it; alive ones are never evicted (the kernel's pid_max bounds them).
    public var capacity: Int
    public private(set) var counters = Counters()

    private let procFS: ProcFS
    private let clock: () -> UInt64
    private var alive: [Int32: ProcessEntry] = [:]
    /// Exited entries in exit order; `exitedHead` is the first one still kept (a cheap queue).
    private var exited: [ProcessEntry] = []
    private var exitedHead = 0
    /// Exit records by pid, with when they were received (monotonic ns): a record can be read
    /// before the exec event of the same program (the two come on different sockets).
    private var recentExits: [Int32: (exit: TaskExit, receivedAt: UInt64)] = [:]
    /// Pids of entries whose exec was missed and that no exit record has named yet: the only
    /// entries a record is looked up for (most records are of processes the table named).
    private var unnamedExecs: Set<Int32> = []
    private var executables = ExecutableIndex()
    /// Exit records are kept this long (ns), and at most `recentExitCapacity` of them.
    static let recentExitLifetime: UInt64 = 5_000_000_000
    static let recentExitCapacity = 8_192

    public static let defaultGracePeriod: UInt64 = 30_000_000_000
    public static let defaultCapacity = 65_536

    public convenience init(procFS: ProcFS = ProcFS(), gracePeriod: UInt64 = ProcessTable.defaultGracePeriod,
                capacity: Int = ProcessTable.defaultCapacity,
                clock: @escaping () -> UInt64 = WallClock.monotonicNanoseconds) {
        self.init(procFS: procFS, gracePeriod: gracePeriod, capacity: capacity, clock: clock,
                  executables: ExecutableIndex())
    }

    init(procFS: ProcFS, gracePeriod: UInt64, capacity: Int, clock: @escaping () -> UInt64,
         executables: ExecutableIndex) {
        self.executables = executables
        self.procFS = procFS
        self.gracePeriod = gracePeriod
        self.capacity = max(1, capacity)
        self.clock = clock
    }

    public var aliveCount: Int { alive.count }
    public var exitedCount: Int { exited.count - exitedHead }

    // MARK: - Filling

    /// Reads every process in /proc. Also the re-seed after lost events and the fallback's
    /// periodic rescan: known processes are refreshed, new ones added, and alive entries no
    /// longer in /proc are marked exited now (their real exit time is unknown: up to one scan
    /// interval earlier).
    public func seed() {
        let now = clock()
        counters.scans += 1
        // A re-seed follows lost events, which may have been thread starts: no exit known so
        // far is known to be exact any more.
        for pid in alive.keys { alive[pid]?.knownSingleThreaded = false }
        for index in exited.indices where index >= exitedHead { exited[index].knownSingleThreaded = false }
        var seen = Set<Int32>()
        for pid in procFS.pids() {
            guard let snapshot = procFS.snapshot(pid) else { continue }  // vanished: normal
            seen.insert(pid)
            if var known = alive[pid], known.process.startTime == nil || snapshot.startTime == nil
                || known.process.startTime == snapshot.startTime {
                known.process.merge(snapshot, replacingMissing: false)
                alive[pid] = known
            } else {
                if alive[pid] != nil { markExited(pid, at: now) }  // the pid was reused
                insertAlive(ProcessEntry(process: snapshot, startTime: min(snapshot.startTime ?? now, now)))
            }
        }
        for pid in alive.keys where !seen.contains(pid) { markExited(pid, at: now) }
        evictExpired(now: now)
    }

    /// The fallback's periodic scan (when the proc connector is unavailable): same as `seed()`.
    public func rescan() { seed() }

    /// Applies one process event. Reads /proc for fork and exec; whatever cannot be read
    /// (the process already exited: normal for short-lived ones) is handled as documented
    /// on each case, never as an error.
    public func apply(_ event: ProcEvent) {
        apply(event, reads: read(for: event))
    }

    /// What applying an event reads from /proc, read ahead of applying it (`readAhead`): the
    /// reads race the reaping of short-lived programs, and read ahead they need no lock on the
    /// table, which the receive thread holds while it resolves a flow.
    public struct ProcReads: Sendable {
        /// True for an exec's reads.
        var forExec = false
        /// exec: /proc/PID/exe. Read first: a program loses it (its mm) first when it exits.
        var exe: String?
        /// exec: status (comm, fs ids), readable until the process is reaped.
        var status: ProcFS.Status?
        /// exec and exit: the process's cgroup; fork: the child's.
        var cgroup: String?
        /// exec: the arguments.
        var cmdline: String?
        /// fork, when the child's cgroup could not be read (it is gone already): the parent's.
        var parentCgroup: String?

        /// An exec whose program had lost its exe link (it exited) before it was read: its exit
        /// record, sent before that, is waiting (`recordExits`).
        public var missedExecutable: Bool { forExec && exe == nil }
    }

    /// Reads, for each event of `events`, what `apply(_:reads:)` will need from /proc (nil for
    /// an event that needs nothing, or an exec that a later exec of the same process in the
    /// batch supersedes). Touches no table state (only the immutable `ProcFS`): callers run it
    /// without the lock that guards the table.
    public func readAhead(_ events: [ProcEvent]) -> [ProcReads?] {
        let superseded = Self.supersededExecs(events)
        return events.indices.map { index in superseded.contains(index) ? nil : read(for: events[index]) }
    }

    /// Applies a batch of events in order, with what `readAhead` read for them (nil: read now).
    /// An exec followed by another exec of the same process in the batch (nsenter → the
    /// program, a shell's `exec`) is skipped: the later one reads and replaces everything the
    /// earlier would have, and a burst of one-shot programs is read before they are reaped only
    /// if no read is wasted.
    public func apply(_ events: [ProcEvent], reads: [ProcReads?]? = nil) {
        let superseded = Self.supersededExecs(events)
        for (index, event) in events.enumerated() where !superseded.contains(index) {
            let ahead = reads.flatMap { $0.indices.contains(index) ? $0[index] : nil }
            apply(event, reads: ahead ?? read(for: event))
        }
    }

    /// Indices of execs that a later exec of the same process in `events` supersedes.
    static func supersededExecs(_ events: [ProcEvent]) -> Set<Int> {
        var lastExec: [Int32: Int] = [:]
        var superseded = Set<Int>()
        for (index, event) in events.enumerated() {
            guard case .exec(_, let tgid) = event.kind else { continue }
            if let earlier = lastExec[tgid] { superseded.insert(earlier) }
            lastExec[tgid] = index
        }
        return superseded
    }

    /// The /proc reads `event` needs, now; nil when it needs none.
    private func read(for event: ProcEvent) -> ProcReads? {
        switch event.kind {
        case .fork(_, let parentTGID, let childPID, let childTGID):
            guard childPID == childTGID else { return nil }
            // A fork copies the parent, except the cgroup (clone3 CLONE_INTO_CGROUP). Reading
            // one file, not seven, keeps us quick for the exec event that usually follows.
            var reads = ProcReads(cgroup: procFS.cgroupPath(childPID))
            // The child is gone already (a one-shot program, reaped): it was where its parent
            // is — more likely than where the parent was at its own exec, since moves raise no
            // event and a shell often moves itself (`echo $$ > cgroup.procs`) first.
            if reads.cgroup == nil { reads.parentCgroup = procFS.cgroupPath(parentTGID) }
            return reads
        case .exec(_, let tgid):
            // exe first: a short-lived program loses it (its mm) first when it exits, while
            // status (comm, ids) and cgroup stay readable until it is reaped. Only what an exec
            // can change is read (not stat: pid, ppid and start time stay), four files.
            let exe = procFS.exe(tgid)
            return ProcReads(forExec: true, exe: exe, status: procFS.status(tgid), cgroup: procFS.cgroupPath(tgid),
                             cmdline: procFS.cmdline(tgid))
        case .exit(let pid, let tgid, _, _, _, _):
            // A move to another cgroup raises no process event: until its parent reaps it the
            // exiting task is still in /proc, with its final cgroup.
            guard pid == tgid else { return nil }
            return ProcReads(cgroup: procFS.cgroupPath(tgid))
        case .uid, .gid, .comm, .acknowledgement, .other:
            return nil
        }
    }

    private func apply(_ event: ProcEvent, reads: ProcReads?) {
        let time = event.timestamp
        switch event.kind {
        case .fork(_, let parentTGID, let childPID, let childTGID):
            guard childPID == childTGID else {  // a new thread, not a process
                alive[childTGID]?.knownSingleThreaded = false
                return
            }
            // Inherit first: if the child is already gone, its parent's identity is the best
            // there is (a fork without exec runs the parent's program).
            var entry = ProcessEntry(process: ProcessSnapshot(pid: childPID), startTime: time)
            if let parent = alive[parentTGID] {
                // Names, ids and cgroup; not the parent's pid or /proc start time.
                entry.process = parent.process
                entry.process.pid = childPID
                entry.process.startTime = nil
            }
            entry.process.ppid = parentTGID
            entry.forkedWithoutExec = true
            entry.knownSingleThreaded = true
            if alive[parentTGID] == nil {
                if let snapshot = procFS.snapshot(childPID) { entry.process.merge(snapshot, replacingMissing: false) }
            } else if let cgroup = reads?.cgroup {
                entry.process.cgroupPath = cgroup
            } else if let cgroup = reads?.parentCgroup {
                entry.process.cgroupPath = cgroup
                alive[parentTGID]?.process.cgroupPath = cgroup
            }
            if alive[childPID] != nil { markExited(childPID, at: time) }  // missed its exit
            insertAlive(entry)
        case .exec(_, let tgid):
            guard var entry = alive[tgid] ?? unknown(tgid, at: time) else { return }
            // After an exec the inherited exe, arguments and comm are wrong: without fresh ones,
            // say "unknown" rather than name the parent's program (comm is kept: see docs).
            entry.process.exe = reads?.exe
            entry.process.cmdline = reads?.cmdline
            entry.forkedWithoutExec = false
            entry.missedExec = reads?.exe == nil
            if let status = reads?.status, status.tgid == nil || status.tgid == tgid {
                if let name = status.name { entry.process.comm = name }
                if let uid = status.uid?.filesystem { entry.process.uid = uid }
                if let gid = status.gid?.filesystem { entry.process.gid = gid }
            } else {
                // Reaped before the read: the comm the exec set was never seen, and the one
                // inherited is the parent's ("sh" for the ping a shell ran), which would name the
                // wrong program.
                entry.process.comm = nil
            }
            if let cgroup = reads?.cgroup { entry.process.cgroupPath = cgroup }
            if entry.missedExec, let record = recentExits[tgid] {
                name(&entry, from: record.exit, receivedAt: record.receivedAt, notBefore: time)
            }
            if entry.missedExec { noteUnnamed(tgid) }
            alive[tgid] = entry
        case .uid(let pid, let tgid, _, let effective):
            guard pid == tgid, var entry = alive[tgid] ?? unknown(tgid, at: time) else { return }
            entry.process.uid = effective
            retryMissedExec(&entry)
            alive[tgid] = entry
        case .gid(let pid, let tgid, _, let effective):
            guard pid == tgid, var entry = alive[tgid] ?? unknown(tgid, at: time) else { return }
            entry.process.gid = effective
            retryMissedExec(&entry)
            alive[tgid] = entry
        case .comm(let pid, let tgid, let comm):
            guard pid == tgid, var entry = alive[tgid] ?? unknown(tgid, at: time) else { return }
            entry.process.comm = comm
            retryMissedExec(&entry)
            alive[tgid] = entry
        case .exit(let pid, let tgid, _, _, _, _):
            guard pid == tgid else { return }  // a thread ended
            markExited(tgid, at: time, finalCgroup: reads?.cgroup)
        case .acknowledgement, .other:
            return
        }
        evictExpired(now: time)
    }

    /// Drops exited entries whose grace period ended before `now` (monotonic ns).
    public func evictExpired(now: UInt64) {
        while exitedHead < exited.count, let exitTime = exited[exitedHead].exitTime,
              exitTime.addingClamped(gracePeriod) < now {
            exitedHead += 1
            counters.expired += 1
        }
        compactExited()
    }

    /// Takes exit records (`TaskExitSource.read()`) received at `receivedAt` (monotonic ns).
    /// A process whose exe could not be read at its exec (it had exited) gets its exe and, if
    /// unknown, its comm from its record — now, or when its exec is applied if that comes later.
    /// The exe is the path of the record's file among the executables seen so far, or in the
    /// usual program directories (`ExecutableIndex`); nil when it is in neither. Call it after
    /// applying the process events read before the records: an entry the events create or end
    /// is then in its place.
    public func recordExits(_ exits: [TaskExit], receivedAt: UInt64) {
        guard !exits.isEmpty else { return }
        if recentExits.count + exits.count > Self.recentExitCapacity { trimRecentExits(now: receivedAt, adding: exits.count) }
        for exit in exits {
            let pid = exit.processID ?? exit.threadID
            recentExits[pid] = (exit, receivedAt)
            guard unnamedExecs.contains(pid) else { continue }
            // The exec came first (its exe read failed in an earlier batch). A live process with
            // this pid is the only one the record can be of; without one, the last that exited.
            if var entry = alive[pid] {
                name(&entry, from: exit, receivedAt: receivedAt, notBefore: entry.startTime)
                alive[pid] = entry
                if !entry.missedExec { unnamedExecs.remove(pid) }
            } else if let index = exited[exitedHead...].lastIndex(where: { $0.pid == pid }) {
                var entry = exited[index]
                name(&entry, from: exit, receivedAt: receivedAt, notBefore: entry.startTime)
                exited[index] = entry
                if !entry.missedExec { unnamedExecs.remove(pid) }
            }
        }
    }

    /// Names an entry whose exec was missed from `exit`, if the record can be its: received
    /// at `notBefore` or later (the exec's time, or the process's start), and naming the same
    /// parent — another parent means an earlier process with the same pid (or one re-parented
    /// after its parent died, when nothing is lost by not naming it).
    private func name(_ entry: inout ProcessEntry, from exit: TaskExit, receivedAt: UInt64, notBefore: UInt64) {
        guard entry.missedExec, receivedAt >= notBefore else { return }
        if let parent = exit.parentID, let ppid = entry.process.ppid, parent != ppid { return }
        fill(&entry, from: exit)
    }

    private func noteUnnamed(_ pid: Int32) {
        if unnamedExecs.count >= Self.recentExitCapacity {
            // Entries named otherwise (a retried exec) or evicted since: keep only the unnamed.
            unnamedExecs = Set(alive.values.filter(\.missedExec).map(\.pid)
                + exited[exitedHead...].filter(\.missedExec).map(\.pid))
        }
        unnamedExecs.insert(pid)
    }

    /// Makes room for `count` records: drops those older than `recentExitLifetime`, then the
    /// oldest, never all — the newest may be waiting for their exec event.
    private func trimRecentExits(now: UInt64, adding count: Int) {
        recentExits = recentExits.filter { now.subtractingClamped($0.value.receivedAt) < Self.recentExitLifetime }
        let excess = recentExits.count + count - Self.recentExitCapacity
        guard excess > 0 else { return }
        let oldest = recentExits.sorted { $0.value.receivedAt < $1.value.receivedAt }.prefix(excess)
        for (pid, _) in oldest { recentExits[pid] = nil }
    }

    /// Indexes the program directories and the executables of the table now, so that naming a
    /// program from its exit record later rarely has to (`ExecutableIndex`). Milliseconds.
    public func indexExecutables() {
        executables.record(alive.values.compactMap(\.process.exe))
        executables.scanDirectories(now: clock())
    }

    /// Exit records taken so far that named a program whose exec was missed.
    public private(set) var namedFromExitRecords = 0

    private func fill(_ entry: inout ProcessEntry, from exit: TaskExit) {
        if entry.process.comm == nil, !exit.comm.isEmpty { entry.process.comm = exit.comm }
        guard let executable = exit.executable else { return }
        let known = { [unowned self] in
            alive.values.compactMap(\.process.exe) + exited[exitedHead...].compactMap(\.process.exe)
        }
        guard let path = executables.path(of: executable, known: known, now: clock()) else { return }
        entry.process.exe = path
        entry.missedExec = false
        namedFromExitRecords += 1
    }

    // MARK: - Queries

    /// The live process with this pid, or else the most recently exited one.
    public func process(pid: Int32) -> ProcessEntry? {
        if let entry = alive[pid] { return entry }
        return exited[exitedHead...].last(where: { $0.pid == pid })
    }

    /// The processes of `uid` (nil: any) in cgroup `cgroupPath` (nil: any) that existed at some
    /// time in [time - window, time]: a packet received at `time` was sent at most `window`
    /// (the NFLOG flush timeout plus slack) earlier, possibly by a process that has exited since.
    /// Ordered by pid, alive ones first.
    public func processes(uid: UInt32?, cgroupPath: String?, aliveAt time: UInt64,
                          window: UInt64) -> [ProcessEntry] {
        func matches(_ entry: ProcessEntry) -> Bool {
            (uid == nil || entry.process.uid == uid) && (cgroupPath == nil || entry.process.cgroupPath == cgroupPath)
                && entry.isAlive(at: time, window: window)
        }
        let living = alive.values.filter(matches).sorted { $0.pid < $1.pid }
        let gone = exited[exitedHead...].filter(matches).sorted { $0.pid < $1.pid }
        return living + gone
    }

    /// Up to `limit` live processes of `uid`, the most recently started first.
    public func newestAlive(uid: UInt32, limit: Int) -> [ProcessEntry] {
        Array(alive.values.filter { $0.process.uid == uid }.sorted { $0.startTime > $1.startTime }.prefix(limit))
    }

    /// `entries` without those that are an ancestor of another of them: a parent waiting for its
    /// child (a shell running ping) did not send the child's packet. Ancestry follows the ppid
    /// recorded at fork, through the entries themselves and the live processes of the table, up
    /// to 64 levels; a step stops at an unknown pid or at a "parent" younger than its child (a
    /// reused pid). A parent that sent too is dropped all the same: the rule prefers leaves.
    public func leaves(of entries: [ProcessEntry]) -> [ProcessEntry] {
        guard entries.count > 1 else { return entries }
        var byPID: [Int32: ProcessEntry] = [:]
        for entry in entries where byPID[entry.pid] == nil { byPID[entry.pid] = entry }
        var ancestors = Set<Int32>()
        for entry in entries {
            var child = entry
            var depth = 0
            while depth < 64, let ppid = child.process.ppid, ppid > 0, ppid != child.pid,
                  let parent = byPID[ppid] ?? alive[ppid], parent.startTime <= child.startTime {
                if byPID[ppid] != nil, !ancestors.insert(ppid).inserted { break }  // the rest is marked
                child = parent
                depth += 1
            }
        }
        let leaves = entries.filter { !ancestors.contains($0.pid) }
        // A fork of a waiting parent that has not exec'd yet is that parent's program about to
        // become the next command (sh → sh → perl): it loses like its parent, unless nobody
        // else is left.
        let programs = leaves.filter { !($0.forkedWithoutExec && $0.process.ppid.map(ancestors.contains) == true) }
        return programs.isEmpty ? leaves : programs
    }

    // MARK: - Internals

    private func unknown(_ pid: Int32, at time: UInt64) -> ProcessEntry? {
        counters.unknownProcess += 1
        guard let snapshot = procFS.snapshot(pid) else { return nil }
        let entry = ProcessEntry(process: snapshot, startTime: min(snapshot.startTime ?? time, time))
        insertAlive(entry)
        return entry
    }

    private func insertAlive(_ entry: ProcessEntry) {
        alive[entry.pid] = entry
        while alive.count + exitedCount > capacity, exitedHead < exited.count {
            exitedHead += 1
            counters.evictedByCap += 1
        }
        compactExited()
    }

    /// A process whose exe could not be read at exec (the reader was late) is still running when
    /// its next event (comm, setuid) arrives: try again then.
    private func retryMissedExec(_ entry: inout ProcessEntry) {
        guard entry.missedExec, let exe = procFS.exe(entry.pid) else { return }
        entry.process.exe = exe
        if entry.process.comm == nil { entry.process.comm = procFS.comm(entry.pid) }
        if entry.process.cmdline == nil { entry.process.cmdline = procFS.cmdline(entry.pid) }
        entry.missedExec = false
    }

    /// `finalCgroup`: the cgroup read for its exit event (nil: read it now).
    private func markExited(_ pid: Int32, at time: UInt64, finalCgroup: String? = nil) {
        guard var entry = alive.removeValue(forKey: pid) else { return }
        entry.exitTime = max(time, entry.startTime)
        // A move to another cgroup raises no process event, and a process often moves itself
        // right after fork (`echo $$ > cgroup.procs; exec …`). Until its parent reaps it the
        // exiting task is still in /proc: take its final cgroup now.
        if let cgroup = finalCgroup ?? procFS.cgroupPath(pid) { entry.process.cgroupPath = cgroup }
        exited.append(entry)
        while alive.count + exitedCount > capacity, exitedHead < exited.count {
            exitedHead += 1
            counters.evictedByCap += 1
        }
        compactExited()
    }

    private func compactExited() {
        if exitedHead == exited.count {
            exited.removeAll(keepingCapacity: true)
            exitedHead = 0
        } else if exitedHead > 1024, exitedHead * 2 > exited.count {
            exited.removeFirst(exitedHead)
            exitedHead = 0
        }
    }
}

extension ProcessSnapshot {
    /// Overlays what `newer` read (its pid is this one's). With `replacingMissing`, fields it could
    /// not read become nil; without, they keep their current value.
    mutating func merge(_ newer: ProcessSnapshot, replacingMissing: Bool) {
        func merge<T>(_ current: inout T?, _ new: T?) {
            if let new { current = new } else if replacingMissing { current = nil }
        }
        merge(&ppid, newer.ppid)
        merge(&comm, newer.comm)
        merge(&exe, newer.exe)
        merge(&cmdline, newer.cmdline)
        merge(&uid, newer.uid)
        merge(&gid, newer.gid)
        merge(&cgroupPath, newer.cgroupPath)
        merge(&startTime, newer.startTime)
    }
}

extension UInt64 {
    func subtractingClamped(_ other: UInt64) -> UInt64 { self >= other ? self - other : 0 }
    func addingClamped(_ other: UInt64) -> UInt64 {
        let (sum, overflow) = addingReportingOverflow(other)
        return overflow ? .max : sum
    }
}
