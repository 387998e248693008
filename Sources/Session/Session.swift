import Attribution
import NetfilterSystem
import PacketModel
import PacketSources
import Rules
import Setup
import Sinks

/// One run of nfowner's pipeline — the plan's rules, an NFLOG source, the attribution engine,
/// the sinks — with its threads and signals: SIGINT/SIGTERM stop it, SIGHUP calls the reload
/// hook. `monitor` and `trace` (and the daemon to come) are each a `SessionOptions` and a call
/// to `run`.
///
/// `run` blocks until the run ends; everything it set up is torn down before it returns, rules
/// included unless kept. `counters` may be read from any thread meanwhile.
public final class Session: @unchecked Sendable {
    public let options: SessionOptions
    private var pipeline: PacketPipeline?
    private var loop: ReceiveLoop?

    public init(_ options: SessionOptions) {
        self.options = options
    }

    /// How the run ended, and what it counted.
    public struct Outcome: Sendable {
        public var ending: ReceiveLoop.Ending
        public var counters: SessionCounters
        public var durationSeconds: Double
        /// The NFLOG groups read.
        public var groups: [UInt16]
    }

    /// What `onReady` is given once every part is listening.
    public struct Ready: Sendable {
        /// The NFLOG groups bound (the first free one, when a range was searched).
        public var groups: [UInt16]
        /// The group each flow's first packet arrives on, read on a socket of its own (nil: none).
        public var newFlowGroup: UInt16? = nil
        /// Hold mode's NFQUEUE queue and how its rules queue (nil: hold mode is off).
        public var holdQueue: UInt16? = nil
        public var holdBackend: HoldBackend? = nil
        /// Whether a cgroup follower keeps the ruleset's cgroup maps current.
        public var followsCgroups: Bool
        /// Stops the run from any thread (as a signal would, without one).
        public var stop: @Sendable () -> Void
    }

    /// The counters so far (any thread); zero before the source is open.
    public var counters: SessionCounters { pipeline?.snapshot ?? SessionCounters() }

    /// Runs until a stop signal, the event limit, a closed output or `Ready.stop`, then tears
    /// down and writes the summary line to stderr. Throws `SessionError` when the run could not
    /// start or failed (the summary line is written all the same once packets were read).
    @discardableResult
    ///
    /// `onReady` runs on the calling thread once every part listens (a trace starts its command
    /// there); `beforeSummary` once the loop has ended, before the summary line is written.
    public func run(onReady: (Ready) throws -> Void = { _ in },
                    beforeSummary: (ReceiveLoop.Ending) -> Void = { _ in }) throws(SessionError) -> Outcome {
        var plan = options.plan
        let report = options.report
        plan.notes.forEach(report)
        // Before entering a namespace: the process connector exists only in the initial one.
        let processEvents = options.processes.map { _ in OwnerResolution.subscribeToProcessEvents() }
        if let name = options.namespace {
            // The whole run happens inside the namespace: the sockets, the nft child processes,
            // and the threads all inherit it from this thread.
            do { try NetworkNamespace.enter(named: name) } catch { throw SessionError(error.description) }
        }
        let signals: TerminationSignals, wakeup: WakeupEvent, followerWakeup: WakeupEvent
        do {
            signals = try TerminationSignals()
            wakeup = try WakeupEvent()
            followerWakeup = try WakeupEvent()
        } catch {
            throw SessionError("cannot set up signal handling: \(error)")
        }

        let log = try openSource(&plan)
        let source: any PacketSource
        if let queueSettings = plan.queue {
            do {
                source = HoldingSource(log: log, queue: try NfqueueSource(settings: queueSettings))
            } catch {
                log.close()
                throw SessionError(error.description)
            }
        } else {
            source = log
        }
        var spec = plan.spec
        spec.group = plan.nflog.groups.first ?? spec.group
        if spec.newFlowGroup != nil { spec.newFlowGroup = plan.nflog.newFlowGroup }
        let rules = RulesLifecycle(spec: spec, policy: options.rules,
                                   wantsFollow: plan.follow && plan.cgroupMount != nil, report: report)
        do { try rules.start() } catch {
            source.close()
            throw error
        }
        defer { rules.finish() }
        let hold: HoldRulesLifecycle?
        do {
            hold = try plan.hold.map { spec throws(SessionError) in
                try HoldRulesLifecycle(spec: spec, installs: options.rules != .none, report: report)
            }
        } catch {
            source.close()
            throw error
        }
        defer { hold?.finish() }

        let follower = Self.follower(of: rules, plan: plan, wakeup: followerWakeup, report: report)

        for sink in options.sinks {
            do throws(SinkError) { try sink.start() } catch { report("\(error)") }
        }
        var owners: OwnerResolution?
        if let processEvents, let settings = options.processes {
            owners = OwnerResolution(events: processEvents, flushTimeout: plan.nflog.flushTimeout,
                                     exitGrace: settings.exitGrace, flowLifetime: settings.flowLifetime,
                                     maximumFlows: settings.maximumFlows,
                                     cgroupMountPoint: plan.cgroupMount?.mountPoint, report: report)
        }
        let engine = AttributionEngine(cgroups: plan.cgroupMount.flatMap { CgroupNames(mountPoint: $0.mountPoint) },
                                       processes: owners)
        let pipeline = PacketPipeline(source: source, engine: engine, sinks: options.sinks,
                                      eventLimit: options.eventLimit,
                                      countsLinkFrames: !spec.packetSocketInterfaces.isEmpty)
        // The kernel takes a device chain for a name no interface has (it attaches when one
        // appears), so a typo would log nothing without a word.
        for name in spec.packetSocketInterfaces where InterfaceIndex.index(of: name) == nil {
            report("packet sockets: no interface \(name) in this network namespace (yet); its frames are logged once it exists")
        }
        let reloadHook = options.reload
        let loop = ReceiveLoop(source: source, consumer: pipeline, signals: signals, wakeup: wakeup,
                               reload: { [pipeline] in
                                   pipeline.forgetNames()
                                   reloadHook?()
                               },
                               tick: { [sinks = options.sinks] in
                                   owners?.housekeeping()
                                   for sink in sinks { sink.tick() }
                               })
        self.pipeline = pipeline
        self.loop = loop
        // A one-shot program's packet, read from an urgent socket, is known to be sent after the
        // exits of the programs before it once the socket was seen empty after those exits.
        let marks = loop.sendTimeQueueMarks
        if !marks.isEmpty { owners?.onProcessExits { for mark in marks { mark.look() } } }

        let followThread = follower.flatMap { follower in try? DedicatedThread(name: "nfowner-follow") { follower.run() } }
        let started = WallClock.monotonicNanoseconds()
        let ending = loop.runOnReceiveThread(name: "nfowner-recv") {
            try onReady(Ready(groups: plan.nflog.groups, newFlowGroup: source.urgentOrigin,
                              holdQueue: plan.hold?.queue, holdBackend: hold?.backend,
                              followsCgroups: follower != nil, stop: { [loop] in loop.requestStop() }))
        }
        let seconds = Double(WallClock.monotonicNanoseconds() - started) / 1e9
        follower?.requestStop()
        followThread?.join()
        // No packet may be queued once the queue is gone: its rules go first.
        hold?.finish()
        owners?.shutdown()
        source.close()
        options.sinks.forEach { $0.finish() }
        beforeSummary(ending)

        var counters = SessionCounters(source: source.counters, pipeline: pipeline.counters,
                                       follower: follower?.counters)
        if follower == nil { counters.follower = nil }
        let outcome = Outcome(ending: ending, counters: counters, durationSeconds: seconds,
                              groups: plan.nflog.groups)
        let line = counters.summaryLine(durationSeconds: options.summaryHasDuration ? seconds : nil,
                                        groups: plan.nflog.groups, suffix: options.summarySuffix())
        try? OutputDescriptor.standardError.write(line + "\n")
        if case .failed(let reason) = ending { throw SessionError(reason) }
        return outcome
    }

    /// A follower that keeps the table's cgroup maps current, when the rules ask for one.
    static func follower(of rules: RulesLifecycle, plan: Plan, wakeup: WakeupEvent,
                         report: @escaping (String) -> Void) -> CgroupFollower? {
        guard let followSpec = rules.followSpec, let mount = plan.cgroupMount else { return nil }
        do {
            let levels = Set(followSpec.cgroupLevels)
            let watcher = try CgroupWatcher(mountPoint: mount.mountPoint,
                                            maxLevel: max(followSpec.cgroupLevels.max() ?? 1, 1))
            return CgroupFollower(
                watcher: watcher, runner: rules.runner, spec: followSpec,
                classifies: { [plan] in levels.contains($0.level) && plan.classifies($0) },
                classifier: { Planner.classifier(for: $0, mount: mount) },
                wakeup: wakeup, report: report)
        } catch {
            report("not following cgroups: \(error)")
            return nil
        }
    }

    /// The receive thread's niceness (the process event thread's too: see `OwnerResolution`).
    static let receiveThreadNiceness: Int32 = -10

    /// Binds the plan's group, or with `groupSearch` > 1 the first free one from it; on a bind
    /// refused because the group is taken, says who holds it.
    private func openSource(_ plan: inout Plan) throws(SessionError) -> NflogSource {
        var settings = plan.nflog
        let first = settings.groups.first ?? 5
        var lastError: SourceError?
        // With a new-flow group, groups are taken in pairs (bulk, then new flows).
        let step: UInt16 = settings.newFlowGroup == nil ? 1 : 2
        for offset in 0..<max(1, options.groupSearch) {
            if options.groupSearch > 1 {
                settings.groups = [first &+ UInt16(offset) &* step]
                if settings.newFlowGroup != nil { settings.newFlowGroup = first &+ UInt16(offset) &* step &+ 1 }
            }
            do {
                let source = try NflogSource(settings: settings)
                plan.nflog = settings
                return source
            } catch {
                lastError = error
                guard case .bind(let group, let errno, _) = error, errno == Errno.permissionDenied else { break }
                if group == settings.newFlowGroup, options.groupSearch <= 1 {
                    let holders = ((try? NftRunner().nflogListener(group: group).processes) ?? []).map(\.description)
                    let who = holders.isEmpty ? "" : " (" + holders.joined(separator: ", ") + ")"
                    throw SessionError("cannot bind NFLOG group \(group) for new flows: another process already holds "
                                       + "it\(who); set nflog.new_flow_group to a free group, or --new-flow-seconds 0 "
                                       + "to batch new flows with the rest")
                }
            }
        }
        if case .bind(let group, let errno, _)? = lastError, errno == Errno.permissionDenied, ProcessIdentity.isRoot {
            let holders = ((try? NftRunner().nflogListener(group: group).processes) ?? []).map(\.description)
            throw SessionError(SourceError.bind(group: group, errno: errno, holders: holders).description)
        }
        throw SessionError(lastError?.description ?? "cannot bind an NFLOG group")
    }
}

/// What a session runs: the plan, what to do with rules, the sinks, and the knobs of owner
/// resolution.
public struct SessionOptions: @unchecked Sendable {
    public var plan: Plan
    public var rules: RulesPolicy
    public var sinks: [any PacketSink]
    /// Resolve packets to processes (nil: uid, gid and cgroup only).
    public var processes: ProcessResolutionSettings?
    /// Stop after this many packets (nil: no limit).
    public var eventLimit: UInt64?
    /// Run inside /run/netns/<name>.
    public var namespace: String?
    /// Bind the plan's group, or the first free one of this many from it (a trace may share
    /// the host with a monitor and other traces).
    public var groupSearch = 1
    /// Notes for the person running it (stderr, one line each).
    public var report: (String) -> Void
    /// Called on SIGHUP, on a thread of its own, after cached names were dropped.
    public var reload: (() -> Void)?
    /// Whether the summary line carries `duration_s`.
    public var summaryHasDuration = true
    /// Appended to the summary line (e.g. `" exit_status=0"`).
    public var summarySuffix: () -> String = { "" }

    public init(plan: Plan, rules: RulesPolicy, sinks: [any PacketSink], processes: ProcessResolutionSettings?,
                report: @escaping (String) -> Void) {
        self.plan = plan
        self.rules = rules
        self.sinks = sinks
        self.processes = processes
        self.report = report
    }
}

/// The knobs of owner resolution (see `OwnerResolution` and `FlowCache`).
public struct ProcessResolutionSettings: Sendable {
    /// How long exited processes stay attributable, in nanoseconds.
    public var exitGrace: UInt64 = ProcessTable.defaultGracePeriod
    /// How long a flow's owner is remembered, in nanoseconds.
    public var flowLifetime: UInt64 = FlowCache.defaultLifetime
    /// The most flows remembered at once.
    public var maximumFlows: Int = FlowCache.defaultMaximumFlows

    public init(exitGrace: UInt64 = ProcessTable.defaultGracePeriod, flowLifetime: UInt64 = FlowCache.defaultLifetime,
                maximumFlows: Int = FlowCache.defaultMaximumFlows) {
        self.exitGrace = exitGrace
        self.flowLifetime = flowLifetime
        self.maximumFlows = maximumFlows
    }
}

/// Why a session could not start or failed, phrased for the person running it.
public struct SessionError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
