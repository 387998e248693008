import Export
import NetfilterSystem
import PacketParsing
import ProcessResolution

/// Names the process behind each packet, in order of certainty:
///
/// 1. exact — the packet's socket still exists (TCP/UDP through sock_diag; ping and raw sockets
///    through /proc/net): the processes holding it;
/// 2. single / candidates — the processes of the packet's uid alive in its cgroup at packet time
///    (from the process table, which keeps exited processes for a grace period);
/// 3. uid — only the uid is known;
/// 4. none — no owner, with the reason.
///
/// Each flow is resolved once and cached for `flowLifetime`, so a bulk transfer costs one lookup.
/// Owned by the receive thread (the socket lookups answer for its network namespace).
public final class OwnerAttributor {
    private let table: ProcessTable
    private let sockets: SocketResolver?
    private let procFS = ProcFS()
    /// Inodes the pid index was rebuilt for already (each at most once).
    private var rebuiltFor: Set<UInt64> = []
    /// How long before the receive time a packet may have been sent: the NFLOG flush timeout
    /// plus scheduling slack. A process that exited before that cannot have sent it.
    private let window: UInt64
    private var flows: [FlowKey: (result: OwnerAttribution, at: UInt64)] = [:]
    private let flowLifetime: UInt64 = 2_000_000_000
    private static let flowCapacity = 65_536
    public private(set) var lookups = 0
    public private(set) var cacheHits = 0

    public init(table: ProcessTable, sockets: SocketResolver?, flushTimeoutHundredths: UInt32) {
        self.table = table
        self.sockets = sockets
        window = UInt64(flushTimeoutHundredths) * 10_000_000 + 20_000_000
    }

    /// The attribution of `packet`, logged with `uid` (nil when the kernel attached none) into
    /// `cgroupPath` (nil when unclassified), received at `now` (monotonic ns).
    public func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?,
                          cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        let key = FlowKey(packet: packet, direction: direction, uid: uid)
        if let cached = flows[key], now &- cached.at < flowLifetime {
            cacheHits += 1
            return cached.result
        }
        lookups += 1
        let result = resolve(packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
        if flows.count >= Self.flowCapacity { flows.removeAll(keepingCapacity: true) }
        flows[key] = (result, now)
        return result
    }

    private func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?,
                         cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        let lookupDirection: PacketDirection = direction == .inbound ? .inbound : .outbound
        // No uid: the packet had no full socket with a file. Say which case it is.
        guard let uid else {
            if case .tcp = packet.transport, let found = try? sockets?.resolve(packet: packet, direction: lookupDirection),
               let socket = found.primary {
                if socket.isTimeWait { return OwnerAttribution(confidence: .none, reason: "no socket: time-wait") }
                if socket.inode == 0 || socket.pids.isEmpty {
                    return OwnerAttribution(confidence: .none, reason: "socket owned by kernel (\(socket.stateName))")
                }
            }
            return OwnerAttribution(confidence: .none, reason: "no socket: kernel-generated")
        }
        // 1. The socket itself, while it exists.
        if let found = try? sockets?.resolve(packet: packet, direction: lookupDirection) {
            var owned = found.sockets.filter { $0.uid == uid && !$0.pids.isEmpty }
            if owned.isEmpty, let socket = found.sockets.first(where: { $0.uid == uid && $0.inode != 0 }),
               let sockets, !rebuiltFor.contains(socket.inode) {
                // The socket exists but the inode → pid index predates it (its rescans are
                // rate-limited): rebuild once for this inode rather than settle for candidates.
                rebuiltFor.insert(socket.inode)
                if rebuiltFor.count > 4096 { rebuiltFor.removeAll() }
                sockets.owners.rebuild()
                let pids = sockets.owners.pids(forInode: socket.inode)
                if !pids.isEmpty { owned = [ResolvedSocket(uid: socket.uid, inode: socket.inode, cgroupID: socket.cgroupID, state: socket.state, pids: pids)] }
            }
            let pids = Array(Set(owned.flatMap(\.pids))).sorted()
            if !pids.isEmpty {
                let processes = pids.prefix(OwnerAttribution.maximumListed).map(reference)
                return OwnerAttribution(confidence: found.sockets.count == 1 ? .exact : .candidates,
                                        reason: found.sockets.count == 1 ? nil : "\(found.sockets.count) sockets match",
                                        processes: Array(processes))
            }
        }
        // 2. Who of that uid was in that cgroup when the packet left.
        guard let cgroupPath else {
            return OwnerAttribution(confidence: .uid, reason: "no cgroup known for the packet")
        }
        let candidates = table.processes(uid: uid, cgroupPath: nil, aliveAt: now, window: window)
            .filter { entry in entry.cgroupPath.map { Self.isSame($0, orBelow: cgroupPath) } ?? false }
        switch candidates.count {
        case 0:
            return OwnerAttribution(confidence: .uid, reason: "no process of uid \(uid) seen in \(cgroupPath)")
        case 1:
            return OwnerAttribution(confidence: .single, processes: [reference(candidates[0])])
        default:
            return OwnerAttribution(confidence: .candidates,
                                    reason: "\(candidates.count) processes of uid \(uid) in \(cgroupPath)",
                                    processes: candidates.prefix(OwnerAttribution.maximumListed).map(reference))
        }
    }

    /// Drops cached flows and expired processes; called from the receive loop's tick.
    public func housekeeping(now: UInt64) {
        table.evictExpired(now: now)
        if flows.count > Self.flowCapacity / 2 {
            flows = flows.filter { now &- $0.value.at < flowLifetime }
        }
    }

    /// A socket holder the table does not know yet (it started between two event drains, or
    /// events are unavailable): read /proc directly; it is alive, it holds the socket.
    private func reference(_ pid: Int32) -> ProcessReference {
        if let entry = table.process(pid: pid), entry.comm != nil { return reference(entry) }
        return ProcessReference(pid: pid, comm: procFS.comm(pid), exe: procFS.exe(pid))
    }

    private func reference(_ entry: ProcessEntry) -> ProcessReference {
        ProcessReference(pid: entry.pid, comm: entry.comm, exe: entry.exe)
    }

    static func isSame(_ path: String, orBelow ancestor: String) -> Bool {
        ancestor == "/" || path == ancestor || path.hasPrefix(ancestor + "/")
    }
}

/// What identifies a flow for caching: protocol, both ends, direction and owner uid.
struct FlowKey: Hashable {
    var source: IPAddress
    var destination: IPAddress
    var protocolNumber: UInt8
    var sourcePort: UInt16
    var destinationPort: UInt16
    var inbound: Bool
    var uid: UInt32?

    init(packet: PacketSummary, direction: Direction, uid: UInt32?) {
        source = packet.source
        destination = packet.destination
        protocolNumber = packet.protocolNumber
        // ICMP flows are keyed by the echo id and type: a reply is not the request's flow.
        if let icmp = packet.icmp {
            sourcePort = icmp.echoIdentifier ?? 0
            destinationPort = UInt16(icmp.type ?? 0)
        } else {
            sourcePort = packet.sourcePort ?? 0
            destinationPort = packet.destinationPort ?? 0
        }
        inbound = direction == .inbound
        self.uid = uid
    }
}
