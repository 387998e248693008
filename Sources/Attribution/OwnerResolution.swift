import NetfilterSystem
import PacketModel
import PacketParsing
import Synchronization

/// Anything that names the process behind a packet.
public protocol PacketAttributing: AnyObject {
    func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?,
                   cgroupPath: String?, now: UInt64) -> OwnerAttribution
    /// Resolves the packet's owner (or finds it cached) like `attribute`, for a caller that
    /// shows nothing (`--format none`): the same work, minus handing out the result; only how
    /// the summary line counts it.
    func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                 now: UInt64) -> AttributionTally
    /// The cached half of `resolve`: how the summary line counts the cached flow `key`, or nil
    /// when the flow must be resolved (call `resolveUncached`). Takes no cgroup path, like
    /// `updateCached`.
    func cachedTally(_ key: FlowKey, now: UInt64) -> AttributionTally?
    /// The other half: resolves the flow `key` (the packet's `FlowKey(packet:direction:uid:)`)
    /// that `cachedTally` did not answer, without asking the cache again.
    func resolveUncached(_ key: FlowKey, packet: PacketSummary, direction: Direction, uid: UInt32?,
                         cgroupPath: String?, now: UInt64) -> AttributionTally
    /// Like `attribute`, for a caller that keeps the answer for the packet before in `current`
    /// (and its `identity`): `current` is replaced only when this packet's answer is another
    /// one, so the steady state of a run copies (and retains) nothing. Returns how the summary
    /// line counts the answer. `key` is the packet's `FlowKey(packet:direction:uid:)`, built once
    /// by the caller (the pipeline hands it on to the sinks).
    func update(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey, packet: PacketSummary,
                direction: Direction, uid: UInt32?, cgroupPath: String?, now: UInt64) -> AttributionTally
    /// The cached half of `update`: when the flow `key` is cached, brings `current` and
    /// `identity` up to its answer and returns how the summary line counts it; nil when the flow
    /// must be resolved (call `update`). Takes no cgroup path: passing one per packet retained
    /// and released it (a pair of atomic operations) when only a new flow reads it.
    func updateCached(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey,
                      now: UInt64) -> AttributionTally?
    /// The packets read from now on were queued at `busySince` (monotonic ns) or later: a packet
    /// whose socket is gone may have been sent that long before it was read, so its sender is
    /// looked for among the processes alive since then (see `OwnerAttributor.busySince`). With
    /// `sentAfter`, they were sent after that moment: a process that exited before it did not
    /// send them (see `OwnerAttributor.sentAfter`).
    func readingDatagram(busySince: UInt64, sentAfter: UInt64?)
    /// Flows whose owner's cgroup (the named process's own) differs from the packet's classified
    /// cgroup: the summary line's `cgroup_corrections`. Read by the receive thread.
    var cgroupCorrections: Int { get }
    /// Programs whose exe was named from their exit record (the exec was read too late): the
    /// summary line's `exe_from_exit_records`. Read by the receive thread.
    var namedFromExitRecords: Int { get }
    /// The owner of a frame a packet socket of `uid` sent on interface `interface` (see
    /// `OwnerAttributor.attributeFrame`).
    func attributeFrame(packet: PacketSummary, uid: UInt32?, interface: UInt32?, now: UInt64) -> OwnerAttribution
    /// The owner of an inbound ICMP error: the sender of the packet it quotes (see
    /// `OwnerAttributor.attributeICMPError`).
    func attributeICMPError(quoted: PacketSummary, now: UInt64) -> OwnerAttribution
}

extension PacketAttributing {
    public func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                        now: UInt64) -> AttributionTally {
        attribute(packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now).tally
    }

    /// Without a cache: every packet goes through `resolve`.
    public func cachedTally(_ key: FlowKey, now: UInt64) -> AttributionTally? { nil }

    public func resolveUncached(_ key: FlowKey, packet: PacketSummary, direction: Direction, uid: UInt32?,
                                cgroupPath: String?, now: UInt64) -> AttributionTally {
        resolve(packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
    }

    public var cgroupCorrections: Int { 0 }

    public var namedFromExitRecords: Int { 0 }

    public func readingDatagram(busySince: UInt64, sentAfter: UInt64?) {}

    /// Without a cache: every packet goes through `update`.
    public func updateCached(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey,
                             now: UInt64) -> AttributionTally? {
        nil
    }

    /// Without a way to find packet sockets: the uid alone.
    public func attributeFrame(packet: PacketSummary, uid: UInt32?, interface: UInt32?, now: UInt64) -> OwnerAttribution {
        OwnerAttribution(confidence: uid == nil ? .none : .uid, reason: "a packet socket's frame")
    }

    /// Without socket lookups: nobody known.
    public func attributeICMPError(quoted: PacketSummary, now: UInt64) -> OwnerAttribution {
        OwnerAttribution(confidence: .none, reason: NoOwnerReason.notDelivered)
    }

    /// Without identities: compares the answer with the one kept.
    public func update(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey, packet: PacketSummary,
                       direction: Direction, uid: UInt32?, cgroupPath: String?, now: UInt64) -> AttributionTally {
        let found = attribute(packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
        if current.map({ !$0.isSame(as: found) }) ?? true { current = found }
        identity = .max
        return found.tally
    }
}

extension OwnerAttributor: PacketAttributing {}

/// Owner resolution for a running monitor: the process table, fed by kernel process events on
/// a thread of its own, and the attributor the receive thread asks.
///
/// Why a thread of its own: a short-lived process's exe and cgroup can be read from /proc only
/// until its parent reaps it, often a millisecond after exit. Reading them on the receive thread
/// lost that race whenever a batch of packets was being processed or formatted. The table sits
/// behind a lock; the receive thread also drains pending events itself before resolving a new
/// flow, so a packet is never attributed before its sender's exec was applied. The /proc reads
/// an event needs are made before that lock is taken (`ProcessTable.readAhead`): a resolution
/// holding it must not delay them.
public final class OwnerResolution: PacketAttributing, @unchecked Sendable {
    private let table: ProcessTable
    private let events: ProcessEventSource
    private let attributor: OwnerAttributor
    /// Guards the table (and the attributor, which reads it).
    private let lock = Mutex(())
    /// Serializes draining the event source (read, read /proc ahead, apply) so batches are
    /// applied in order; taken before `lock`, never while holding it. /proc is read under this
    /// one only: a resolution holding `lock` does not delay the reads, which race the reaping
    /// of short-lived programs.
    private let drainLock = Mutex(())
    private let stop: WakeupEvent?
    private var thread: DedicatedThread?
    /// Run after a batch of events in which a process exited (under `drainLock`).
    private var afterExits: (@Sendable () -> Void)?
    private var lastRescan = WallClock.monotonicNanoseconds()
    /// The table's `namedFromExitRecords`, published after each drain for the receive thread.
    private let exitRecordNames = Atomic<Int>(0)
    private static let rescanInterval: UInt64 = 1_000_000_000
    /// The process-event thread's niceness (the default is 0).
    static let eventThreadNiceness: Int32 = -10

    /// Subscribes to process events. Call it BEFORE entering another network namespace: the
    /// kernel's process connector exists only in the initial one (elsewhere the subscription is
    /// refused), and a socket stays in the namespace it was opened in.
    public static func subscribeToProcessEvents() -> ProcessEventSource {
        ProcessEventSource()
    }

    /// Seeds the table from /proc, opens the socket resolver (in the calling thread's
    /// namespace: sock_diag answers for it) and starts the event thread. Reports once what is
    /// missing (no connector: periodic scans; no sock_diag: no exact matches).
    /// `exitGrace`: how long exited processes stay attributable, in nanoseconds.
    /// `flowLifetime` (nanoseconds) and `maximumFlows`: the flow cache's, see `FlowCache`.
    /// `cgroupMountPoint`: the cgroup2 mount, to find the id of a process's own cgroup (nil: such
    /// ids are reported as unknown).
    public init(events: ProcessEventSource, flushTimeout: UInt32,
                exitGrace: UInt64 = ProcessTable.defaultGracePeriod,
                flowLifetime: UInt64 = FlowCache.defaultLifetime,
                maximumFlows: Int = FlowCache.defaultMaximumFlows,
                cgroupMountPoint: String? = nil,
                report: (String) -> Void) {
        if case .rescan(let reason) = events.mode { report(reason) }
        if let reason = events.exitRecordsUnavailable { report(reason) }
        let table = ProcessTable(gracePeriod: exitGrace)
        table.seed()
        if events.exitRecords != nil { table.indexExecutables() }
        var sockets: SocketResolver?
        do {
            sockets = try SocketResolver()
        } catch {
            report("exact socket lookup unavailable (\(error)); attributing by uid and cgroup only")
        }
        self.table = table
        self.events = events
        attributor = OwnerAttributor(table: table, sockets: sockets, flushTimeoutHundredths: flushTimeout,
                                     flowLifetime: flowLifetime, maximumFlows: maximumFlows,
                                     cgroupID: cgroupMountPoint.map { CgroupIDs.lookup(mountPoint: $0) })
        stop = try? WakeupEvent()
        if let descriptor = events.descriptor, let stop {
            let exitDescriptors = events.exitRecords.map { [$0.descriptor] } ?? []
            thread = try? DedicatedThread(name: "nfowner-procs") { [self] in
                // A one-shot program's exe and comm can be read only until it is reaped, often a
                // millisecond after it exits; a burst of them on a busy machine outruns a reader
                // of ordinary priority (40 senders at once on 2 cores lost some). The thread
                // sleeps until events come and then reads a few /proc files per event. Without
                // CAP_SYS_NICE it stays at the default.
                try? DedicatedThread.setCurrentNiceness(Self.eventThreadNiceness)
                while let ready = try? waitReadable([descriptor, stop.descriptor] + exitDescriptors,
                                                    timeoutMilliseconds: -1),
                      !ready.contains(stop.descriptor) {
                    drainEvents(readingExits: true)
                }
            }
        }
    }

    /// A cached flow is answered without the lock: the flow cache belongs to the receive thread
    /// (the only caller, and the one running `housekeeping`); only the process table is shared
    /// with the event thread, and only resolving a new flow reads it.
    public func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?,
                          cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        let key = FlowKey(packet: packet, direction: direction, uid: uid)
        if let cached = attributor.cached(key, now: now) { return cached }
        return resolveNewFlow(key, packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
    }

    public func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                        now: UInt64) -> AttributionTally {
        let key = FlowKey(packet: packet, direction: direction, uid: uid)
        if let tally = attributor.cachedTally(key, now: now) { return tally }
        return resolveNewFlow(key, packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now).tally
    }

    public func cachedTally(_ key: FlowKey, now: UInt64) -> AttributionTally? {
        attributor.cachedTally(key, now: now)
    }

    public func resolveUncached(_ key: FlowKey, packet: PacketSummary, direction: Direction, uid: UInt32?,
                                cgroupPath: String?, now: UInt64) -> AttributionTally {
        resolveNewFlow(key, packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now).tally
    }

    public func updateCached(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey,
                             now: UInt64) -> AttributionTally? {
        guard let cached = attributor.cachedIdentity(key, now: now) else { return nil }
        // `current == nil` would copy the attribution (three retains and releases per packet).
        var held = true
        if case .none = current { held = false }
        if cached != identity || !held {
            current = attributor.lastAttribution
            identity = cached
        }
        return attributor.lastTally
    }

    public func update(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey, packet: PacketSummary,
                       direction: Direction, uid: UInt32?, cgroupPath: String?, now: UInt64) -> AttributionTally {
        if let tally = updateCached(&current, identity: &identity, key: key, now: now) { return tally }
        let found = resolveNewFlow(key, packet: packet, direction: direction, uid: uid, cgroupPath: cgroupPath, now: now)
        identity = attributor.lastIdentity
        let tally = found.tally
        current = consume found
        return tally
    }

    /// A flow the cache does not hold: resolved under the lock, since it reads the process
    /// table the event thread updates (queued events are applied first: see `init`).
    private func resolveNewFlow(_ key: FlowKey, packet: PacketSummary, direction: Direction, uid: UInt32?,
                                cgroupPath: String?, now: UInt64) -> OwnerAttribution {
        // First the process events still queued, so no packet is attributed before its
        // sender's exec was seen.
        drainEvents()
        return lock.withLock { _ in
            attributor.resolveAndCache(key, packet: packet, direction: direction, uid: uid,
                                       cgroupPath: cgroupPath, now: now)
        }
    }

    /// A frame from a packet socket: resolved under the lock, like a new flow.
    public func attributeFrame(packet: PacketSummary, uid: UInt32?, interface: UInt32?, now: UInt64) -> OwnerAttribution {
        drainEvents()
        return lock.withLock { _ in attributor.attributeFrame(packet: packet, uid: uid, interface: interface, now: now) }
    }

    /// An inbound ICMP error: resolved under the lock, like a new flow.
    public func attributeICMPError(quoted: PacketSummary, now: UInt64) -> OwnerAttribution {
        drainEvents()
        return lock.withLock { _ in attributor.attributeICMPError(quoted: quoted, now: now) }
    }

    /// Runs `body` after each batch of process events in which a process exited — on the event
    /// thread, as soon as the exit is known. The session looks at its urgent sockets then
    /// (`EmptyQueueMark.look`): a packet read from one after a look that found it empty was
    /// sent after the exit, so the process that exited is not its sender.
    public func onProcessExits(_ body: @escaping @Sendable () -> Void) {
        drainLock.withLock { _ in afterExits = body }
    }

    /// Applies the queued process events: reads them and what they need from /proc without the
    /// table's lock, then applies them under it (re-seeding after lost events). From the event
    /// thread, and from the receive thread before it resolves a flow.
    ///
    /// Exit records: the event thread takes them whenever they come (`readingExits`), so their
    /// socket never fills; the receive thread only when an exec of its batch was read too late —
    /// the program had exited, so its record is queued already — and otherwise spares the
    /// system call.
    private func drainEvents(readingExits: Bool = false) {
        drainLock.withLock { _ in
            let batch = events.read()
            let reads = table.readAhead(batch)
            let overrun = events.takeOverrun()
            let exits = readingExits || reads.contains(where: { $0?.missedExecutable == true }) ? events.readExits() : []
            // Most wake-ups of the event thread are exits of threads and of programs already
            // named: nothing to apply, and no reason to hold up a resolution for the lock.
            guard !batch.isEmpty || !exits.isEmpty || overrun else { return }
            let received = exits.isEmpty ? 0 : WallClock.monotonicNanoseconds()
            lock.withLock { _ in
                table.apply(batch, reads: reads)
                table.recordExits(exits, receivedAt: received)
                if overrun { table.seed() }
                exitRecordNames.store(table.namedFromExitRecords, ordering: .relaxed)
            }
            if let afterExits, batch.contains(where: \.isProcessExit) { afterExits() }
        }
    }

    /// Written under the lock by the receive thread, which is also the reader.
    public var cgroupCorrections: Int { attributor.cgroupCorrections }

    public var namedFromExitRecords: Int { exitRecordNames.load(ordering: .relaxed) }

    /// From the receive thread, which alone resolves flows (under the lock, which this needs not).
    public func readingDatagram(busySince: UInt64, sentAfter: UInt64?) {
        attributor.busySince = busySince
        attributor.sentAfter = sentAfter
    }

    /// Periodic work (from the receive loop's tick): expire exited processes and stale flows;
    /// without process events, rescan /proc.
    public func housekeeping() {
        let now = WallClock.monotonicNanoseconds()
        lock.withLock { _ in
            attributor.housekeeping(now: now)
            if events.descriptor == nil, now - lastRescan >= Self.rescanInterval {
                lastRescan = now
                table.rescan()
            }
        }
    }

    /// Stops the event thread.
    public func shutdown() {
        stop?.signal()
        thread?.join()
        thread = nil
    }
}
