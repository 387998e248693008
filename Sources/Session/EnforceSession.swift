import Attribution
import NetfilterSystem
import PacketModel
import PacketSources
import Policy
import Rules
import Synchronization

/// What an enforce run needs: the policy, where it came from (for SIGHUP), the queue, and
/// where audit events go.
public struct EnforceOptions: @unchecked Sendable {
    public var policy: Policy
    /// Re-read on SIGHUP; nil: SIGHUP only reports.
    public var reloadPolicy: (() -> PolicyCheck)?
    /// The NFQUEUE queue the rules send packets to (must be free).
    public var queue: UInt16 = 10
    /// Queues `queue` … `queue + queueCount - 1`, new flows spread over them by CPU, each read
    /// and decided by a thread of its own (with an owner table of its own). Default 1.
    public var queueCount: UInt16 = 1
    /// Packets held at once before the queue counts as full (then `fail` decides).
    public var maximumQueueLength: UInt32 = 4096
    /// The queue socket's receive buffer, in bytes.
    public var socketReceiveBuffer = 4 << 20
    /// Install the rules (false: the user's own rules queue to `queue` with the marks of
    /// `VerdictMarks`).
    public var installsRules = true
    /// Leave the rules in place on exit: with fail = closed, traffic stays blocked until the
    /// next run (the kill -9 behaviour, chosen).
    public var keepsRules = false
    /// Where audit events go (JSON Lines); nil: none are written.
    public var audit: OutputDescriptor? = .standardOutput
    /// Run inside /run/netns/<name>.
    public var namespace: String?
    public var processes = ProcessResolutionSettings()
    public var report: (String) -> Void

    public init(policy: Policy, report: @escaping (String) -> Void) {
        self.policy = policy
        self.report = report
    }

    /// Compile what the kernel can decide alone into the rules (see `EnforceFastPath`).
    public var fastPath = true
    /// After a reload, delete the conntrack entries of established flows the new policy denies
    /// (see `FlowReset`).
    public var resetFlows = false
    /// Stop on SIGINT/SIGTERM and reload on SIGHUP by itself. False inside another run (the
    /// daemon), which reads the signals and calls `Ready.stop` and `reloadPolicy()`: two readers
    /// of one signal would each miss some.
    public var handlesSignals = true

    /// The rules' spec for `policy`: audit mode always fails open (it must never block); with
    /// `fastPath`, the decision chain holds the compiled policy where `EnforceFastPath` applies.
    public static func spec(for policy: Policy, queue: UInt16, fastPath: Bool = true) -> EnforceSpec {
        var spec = EnforceSpec(queue: queue, failOpen: policy.fail == .open || policy.mode == .audit,
                               output: policy.directions.contains(.outbound), input: policy.directions.contains(.inbound))
        if fastPath { spec.decisions = EnforceFastPath.compile(policy) }
        return spec
    }
}

/// One enforce run (`nfowner enforce`): binds the queue, installs enforce mode's rules, decides
/// every queued packet by the policy until SIGINT/SIGTERM (SIGHUP re-reads the policy), then
/// removes the rules — before unbinding, so nothing is queued to nobody — and writes a summary
/// line to stderr.
public final class EnforceSession: @unchecked Sendable {
    public let options: EnforceOptions
    /// One per queue (see `EnforceOptions.queueCount`); set once, before the first packet.
    private nonisolated(unsafe) var pipelines: [EnforcePipeline] = []
    private var rulesRunner: EnforceRulesRunner?

    public init(_ options: EnforceOptions) {
        self.options = options
    }

    public struct Ready: Sendable {
        public var queue: UInt16
        /// How packets are queued (nil when this run installed no rules).
        public var backend: String?
        public var stop: @Sendable () -> Void
    }

    public struct Outcome: Sendable {
        public var ending: ReceiveLoop.Ending
        public var counters: EnforceCounters
        public var source: SourceCounters
        public var verdictFailures: UInt64
    }

    /// The counters so far (any thread).
    public var counters: EnforceCounters { EnforceCounters.total(pipelines.map(\.snapshot)) }

    @discardableResult
    public func run(onReady: (Ready) throws -> Void = { _ in }) throws(SessionError) -> Outcome {
        let report = options.report
        let queues = (0..<Int(max(1, options.queueCount))).map { options.queue &+ UInt16($0) }
        // Before entering a namespace: the process connector exists only in the initial one.
        // One subscription per queue: each queue's reader resolves owners with a table of its own.
        let processEvents = queues.map { _ in OwnerResolution.subscribeToProcessEvents() }
        if let name = options.namespace {
            do { try NetworkNamespace.enter(named: name) } catch { throw SessionError(error.description) }
        }
        let signals: TerminationSignals?, wakeups: [WakeupEvent]
        do {
            signals = options.handlesSignals ? try TerminationSignals() : nil
            wakeups = try queues.map { _ throws(SystemError) in try WakeupEvent() }
        } catch {
            throw SessionError("cannot set up signal handling: \(error)")
        }
        let policy = options.policy
        var spec = EnforceOptions.spec(for: policy, queue: options.queue, fastPath: options.fastPath)
        spec.queueCount = UInt16(queues.count)
        var settings = NfqueueSettings()
        settings.copyRange = 128
        settings.maximumLength = options.maximumQueueLength
        settings.failOpen = spec.failOpen
        settings.socketReceiveBuffer = options.socketReceiveBuffer
        // Bound before the rules exist: a packet is never queued to a queue nobody will read.
        var sources: [NfqueueSource] = []
        for queue in queues {
            settings.queue = queue
            do { sources.append(try NfqueueSource(settings: settings, verdictMarks: spec.marks, verdictBatch: 32)) } catch {
                sources.forEach { $0.close() }
                // The source's advice names hold mode's option; enforce's is --queue.
                throw SessionError(error.description.replacing("--hold-queue", with: "--queue"))
            }
        }
        var cgroupMount: CgroupMount?
        do { cgroupMount = try CgroupMount.current() } catch { report("no cgroup2 mount (\(error)): unit and cgroup matchers never match") }
        // Ready before the rules exist: the first queued packet is decided at once.
        let owners = processEvents.map { events in
            OwnerResolution(events: events, flushTimeout: 1, exitGrace: options.processes.exitGrace,
                            flowLifetime: options.processes.flowLifetime, maximumFlows: options.processes.maximumFlows,
                            cgroupMountPoint: cgroupMount?.mountPoint, report: report)
        }
        func releaseAll() {
            owners.forEach { $0.shutdown() }
            sources.forEach { $0.close() }
        }
        let runner = EnforceRulesRunner()
        var installed = false
        let queueText = queues.count == 1 ? "NFQUEUE queue \(options.queue)"
            : "NFQUEUE queues \(queues[0])-\(queues[queues.count - 1]) (spread by CPU, one reader each)"
        if options.installsRules {
            do { try runner.install(spec) } catch {
                releaseAll()
                throw SessionError("cannot install enforce mode's rules: \(error.reason)")
            }
            installed = true
            report("enforcing \(policy.rules.count) rule(s), default \(policy.defaultAction.rawValue), mode \(policy.mode.rawValue), "
                   + "fail \(spec.failOpen ? "open" : "closed")\(policy.mode == .audit && policy.fail == .closed ? " (audit mode never blocks)" : ""): "
                   + "new \(Self.directionsText(spec)) flows go to \(queueText) via \(runner.backendNote())")
            report(Self.fastPathNote(spec, requested: options.fastPath))
        } else {
            report("enforce with --no-rules: reading \(queueText); your rules must queue to it and act on "
                   + "the verdict marks (see docs/enforce.md)")
        }
        let rulesRunner = installed ? runner : nil
        let keepsRules = options.keepsRules
        func removeRules() {
            guard let rulesRunner, !keepsRules else { return }
            do throws(RulesError) { try rulesRunner.remove() } catch {
                report("could not remove enforce mode's rules: \(error.reason); remove them with `nfowner rules remove`")
            }
        }

        let pipelines = owners.indices.map { index in
            EnforcePipeline(source: sources[index], engine: AttributionEngine(
                cgroups: cgroupMount.flatMap { CgroupNames(mountPoint: $0.mountPoint) }, processes: owners[index]),
                policy: policy, audit: options.audit)
        }
        self.pipelines = pipelines
        self.rulesRunner = rulesRunner
        // The first queue's loop reads the signals (SIGHUP: `reloadPolicy()`, every queue's policy)
        // and runs the flow reset; each loop runs its own owners' housekeeping.
        let loops = pipelines.indices.map { index in
            ReceiveLoop(source: sources[index], consumer: pipelines[index], signals: index == 0 ? signals : nil,
                        wakeup: wakeups[index],
                        reload: index != 0 ? nil : { [self] in reloadPolicy() },
                        tick: {
                            owners[index].housekeeping()
                            if index == 0 { pipelines[0].resetFlowsIfRequested(report: report) }
                        },
                        marksSendTimes: Self.namesSenders(policy))
        }
        // A held packet read after its queue was seen empty was sent after that moment: a program
        // that exited before it is not its sender (one-shot UDP senders whose socket is gone).
        for (index, loop) in loops.enumerated() where index < owners.count {
            let marks = loop.sendTimeQueueMarks
            if !marks.isEmpty { owners[index].onProcessExits { for mark in marks { mark.look() } } }
        }
        let stopAll: @Sendable () -> Void = { loops.forEach { $0.requestStop() } }
        // The other queues' loops on threads of their own; one that ends stops them all.
        let otherEndings = Mutex<[ReceiveLoop.Ending]>([])
        var others: [DedicatedThread] = []
        for index in loops.indices.dropFirst() {
            do {
                others.append(try DedicatedThread(name: "nfowner-enforce\(index)") {
                    try? DedicatedThread.setCurrentNiceness(Session.receiveThreadNiceness)
                    let ending = loops[index].run()
                    otherEndings.withLock { $0.append(ending) }
                    stopAll()
                })
            } catch {
                stopAll()
                others.forEach { $0.join() }
                removeRules()
                releaseAll()
                throw SessionError("cannot start the reader of NFQUEUE queue \(queues[index]): \(error)")
            }
        }
        let started = WallClock.monotonicNanoseconds()
        var ending = loops[0].runOnReceiveThread(name: "nfowner-enforce") {
            try onReady(Ready(queue: options.queue, backend: rulesRunner == nil ? nil : EnforceRules.backendDescription,
                              stop: stopAll))
        }
        stopAll()
        others.forEach { $0.join() }
        if case .failed = ending {} else if let failed = otherEndings.withLock({ $0.first { if case .failed = $0 { true } else { false } } }) {
            ending = failed
        }
        let seconds = Double(WallClock.monotonicNanoseconds() - started) / 1e9
        // No packet may be queued once the queue is gone: the rules go first.
        removeRules()
        owners.forEach { $0.shutdown() }
        sources.forEach { $0.close() }
        for pipeline in pipelines { _ = pipeline.endDatagram() }
        let counters = EnforceCounters.total(pipelines.map(\.counters))
        let total = { (value: (NfqueueSource) -> UInt64) in sources.reduce(UInt64(0)) { $0 + value($1) } }
        let held = total { $0.counters.received }
        let line = "held=\(held) " + counters.summaryFields
            + " verdict_failures=\(total { $0.verdictFailures }) malformed=\(total { $0.counters.malformed })"
            + " enobufs=\(total { $0.counters.enobufs }) duration_s=\(String(format: "%.2f", seconds))"
            + " verdict_sends=\(total { $0.verdictSends })"
            + " held_per_queue=\(sources.map { String($0.counters.received) }.joined(separator: ","))"
        try? OutputDescriptor.standardError.write(line + "\n")
        if case .failed(let reason) = ending { throw SessionError(reason) }
        var source = SourceCounters()
        source.received = held
        source.malformed = total { $0.counters.malformed }
        source.enobufs = total { $0.counters.enobufs }
        return Outcome(ending: ending, counters: counters, source: source, verdictFailures: total { $0.verdictFailures })
    }

    /// Re-reads the policy as SIGHUP does (see `reload`), for a run that reads the signals itself
    /// (`handlesSignals` false). Any thread; does nothing before the session is ready.
    public func reloadPolicy() {
        guard let first = pipelines.first else { return }
        if Self.reload(options.reloadPolicy, pipelines: pipelines, runner: rulesRunner, queue: options.queue,
                       queueCount: UInt16(pipelines.count), fastPath: options.fastPath, report: options.report),
           options.resetFlows {
            first.requestFlowReset()
        }
    }

    /// What the kernel decides alone, for the start-up note.
    static func fastPathNote(_ spec: EnforceSpec, requested: Bool) -> String {
        guard let decisions = spec.decisions?[.ipv4] else {
            return requested ? "kernel fast path off (it needs fail = \"closed\", mode = \"enforce\" and directions = [\"out\"]): "
                + "nfowner decides every new flow" : "kernel fast path off (--no-fast-path): nfowner decides every new flow"
        }
        let queued = decisions.filter { $0.target == .queue }.count
        return "kernel fast path: \(decisions.count - queued) of \(decisions.count) IPv4 decision rules are the kernel's alone; "
            + (queued == 0 ? "no flow reaches nfowner" : "\(queued) queue to nfowner (exe, comm, unit, cgroup, names or log)")
    }

    /// Whether the policy ever names a held packet's process: rules that read it, audit events
    /// (audit mode, or rules that log), which carry the owner. Only then do the queue's
    /// datagrams carry the moment they were sent after (`ReceiveLoop.marksSendTimes`). A reload
    /// to a policy that needs it keeps going without: its one-shot senders are named less often.
    static func namesSenders(_ policy: Policy) -> Bool {
        policy.needs.process || policy.mode == .audit || policy.logDefault || policy.rules.contains { $0.log }
    }

    static func directionsText(_ spec: EnforceSpec) -> String {
        switch (spec.output, spec.input) {
        case (true, true): "outbound and inbound"
        case (false, true): "inbound"
        default: "outbound"
        }
    }

    /// SIGHUP: re-reads the policy; a file with errors is refused and the old policy kept. A new
    /// `directions` re-installs the rules (one transaction); a new `fail` needs a restart (the
    /// queue's flags are set when it is bound).
    /// Returns whether the new policy is in force.
    @discardableResult
    static func reload(_ reloadPolicy: (() -> PolicyCheck)?, pipelines: [EnforcePipeline], runner: EnforceRulesRunner?,
                       queue: UInt16, queueCount: UInt16, fastPath: Bool, report: (String) -> Void) -> Bool {
        guard let pipeline = pipelines.first else { return false }
        guard let reloadPolicy else {
            report("SIGHUP: no policy file to re-read")
            return false
        }
        let check = reloadPolicy()
        guard let new = check.policy, check.errors.isEmpty else {
            report("SIGHUP: the policy file has errors; keeping the policy in force:")
            check.errors.forEach { report("  \($0)") }
            return false
        }
        check.warnings.forEach { report("\($0)") }
        let old = pipeline.currentPolicy
        var oldSpec = EnforceOptions.spec(for: old, queue: queue, fastPath: fastPath)
        var newSpec = EnforceOptions.spec(for: new, queue: queue, fastPath: fastPath)
        oldSpec.queueCount = queueCount
        newSpec.queueCount = queueCount
        if oldSpec.failOpen != newSpec.failOpen {
            report("SIGHUP: the new policy changes fail (or audit mode's fail-open); restart nfowner to change it; "
                   + "keeping the policy in force")
            return false
        }
        if oldSpec != newSpec, let runner {
            do { try runner.install(newSpec) } catch {
                report("SIGHUP: cannot change the rules (\(error.reason)); keeping the policy in force")
                return false
            }
        }
        for each in pipelines { each.replacePolicy(new) }
        report("SIGHUP: policy reloaded: \(new.rules.count) rule(s), default \(new.defaultAction.rawValue), mode \(new.mode.rawValue)")
        return true
    }
}
