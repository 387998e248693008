/// Which process sent a packet, and how sure nfowner is (issue: owner resolution).
public struct OwnerAttribution: Sendable, Hashable {
    public enum Confidence: String, Sendable {
        /// The packet's socket still existed; these processes hold it.
        case exact
        /// One process of the packet's uid was alive in its cgroup at packet time.
        case single
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
    /// The processes behind the packet: the socket's holders (exact) or the candidates.
    public var processes: [ProcessReference]

    public init(confidence: Confidence, reason: String? = nil, processes: [ProcessReference] = []) {
        self.confidence = confidence
        self.reason = reason
        self.processes = processes
    }

    /// The process named in `pid`/`comm`/`exe`: only when there is exactly one answer.
    public var chosen: ProcessReference? {
        switch confidence {
        case .exact, .single: processes.first
        case .candidates, .uid, .none: nil
        }
    }

    /// At most this many candidates are listed.
    public static let maximumListed = 16
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
