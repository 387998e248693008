import NetfilterSystem
import PacketModel
import PacketParsing

/// Names the process behind each packet, in order of certainty:
///
/// 1. exact — the packet's socket still exists (TCP/UDP through sock_diag; ping and raw sockets
///    through /proc/net): the processes holding it;
/// 2. single / candidates — the processes of the packet's uid alive in its cgroup at packet time
///    (from the process table, which keeps exited processes for a grace period);
/// 3. uid — only the uid is known;
/// 4. none — no owner, with the reason.
///
/// Each flow is resolved once and cached for the flow lifetime (in a `FlowCache`, bounded to a
/// maximum number of flows), so a bulk transfer costs one lookup.
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
    private let flows: FlowCache
    /// Packets whose flow was not cached: each cost one resolution.
    @exclusivity(unchecked) public private(set) var lookups = 0
    /// Packets answered from the flow cache.
    @exclusivity(unchecked) public private(set) var cacheHits = 0

    /// `flowLifetime` in nanoseconds: how long a resolved flow is answered from the cache.
    /// `maximumFlows`: the most flows cached at once (it bounds the cache's memory).
    public init(table: ProcessTable, sockets: SocketResolver?, flushTimeoutHundredths: UInt32,
                flowLifetime: UInt64 = FlowCache.defaultLifetime,
                maximumFlows: Int = FlowCache.defaultMaximumFlows) {
        self.table = table
        self.sockets = sockets
        window = UInt64(flushTimeoutHundredths) * 10_000_000 + 20_000_000
        flows = FlowCache(lifetime: flowLifetime, maximumFlows: maximumFlows)
    }

    /// Flows cached now (some may have expired and not been swept yet).
    public var cachedFlows: Int { flows.count }
    /// Unexpired flows dropped because the cache was full.
    public var flowEvictions: Int { flows.evictions }
    /// What the flow cache holds in memory, in bytes (see `FlowCache.bytesAllocated`).
    public var flowCacheBytes: Int { flows.bytesAllocated }

    /// Runs before a flow is resolved (a cache miss), e.g. to apply queued process events so
    /// the sender is in the table. Cached flows do not need it: their sender was seen already.
    public var beforeResolving: (() -> Void)?

    /// The attribution of `packet`, logged with `uid` (nil when the kernel attached none) into
    /// `cgroupPath` (nil when unclassified), received at `now` (monotonic ns): from the flow
    /// cache, or resolved and cached.
    public func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?,
                          cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        let key = FlowKey(packet: packet, direction: direction, uid: uid)
        if let cached = cached(key, now: now) { return cached }
        return resolveAndCache(key, packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
    }

    /// The cached attribution of the flow `key`, nil when it must be resolved. Reads only the
    /// flow cache (never the process table), so a caller that shares the table with another
    /// thread needs no lock for it.
    public func cached(_ key: FlowKey, now: UInt64) -> OwnerAttribution? {
        guard let cached = flows.lookup(key, now: now) else { return nil }
        cacheHits += 1
        return cached
    }

    /// Whether the flow `key` is cached (counted as a cache hit), without handing out its
    /// attribution. Reads only the flow cache, like `cached`.
    public func isCached(_ key: FlowKey, now: UInt64) -> Bool {
        guard flows.contains(key, now: now) else { return false }
        cacheHits += 1
        return true
    }

    /// Resolves the flow `key` of `packet` (see `attribute`) and caches the answer.
    public func resolveAndCache(_ key: FlowKey, packet: PacketSummary, direction: Direction, uid: UInt32?,
                                cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        lookups += 1
        beforeResolving?()
        let result = resolve(packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
        flows.insert(key, result, now: now)
        return result
    }

    private func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?,
                         cgroupPath: String?, now: UInt64) -> OwnerAttribution {
                // No uid: the packet had no full socket with a file. Say which case it is.
        guard let uid else {
            if case .tcp = packet.transport, let found = try? sockets?.resolve(packet: packet, direction: direction),
               let socket = found.primary {
                if socket.isTimeWait { return OwnerAttribution(confidence: .none, reason: "no socket: time-wait") }
                if socket.inode == 0 || socket.pids.isEmpty {
                    return OwnerAttribution(confidence: .none, reason: "socket owned by kernel (\(socket.stateName))")
                }
            }
            return OwnerAttribution(confidence: .none, reason: "no socket: kernel-generated")
        }
        // 1. The socket itself, while it exists. A holder the index does not know yet is looked
        // for first among the newest processes of the uid (a new socket most often is theirs).
        let newest = { [table] in table.newestAlive(uid: uid, limit: SocketOwners.likelyHolderLimit).map(\.pid) }
        if let found = try? sockets?.resolve(packet: packet, direction: direction, likelyHolders: newest) {
            var owned = found.sockets.filter { $0.uid == uid && !$0.pids.isEmpty }
            if owned.isEmpty, let socket = found.sockets.first(where: { $0.uid == uid && $0.inode != 0 }),
               let sockets, !rebuiltFor.contains(socket.inode) {
                // The socket exists but the inode → pid index predates it (its rescans are
                // rate-limited): rebuild once for this inode rather than settle for candidates.
                rebuiltFor.insert(socket.inode)
                if rebuiltFor.count > 4096 { rebuiltFor.removeAll() }
                let pids = sockets.owners.rebuild(finding: socket.inode)
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
            .filter { entry in entry.process.cgroupPath.map { CgroupPath.isSame($0, orBelow: cgroupPath) } ?? false }
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

    /// Drops expired flows (a bounded part of the cache per call) and expired processes;
    /// called from the receive loop's tick.
    public func housekeeping(now: UInt64) {
        table.evictExpired(now: now)
        flows.sweep(now: now)
    }

    /// A socket holder the table does not know yet (it started between two event drains, or
    /// events are unavailable): read /proc directly; it is alive, it holds the socket.
    private func reference(_ pid: Int32) -> ProcessReference {
        if let entry = table.process(pid: pid), entry.process.comm != nil { return reference(entry) }
        return ProcessReference(pid: pid, comm: procFS.comm(pid), exe: procFS.exe(pid))
    }

    private func reference(_ entry: ProcessEntry) -> ProcessReference {
        ProcessReference(pid: entry.pid, comm: entry.process.comm, exe: entry.process.exe)
    }
}
