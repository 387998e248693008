/// Which process sent a packet, and how sure nfowner is (issue: owner resolution).
public struct OwnerAttribution: Sendable, Hashable {
    public enum Confidence: String, Sendable, CaseIterable {
        /// The packet's socket still existed; these processes hold it.
        case exact
        /// The packet's socket was gone (closed: FIN-WAIT, TIME-WAIT, data still queued after
        /// close()), or the kernel attached no uid to it; the flow's last known owner, whose
        /// socket was found earlier, is named (`pid` set like `exact`).
        case flow
        /// One process of the packet's uid was alive in its cgroup at packet time.
        case single
        /// Several were, all running one executable: the program is known, not the process
        /// (`named` has no pid). `processes` lists them.
        case program
        /// Several were: all are listed (bounded).
        case candidates
        /// Only the uid is known (no cgroup, or no process matched).
        case uid
        /// Nothing is known; `reason` says why.
        case none
    }

    public var confidence: Confidence
    /// Why the confidence is not higher, e.g. "no socket: kernel-generated".
    public var reason: String?
    /// The processes behind the packet: the socket's holders (exact), the candidates (single,
    /// program, candidates).
    public var processes: [ProcessReference]
    /// The cgroup of the named process (exact, single) or of every candidate of a program, from
    /// the process table; nil when the processes do not share one or it is not known. The owner's
    /// cgroup is this one, not the ruleset's classification (which is only the nearest classified
    /// ancestor of the socket's cgroup).
    public var cgroup: ProcessCgroup?
    /// The owner's uid when nfowner found it itself because the kernel attached none to the
    /// packet: the receiving socket's (an inbound packet, `exact`) or the flow's known owner's
    /// (`flow`). nil otherwise (the packet's own uid then says it).
    public var uid: UInt32?

    public init(confidence: Confidence, reason: String? = nil, processes: [ProcessReference] = [],
                cgroup: ProcessCgroup? = nil, uid: UInt32? = nil) {
        self.confidence = confidence
        self.reason = reason
        self.processes = processes
        self.cgroup = cgroup
        self.uid = uid
    }

    /// The process named in `pid`/`comm`/`exe`: only when there is exactly one answer.
    public var chosen: ProcessReference? {
        switch confidence {
        case .exact, .flow, .single: processes.first
        case .program, .candidates, .uid, .none: nil
        }
    }

    /// What `pid`, `comm` and `exe` say: one process (exact, single), or one program without a
    /// pid (program: the first listed process, which has the program's exe when any has one);
    /// nil otherwise.
    public var named: NamedProcess? {
        switch confidence {
        case .exact, .flow, .single: processes.first.map { NamedProcess(pid: $0.pid, comm: $0.comm, exe: $0.exe) }
        case .program: processes.first.map { NamedProcess(pid: nil, comm: $0.comm, exe: $0.exe) }
        case .candidates, .uid, .none: nil
        }
    }

    /// Equality for a caller that compares every packet's attribution with the one before (the
    /// pipeline's `update`): the flow cache hands out interned values, so the arrays, strings
    /// and the cgroup are usually the very same storage, compared by identity first.
    @inlinable
    public func isSame(as other: OwnerAttribution) -> Bool {
        confidence == other.confidence && processes == other.processes && reason == other.reason
            && uid == other.uid && (cgroup === other.cgroup || cgroup == other.cgroup)
    }

    /// At most this many candidates are listed.
    public static let maximumListed = 16
}

/// The event's `pid`, `comm` and `exe`: a process, or a program (`pid` nil).
public struct NamedProcess: Sendable, Equatable {
    public var pid: Int32?
    public var comm: String?
    public var exe: String?

    public init(pid: Int32?, comm: String?, exe: String?) {
        self.pid = pid
        self.comm = comm
        self.exe = exe
    }
}

public struct ProcessReference: Sendable, Equatable, Hashable {
    public var pid: Int32
    public var comm: String?
    public var exe: String?

    public init(pid: Int32, comm: String?, exe: String?) {
        self.pid = pid
        self.comm = comm
        self.exe = exe
    }
}

/// A process's own cgroup (/proc/PID/cgroup), as an owner reports it.
///
/// A class, not a struct: an attribution is copied and compared for every packet (the flow
/// cache hands it out, the pipeline compares it with the packet before's), and one reference
/// costs one retain; two strings and an optional id inline made `OwnerAttribution` go through
/// its value witnesses instead — ~1,500 more instructions per packet under callgrind.
public final class ProcessCgroup: Sendable, Hashable {
    /// Relative to the cgroup2 root, like /proc/PID/cgroup; the root cgroup is "/".
    public let path: String
    /// The systemd unit or scope in the path, if any.
    public let unit: String?
    /// Its id (the directory's inode); nil when it was not looked up (the path is the ruleset's
    /// classified cgroup, whose id the packet carries) or could not be (the cgroup is gone, or
    /// there is no cgroup2 mount).
    public let id: UInt64?

    public init(path: String, unit: String?, id: UInt64?) {
        self.path = path
        self.unit = unit
        self.id = id
    }

    public static func == (lhs: ProcessCgroup, rhs: ProcessCgroup) -> Bool {
        lhs === rhs || (lhs.path == rhs.path && lhs.unit == rhs.unit && lhs.id == rhs.id)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(path)
        hasher.combine(unit)
        hasher.combine(id)
    }
}
