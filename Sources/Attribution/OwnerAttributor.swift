import NetfilterSystem
import PacketModel
import PacketParsing

/// Names the process behind each packet, in order of certainty:
///
/// 1. exact — the packet's socket still exists (TCP/UDP through sock_diag; ping and raw sockets
///    through /proc/net): the processes holding it;
/// 2. single / program / candidates — the socket is gone: the processes of the packet's uid alive
///    at packet time (from the process table, which keeps exited processes for a grace period)
///    in its cgroup, or, when no cgroup is known for the packet, those that started or exited
///    around it; parents of other candidates are dropped (leaves win), and candidates that all
///    run one executable name the program (`program`, no pid);
/// 3. uid — only the uid is known;
/// 4. none — no owner, with the reason.
///
/// A packet the kernel attached no uid to goes another way (`resolveWithoutUID`): an inbound one
/// to its receiving socket (exact), a connection not accepted yet to its listener (exact), a
/// packet of a connection whose socket is gone to the connection's last known owner (flow, from
/// `FlowOwners`), and only what no socket receives or the kernel made itself stays none.
///
/// An answer that names a process (exact, single) or a program whose processes share a cgroup
/// carries that cgroup (`OwnerAttribution.cgroup`): the process's own, which the owner reports
/// instead of the ruleset's classification. When the two differ the flow counts as a cgroup
/// correction.
///
/// Each flow is resolved once and cached for the flow lifetime (in a `FlowCache`, bounded to a
/// maximum number of flows), so a bulk transfer costs one lookup.
/// Owned by the receive thread (the socket lookups answer for its network namespace).
public final class OwnerAttributor {
    private let table: ProcessTable
    private let sockets: SocketResolver?
    /// Where a socket holder the table does not know is read from (a fixture in tests).
    private let procFS: ProcFS
    /// Inodes the pid index was rebuilt for already (each at most once).
    private var rebuiltFor: Set<UInt64> = []
    /// How long before the receive time a packet may have been sent: the NFLOG flush timeout
    /// plus scheduling slack. A process that exited before that cannot have sent it.
    private let window: UInt64
    /// How far back to look when nobody was alive within `window`: `window` + 250 ms.
    private let lateWindow: UInt64
    /// When the receive loop last stopped waiting (monotonic ns; nil: no loop, as in `trace`'s
    /// tests). The packet being resolved was queued then or later, and sent at most `window`
    /// before it was queued — not necessarily within `window` of being read: a loop resolving a
    /// burst of forty new flows reads the fortieth tens of milliseconds after it came, when its
    /// one-shot sender is long gone and only the shell that started it is still alive.
    public var busySince: UInt64?
    /// For a packet the kernel wrote to its socket at send time (each flow's first packet, a
    /// held packet): a moment it was sent after, when that socket's queue was seen empty (see
    /// `EmptyQueueMark`); nil otherwise. A process whose exit before that moment is known
    /// exactly (`ProcessEntry.exited(before:)`) did not send it — in a shell loop, the programs
    /// the shell ran before the sender.
    public var sentAfter: UInt64?
    private let flows: FlowCache
    /// Each connection's last named owner, for its packets without a uid (see `FlowOwners`).
    private let flowOwners = FlowOwners()
    /// Set by a resolution answered from `flowOwners` rather than a lookup.
    private var recalled = false
    /// The flow lifetime (ns): an owner found this recently still holds its socket as far as
    /// the flow cache is concerned, and so for the connection's other direction too.
    private let lifetime: UInt64
    /// Packets whose flow was not cached: each cost one resolution.
    @exclusivity(unchecked) public private(set) var lookups = 0
    /// Packets answered from the flow cache.
    @exclusivity(unchecked) public private(set) var cacheHits = 0
    /// Resolutions (flows, not packets) whose answer's cgroup — the named process's own — differs
    /// from the cgroup the ruleset classified the packet into.
    public private(set) var cgroupCorrections = 0
    /// The id of the cgroup at a hierarchy path ("/" for the root); nil when unknown. Asked only
    /// for a process's cgroup that is not the packet's classified one, once per resolution.
    private let cgroupID: ((String) -> UInt64?)?

    /// `flowLifetime` in nanoseconds: how long a resolved flow is answered from the cache.
    /// `maximumFlows`: the most flows cached at once (it bounds the cache's memory).
    /// `cgroupID`: the id of a cgroup path (see `CgroupIDs`), nil to report such ids as unknown.
    /// `procFS`: the /proc the table does not cover is read from (the real one by default).
    public init(table: ProcessTable, sockets: SocketResolver?, flushTimeoutHundredths: UInt32,
                flowLifetime: UInt64 = FlowCache.defaultLifetime,
                maximumFlows: Int = FlowCache.defaultMaximumFlows,
                cgroupID: ((String) -> UInt64?)? = nil, procFS: ProcFS = ProcFS()) {
        self.table = table
        self.procFS = procFS
        self.sockets = sockets
        self.cgroupID = cgroupID
        window = UInt64(flushTimeoutHundredths) * 10_000_000 + 20_000_000
        lateWindow = window + 250_000_000
        flows = FlowCache(lifetime: flowLifetime, maximumFlows: maximumFlows)
        lifetime = flowLifetime
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

    /// How the summary line counts the cached flow `key` (counted as a cache hit), without
    /// handing out its attribution; nil when it must be resolved. Reads only the flow cache,
    /// like `cached`.
    public func cachedTally(_ key: FlowKey, now: UInt64) -> AttributionTally? {
        guard let tally = flows.tally(key, now: now) else { return nil }
        cacheHits += 1
        return tally
    }

    /// The identity of the attribution cached for `key` (counted as a cache hit; see
    /// `FlowCache.memoIdentity`), or nil when it must be resolved.
    public func cachedIdentity(_ key: FlowKey, now: UInt64) -> UInt64? {
        guard flows.contains(key, now: now) else { return nil }
        cacheHits += 1
        return flows.memoIdentity
    }

    /// The last flow looked up or stored: its attribution's identity, the attribution (a copy),
    /// and how the summary line counts it.
    public var lastIdentity: UInt64 { flows.memoIdentity }
    public var lastAttribution: OwnerAttribution { flows.memoValue }
    public var lastTally: AttributionTally { flows.memoTallyValue }

    /// Resolves the flow `key` of `packet` (see `attribute`) and caches the answer.
    public func resolveAndCache(_ key: FlowKey, packet: PacketSummary, direction: Direction, uid: UInt32?,
                                cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        lookups += 1
        beforeResolving?()
        recalled = false
        var result = resolve(packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
        if let own = result.cgroup, own.path != cgroupPath {
            // The process's cgroup is not the classified one (or the packet was not classified).
            if cgroupPath != nil { cgroupCorrections += 1 }
            result.cgroup = ProcessCgroup(path: own.path, unit: own.unit, id: cgroupID?(own.path))
        }
        flows.insert(key, result, now: now)
        // A named owner is the connection's, for its packets that will come without a uid. One
        // recalled from the memo is not remembered again: only a lookup renews it, so a socket
        // that closed is not credited past the retention however long packets keep coming. A
        // program (several processes of one executable, the sender among them) names the
        // connection's program too: the echo replies to a ping that exited are its program's.
        if !recalled, [.exact, .single, .program].contains(result.confidence), let owner = uid ?? result.uid,
           let connection = FlowOwners.connection(of: packet, direction: direction) {
            flowOwners.remember(connection, result, uid: owner, now: now)
            // The connection's packets without a uid that came earlier (a batched inbound SYN
            // read after the server's socket was gone) were answered without this owner: their
            // next packets are resolved again, and find it.
            for stale in FlowOwners.keysWithoutUID(of: connection) where stale != key { flows.remove(stale) }
        }
        return result
    }

    private func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?,
                         cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        // No uid: the packet had no full socket with a file, or (inbound) the kernel did not
        // look its socket up before the hook.
        guard let uid else { return resolveWithoutUID(packet: packet, direction: direction, cgroupPath: cgroupPath, now: now) }
        // 1. The socket itself, while it exists. A holder the index does not know yet is looked
        // for first among the newest processes of the uid (a new socket most often is theirs).
        let newest = { [table] in table.newestAlive(uid: uid, limit: SocketOwners.likelyHolderLimit).map(\.pid) }
        let found = try? sockets?.resolve(packet: packet, direction: direction, likelyHolders: newest)
        if let found, let held = holders(of: found, uid: uid) { return held }
        // 2. Without a cgroup, the processes left to ask are those that started or exited around
        // the packet — never a daemon that runs on. A server's reply read after it closed the
        // connection (a root HTTP server in the root cgroup) would name whatever process of its
        // uid started meanwhile. The connection's owner is the better answer: named from an
        // earlier packet of the same uid, or else the process holding the listener that
        // accepted it, when its socket is still there without a holder. `flow` says how.
        if cgroupPath == nil {
            if let connection = FlowOwners.connection(of: packet, direction: direction),
               let known = flowOwners.owner(of: connection, now: now), known.uid == uid {
                return OwnerAttribution(confidence: .flow, reason: "the flow's owner; its socket is gone",
                                        processes: known.attribution.processes, cgroup: known.attribution.cgroup,
                                        uid: known.uid)
            }
            if case .tcp = packet.transport, let socket = found?.primary, !socket.isAwaitingAccept,
               let reason = Self.reason(for: socket), var listener = listenerAnswer(packet, direction, refreshing: false) {
                listener.confidence = .flow
                listener.reason = "the listener's owner; \(reason)"
                return listener
            }
        }
        return candidates(uid: uid, cgroupPath: cgroupPath, now: now)
    }

    /// Who of `uid` could have sent a packet whose socket is gone: in its cgroup, or without
    /// one, those that started or exited around the packet (a daemon that has run for hours and
    /// still runs would have its socket found).
    /// A packet read later than the window allows (the receive thread was not scheduled in time:
    /// its receive time is all nfowner knows) finds nobody there; then, and only then, the
    /// search reaches `lateWindow` back and the reason says so.
    private func candidates(uid: UInt32, cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        // Read late by a busy loop: the window reaches back to when it was last idle.
        let backlog = busySince.map { now > $0 ? now - $0 : 0 } ?? 0
        let window = self.window + backlog
        let lateWindow = self.lateWindow + backlog
        let sentAfter = self.sentAfter
        func alive(within window: UInt64) -> [ProcessEntry] {
            var alive = table.processes(uid: uid, cgroupPath: nil, aliveAt: now, window: window)
            if let sentAfter { alive.removeAll { $0.exited(before: sentAfter) } }
            if let cgroupPath {
                return alive.filter { entry in
                    entry.process.cgroupPath.map { CgroupPath.isSame($0, orBelow: cgroupPath) } ?? false
                }
            }
            return alive.filter { $0.startedOrExited(around: now, window: window) }
        }
        var pool = alive(within: window)
        var scope = cgroupPath.map { "in \($0)" } ?? "started or exited at packet time (no cgroup known for the packet)"
        let late = pool.isEmpty
        if late {
            pool = alive(within: lateWindow)
            scope += ", none within \(window / 1_000_000) ms but within \(lateWindow / 1_000_000) ms (the packet was read late)"
        }
        guard !pool.isEmpty else {
            return OwnerAttribution(confidence: .uid, reason: cgroupPath.map { "no process of uid \(uid) seen in \($0)" }
                                    ?? "no cgroup known for the packet")
        }
        // A parent waiting for its child (sh → ping) did not send the child's packet.
        return Self.answer(naming: table.leaves(of: pool), described: "of uid \(uid) \(scope)",
                           explainSingle: cgroupPath == nil || late, uid: nil, reference: reference)
    }

    /// The answer that names the processes a packet may be from, once parents are dropped:
    /// one is `single` (with a reason only when `explainSingle`), one executable `program`,
    /// else `candidates`; `described` says whose they are ("of uid 1000 in /x"), for the reason.
    private static func answer(naming candidates: [ProcessEntry], described: String, explainSingle: Bool,
                               uid: UInt32?, reference: (ProcessEntry) -> ProcessReference) -> OwnerAttribution {
        let shared = sharedCgroup(of: candidates)
        if candidates.count == 1 {
            return OwnerAttribution(confidence: .single,
                                    reason: explainSingle ? "the only process \(described)" : nil,
                                    processes: [reference(candidates[0])], cgroup: shared, uid: uid)
        }
        if let program = sameProgram(candidates) {
            let listed = [program] + candidates.lazy.filter { $0.pid != program.pid }.prefix(OwnerAttribution.maximumListed - 1)
            return OwnerAttribution(confidence: .program,
                                    reason: "\(candidates.count) processes \(described), all running \(program.process.exe ?? program.process.comm ?? "one program")",
                                    processes: listed.map(reference), cgroup: shared, uid: uid)
        }
        return OwnerAttribution(confidence: .candidates, reason: "\(candidates.count) processes \(described)",
                                processes: candidates.prefix(OwnerAttribution.maximumListed).map(reference), uid: uid)
    }

    /// The attribution of a frame a packet socket sent on interface `interface` (logged at the
    /// device's egress hook, where it first meets netfilter), `uid` the socket's: the processes
    /// holding the packet sockets of that uid on that interface (exact when one socket), else
    /// the uid's processes around the frame. Not through the flow cache: the frame's IP header
    /// is whatever the program wrote, and another program's socket may own that flow. Cached
    /// per (uid, interface) for `frameCacheLifetime`, so a generator's flood costs one
    /// /proc/net/packet read per batch, not per frame.
    public func attributeFrame(packet: PacketSummary, uid: UInt32?, interface: UInt32?, now: UInt64) -> OwnerAttribution {
        guard let uid else {
            return OwnerAttribution(confidence: .none, reason: "a frame without a socket owner (forwarded, or the kernel's)")
        }
        let sender = FrameSender(uid: uid, interface: interface ?? 0)
        if let cached = frameSenders[sender], now &- cached.time < Self.frameCacheLifetime { return cached.attribution }
        lookups += 1
        beforeResolving?()
        let newest = { [table] in table.newestAlive(uid: uid, limit: SocketOwners.likelyHolderLimit).map(\.pid) }
        var answer: OwnerAttribution
        if let found = try? sockets?.resolvePacketSocket(uid: uid, interface: interface ?? 0, likelyHolders: newest),
           let held = holders(of: found, uid: uid) {
            answer = held
            if answer.confidence == .exact { answer.reason = "sent through a packet socket (AF_PACKET)" }
            else { answer.reason = "\(found.sockets.count) packet sockets of uid \(uid) can send on the interface" }
        } else {
            answer = candidates(uid: uid, cgroupPath: nil, now: now)
            answer.reason = "no packet socket of uid \(uid) open on the interface now; " + (answer.reason ?? "")
        }
        if frameSenders.count >= 1024 { frameSenders.removeAll(keepingCapacity: true) }
        frameSenders[sender] = (answer, now)
        return answer
    }

    /// The attribution of an ICMP error that arrived for a packet this host sent (`quoted`, as
    /// the error quotes it): the socket that sent it receives the error (its holders, `exact`);
    /// else the connection's last known owner (`flow`); else nobody. Not through the flow cache:
    /// the errors one router sends a host all look alike, whichever socket they are for.
    public func attributeICMPError(quoted: PacketSummary, now: UInt64) -> OwnerAttribution {
        lookups += 1
        beforeResolving?()
        if let found = try? sockets?.resolve(packet: quoted, direction: .outbound), var held = heldAnswer(found) {
            held.reason = "an ICMP error for the socket's packet"
            return held
        }
        if let connection = FlowOwners.connection(of: quoted, direction: .outbound),
           let known = flowOwners.owner(of: connection, now: now) {
            return OwnerAttribution(confidence: .flow, reason: "an ICMP error for the flow's packet; its socket is gone",
                                    processes: known.attribution.processes, cgroup: known.attribution.cgroup,
                                    uid: known.uid)
        }
        return OwnerAttribution(confidence: .none, reason: NoOwnerReason.notDelivered)
    }

    /// How long a frame sender's answer is reused (ns): short, since a packet socket is often
    /// one command's (a DHCP client, a test tool) and the next may be another's.
    static let frameCacheLifetime: UInt64 = 100_000_000
    private struct FrameSender: Hashable {
        var uid: UInt32
        var interface: UInt32
    }
    private var frameSenders: [FrameSender: (attribution: OwnerAttribution, time: UInt64)] = [:]

    /// A packet without a uid, in this order:
    /// 1. inbound, of a connection whose owner was found within a flow lifetime (its other
    ///    direction, usually): that owner's socket receives it — no socket lookup at all;
    /// 2. inbound, the receiving socket found by its local address and port (sock_diag for TCP
    ///    and UDP, wildcard-bound and unconnected UDP included; /proc/net/icmp{,6} for an echo
    ///    reply to a ping socket; /proc/net/raw{,6} for other protocols): `exact`, its holders;
    /// 3. the connection's last known owner, its socket gone (orphaned after close(),
    ///    TIME_WAIT) or never found: `flow`;
    /// 4. inbound and classified (its receiving socket's cgroup, found by the kernel at the
    ///    input hook), its socket or the socket's holder not found: the processes in that cgroup
    ///    at packet time (`receiversInCgroup`);
    /// 5. `none`, with what the socket lookup told (time-wait, owned by the kernel) or, with no
    ///    socket, kernel-generated (outbound) or received by none (inbound).
    private func resolveWithoutUID(packet: PacketSummary, direction: Direction, cgroupPath: String?,
                                   now: UInt64) -> OwnerAttribution {
        if case .notFirstFragment = packet.transport {
            return OwnerAttribution(confidence: .none, reason: "no socket: a later fragment (no ports)")
        }
        let connection = FlowOwners.connection(of: packet, direction: direction)
        var reason = direction == .inbound ? NoOwnerReason.notDelivered : NoOwnerReason.kernelGenerated
        /// Whether a socket of the packet was found, in a state without an owner (TIME_WAIT,
        /// orphaned after close()).
        var socketGone = false
        /// The uid of the socket found for an inbound packet, whose holder was not.
        var socketUID: UInt32?
        if direction == .inbound {
            if let connection, let known = flowOwners.owner(of: connection, now: now, maximumAge: lifetime) {
                var answer = known.attribution
                answer.uid = known.uid
                recalled = true
                return answer
            }
            // Only an echo reply goes to a ping socket; other ICMP (requests, errors) is the kernel's.
            if Self.deliveredToSocket(packet), let found = try? sockets?.resolve(packet: packet, direction: direction) {
                if let held = heldAnswer(found) { return held }
                if let socket = found.primary {
                    reason = Self.reason(for: socket) ?? reason
                    socketGone = !socket.isAwaitingAccept && Self.reason(for: socket) != nil
                    if found.sockets.count == 1 { socketUID = socket.uid }
                    if socket.isAwaitingAccept, let listener = listenerAnswer(packet, direction, refreshing: true) {
                        return listener
                    }
                }
            }
        } else if case .tcp = packet.transport,
                  // Only the holders known cheaply: a /proc-wide scan (milliseconds) would hold
                  // up every packet behind this one to word a reason.
                  let found = try? sockets?.resolve(packet: packet, direction: direction, refreshing: false),
                  let socket = found.primary {
            reason = Self.reason(for: socket) ?? reason
            socketGone = !socket.isAwaitingAccept && Self.reason(for: socket) != nil
            // A SYN-ACK, or an ACK before accept(): the listener's process will accept it.
            if socket.isAwaitingAccept, let listener = listenerAnswer(packet, direction, refreshing: false) {
                return listener
            }
        }
        if let connection, let known = flowOwners.owner(of: connection, now: now) {
            return OwnerAttribution(confidence: .flow, reason: "the flow's owner; \(reason)",
                                    processes: known.attribution.processes, cgroup: known.attribution.cgroup,
                                    uid: known.uid)
        }
        // A server's connection that is over (TIME_WAIT, orphaned) before its owner was seen:
        // the process holding the listener on its port accepted it. Not for a packet without any
        // socket: a RST to a stray segment on a listening port is the kernel's.
        if socketGone, var listener = listenerAnswer(packet, direction, refreshing: direction == .inbound) {
            listener.confidence = .flow
            listener.reason = "the listener's owner; \(reason)"
            return listener
        }
        if direction == .inbound, let cgroupPath, Self.deliveredToSocket(packet),
           let receivers = receiversInCgroup(cgroupPath, uid: socketUID, reason: reason, now: now) {
            return receivers
        }
        return OwnerAttribution(confidence: .none, reason: reason)
    }

    /// Who received an inbound packet without a uid when neither its socket's holder nor the
    /// connection's owner was found: a lookup that ran after the socket closed (a quick
    /// transfer over before its SYN was read), or during the accept() that made it (the new
    /// fd not in the process's table yet). The packet is classified, so at the input hook the
    /// kernel found its receiving socket in `cgroupPath` (nft's `socket cgroupv2`): the holder
    /// is among the processes there alive at packet time — of the socket's uid when the lookup
    /// found the socket. The rules of a sender whose socket is gone (`candidates`) apply: a
    /// parent loses to its child, one process is `single`, one executable `program`; the
    /// answer's uid is theirs when they share one. nil when nobody was there.
    private func receiversInCgroup(_ cgroupPath: String, uid: UInt32?, reason: String, now: UInt64) -> OwnerAttribution? {
        let backlog = busySince.map { now > $0 ? now - $0 : 0 } ?? 0
        let pool = table.processes(uid: uid, cgroupPath: nil, aliveAt: now, window: window + backlog).filter { entry in
            entry.process.cgroupPath.map { CgroupPath.isSame($0, orBelow: cgroupPath) } ?? false
        }
        let receivers = table.leaves(of: pool)
        guard !receivers.isEmpty else { return nil }
        let uids = Set(receivers.map(\.process.uid))
        return Self.answer(naming: receivers, described: "in \(cgroupPath), where the kernel found its socket (\(reason))",
                           explainSingle: true, uid: uids.count == 1 ? uids.first ?? nil : nil, reference: reference)
    }

    /// The holders of the socket(s) found, as the answer for a packet without a uid: `owner_uid`
    /// is the socket's.
    private func heldAnswer(_ found: SocketResolution) -> OwnerAttribution? {
        guard var held = holders(of: found, uid: nil), let socketUID = found.primary?.uid else { return nil }
        held.uid = socketUID
        return held
    }

    /// The holders of the listener on the local port of TCP `packet`, `exact` with a reason
    /// saying so — the answer for a connection not accepted yet (a request socket, or one in the
    /// accept queue, without a file), which the listener's process will accept. nil without a
    /// listener.
    private func listenerAnswer(_ packet: PacketSummary, _ direction: Direction,
                                refreshing: Bool) -> OwnerAttribution? {
        guard let found = try? sockets?.resolveListener(packet: packet, direction: direction, refreshing: refreshing),
              var held = heldAnswer(found)
        else { return nil }
        held.reason = "the listener's: the connection is not accepted yet"
        return held
    }

    /// Why a socket found for a packet without a uid names no owner: TIME_WAIT, or a socket
    /// without a file or holder (orphaned after close(), not accepted yet). nil for a socket
    /// with holders.
    private static func reason(for socket: ResolvedSocket) -> String? {
        if socket.isTimeWait { return NoOwnerReason.timeWait }
        if socket.inode == 0 || socket.pids.isEmpty {
            return "\(NoOwnerReason.kernelSocketPrefix) (\(socket.stateName))"
        }
        return nil
    }

    /// Whether an inbound packet can be for a local socket by its own kind: every TCP, UDP,
    /// UDP-Lite and raw protocol; of ICMP only an echo reply (a ping or raw socket's).
    static func deliveredToSocket(_ packet: PacketSummary) -> Bool {
        switch packet.transport {
        case .icmp(let info): info.type == 0 && info.echoIdentifier != nil
        case .icmpv6(let info): info.type == 129 && info.echoIdentifier != nil
        case .notFirstFragment: false
        default: true
        }
    }

    /// The processes holding the socket(s) found, when the socket is `uid`'s (nil: any uid):
    /// `exact`, or `candidates` when several sockets match. nil when nobody holds them.
    private func holders(of found: SocketResolution, uid: UInt32?) -> OwnerAttribution? {
        let ours = { (socket: ResolvedSocket) in uid.map { socket.uid == $0 } ?? true }
        var owned = found.sockets.filter { ours($0) && !$0.pids.isEmpty }
        if owned.isEmpty, let socket = found.sockets.first(where: { ours($0) && $0.inode != 0 }),
           let sockets, !rebuiltFor.contains(socket.inode) {
            // The socket exists but the inode → pid index predates it (its rescans are
            // rate-limited): rebuild once for this inode rather than settle for less.
            rebuiltFor.insert(socket.inode)
            if rebuiltFor.count > 4096 { rebuiltFor.removeAll() }
            let pids = sockets.owners.rebuild(finding: socket.inode)
            if !pids.isEmpty { owned = [ResolvedSocket(uid: socket.uid, inode: socket.inode, cgroupID: socket.cgroupID, state: socket.state, pids: pids)] }
        }
        let pids = Array(Set(owned.flatMap(\.pids))).sorted()
        guard !pids.isEmpty else { return nil }
        let processes = Array(pids.prefix(OwnerAttribution.maximumListed).map(reference))
        guard found.sockets.count == 1 else {
            return OwnerAttribution(confidence: .candidates, reason: "\(found.sockets.count) sockets match",
                                    processes: processes)
        }
        return OwnerAttribution(confidence: .exact, processes: processes, cgroup: pids.first.flatMap(cgroup(ofPID:)))
    }

    /// The entry that names the program every one of `entries` runs, or nil when they run more
    /// than one (or nothing tells them apart from that). Same program: every entry whose exe is
    /// known has the same exe, and every entry whose exe is unknown (an exec the table read too
    /// late: exe is then nil, never the parent's) has the comm of one of those — the name the
    /// exec set. When no entry's exe is known, the same comm for all is taken as one program
    /// (exe then unknown). Entries without exe or comm make no program.
    static func sameProgram(_ entries: [ProcessEntry]) -> ProcessEntry? {
        guard let first = entries.first(where: { $0.process.exe != nil }) ?? entries.first else { return nil }
        if let exe = first.process.exe {
            var comms = Set<String>()
            for entry in entries {
                if let other = entry.process.exe {
                    guard other == exe else { return nil }
                    if let comm = entry.process.comm { comms.insert(comm) }
                }
            }
            let unknownMatch = entries.allSatisfy { entry in
                entry.process.exe != nil || entry.process.comm.map(comms.contains) == true
            }
            return unknownMatch ? first : nil
        }
        guard let comm = first.process.comm, entries.allSatisfy({ $0.process.comm == comm }) else { return nil }
        return first
    }

    /// The cgroup all of `entries` are in, when they agree and it is known.
    static func sharedCgroup(of entries: [ProcessEntry]) -> ProcessCgroup? {
        guard let path = entries.first?.process.cgroupPath,
              entries.allSatisfy({ $0.process.cgroupPath == path }) else { return nil }
        return ProcessCgroup(path: path, unit: SystemdUnit.name(forCgroupPath: path), id: nil)
    }

    /// The cgroup of a socket holder: the table's (read at fork, exec and exit), else /proc's.
    private func cgroup(ofPID pid: Int32) -> ProcessCgroup? {
        guard let path = table.process(pid: pid)?.process.cgroupPath ?? procFS.cgroupPath(pid) else { return nil }
        return ProcessCgroup(path: path, unit: SystemdUnit.name(forCgroupPath: path), id: nil)
    }

    /// Drops expired flows (a bounded part of the cache per call) and expired processes;
    /// called from the receive loop's tick.
    public func housekeeping(now: UInt64) {
        table.evictExpired(now: now)
        flows.sweep(now: now)
        flowOwners.evictExpired(now: now)
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
