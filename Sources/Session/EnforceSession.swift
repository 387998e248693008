import Attribution
import NetfilterSystem
import PacketModel
import PacketSources
import Policy
import Rules

/// What an enforce run needs: the policy, where it came from (for SIGHUP), the queue, and
/// where audit events go.
public struct EnforceOptions: @unchecked Sendable {
    public var policy: Policy
    /// Re-read on SIGHUP; nil: SIGHUP only reports.
    public var reloadPolicy: (() -> PolicyCheck)?
    /// The NFQUEUE queue the rules send packets to (must be free).
    public var queue: UInt16 = 10
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
    private var pipeline: EnforcePipeline?
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
    public var counters: EnforceCounters { pipeline?.snapshot ?? EnforceCounters() }

    @discardableResult
    public func run(onReady: (Ready) throws -> Void = { _ in }) throws(SessionError) -> Outcome {
        let report = options.report
        let processEvents = OwnerResolution.subscribeToProcessEvents()
        if let name = options.namespace {
            do { try NetworkNamespace.enter(named: name) } catch { throw SessionError(error.description) }
        }
        let signals: TerminationSignals?, wakeup: WakeupEvent
        do {
            signals = options.handlesSignals ? try TerminationSignals() : nil
            wakeup = try WakeupEvent()
        } catch {
            throw SessionError("cannot set up signal handling: \(error)")
        }
        let policy = options.policy
        let spec = EnforceOptions.spec(for: policy, queue: options.queue, fastPath: options.fastPath)
        var settings = NfqueueSettings()
        settings.queue = options.queue
        settings.copyRange = 128
        settings.maximumLength = options.maximumQueueLength
        settings.failOpen = spec.failOpen
        settings.socketReceiveBuffer = options.socketReceiveBuffer
        // Bound before the rules exist: a packet is never queued to a queue nobody will read.
        let source: NfqueueSource
        do { source = try NfqueueSource(settings: settings, verdictMarks: spec.marks, verdictBatch: 32) } catch {
            // The source's advice names hold mode's option; enforce's is --queue.
            throw SessionError(error.description.replacing("--hold-queue", with: "--queue"))
        }
        var cgroupMount: CgroupMount?
        do { cgroupMount = try CgroupMount.current() } catch { report("no cgroup2 mount (\(error)): unit and cgroup matchers never match") }
        // Ready before the rules exist: the first queued packet is decided at once.
        let owners = OwnerResolution(events: processEvents, flushTimeout: 1, exitGrace: options.processes.exitGrace,
                                     flowLifetime: options.processes.flowLifetime,
                                     maximumFlows: options.processes.maximumFlows,
                                     cgroupMountPoint: cgroupMount?.mountPoint, report: report)
        let engine = AttributionEngine(cgroups: cgroupMount.flatMap { CgroupNames(mountPoint: $0.mountPoint) },
                                       processes: owners)
        let runner = EnforceRulesRunner()
        var installed = false
        if options.installsRules {
            do { try runner.install(spec) } catch {
                owners.shutdown()
                source.close()
                throw SessionError("cannot install enforce mode's rules: \(error.reason)")
            }
            installed = true
            report("enforcing \(policy.rules.count) rule(s), default \(policy.defaultAction.rawValue), mode \(policy.mode.rawValue), "
                   + "fail \(spec.failOpen ? "open" : "closed")\(policy.mode == .audit && policy.fail == .closed ? " (audit mode never blocks)" : ""): "
                   + "new \(Self.directionsText(spec)) flows go to NFQUEUE queue \(options.queue) via \(runner.backendNote())")
            report(Self.fastPathNote(spec, requested: options.fastPath))
        } else {
            report("enforce with --no-rules: reading NFQUEUE queue \(options.queue); your rules must queue to it and act on "
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

        let pipeline = EnforcePipeline(source: source, engine: engine, policy: policy, audit: options.audit)
        self.pipeline = pipeline
        self.rulesRunner = rulesRunner
        let reloadPolicy = options.reloadPolicy
        let queue = options.queue
        let fastPath = options.fastPath
        let resetFlows = options.resetFlows
        let loop = ReceiveLoop(source: source, consumer: pipeline, signals: signals, wakeup: wakeup,
                               reload: {
                                   if Self.reload(reloadPolicy, pipeline: pipeline, runner: rulesRunner,
                                                  queue: queue, fastPath: fastPath, report: report), resetFlows {
                                       pipeline.requestFlowReset()
                                   }
                               },
                               tick: {
                                   owners.housekeeping()
                                   pipeline.resetFlowsIfRequested(report: report)
                               })
        let started = WallClock.monotonicNanoseconds()
        let ending = loop.runOnReceiveThread(name: "nfowner-enforce") {
            try onReady(Ready(queue: options.queue, backend: rulesRunner == nil ? nil : EnforceRules.backendDescription,
                              stop: { [loop] in loop.requestStop() }))
        }
        let seconds = Double(WallClock.monotonicNanoseconds() - started) / 1e9
        // No packet may be queued once the queue is gone: the rules go first.
        removeRules()
        owners.shutdown()
        source.close()
        _ = pipeline.endDatagram()
        let counters = pipeline.counters
        let line = "held=\(source.counters.received) " + counters.summaryFields
            + " verdict_failures=\(source.verdictFailures) malformed=\(source.counters.malformed)"
            + " enobufs=\(source.counters.enobufs) duration_s=\(String(format: "%.2f", seconds))"
            + " verdict_sends=\(source.verdictSends)"
        try? OutputDescriptor.standardError.write(line + "\n")
        if case .failed(let reason) = ending { throw SessionError(reason) }
        return Outcome(ending: ending, counters: counters, source: source.counters, verdictFailures: source.verdictFailures)
    }

    /// Re-reads the policy as SIGHUP does (see `reload`), for a run that reads the signals itself
    /// (`handlesSignals` false). Any thread; does nothing before the session is ready.
    public func reloadPolicy() {
        guard let pipeline else { return }
        if Self.reload(options.reloadPolicy, pipeline: pipeline, runner: rulesRunner, queue: options.queue,
                       fastPath: options.fastPath, report: options.report), options.resetFlows {
            pipeline.requestFlowReset()
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
    static func reload(_ reloadPolicy: (() -> PolicyCheck)?, pipeline: EnforcePipeline, runner: EnforceRulesRunner?,
                       queue: UInt16, fastPath: Bool, report: (String) -> Void) -> Bool {
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
        let oldSpec = EnforceOptions.spec(for: old, queue: queue, fastPath: fastPath)
        let newSpec = EnforceOptions.spec(for: new, queue: queue, fastPath: fastPath)
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
        pipeline.replacePolicy(new)
        report("SIGHUP: policy reloaded: \(new.rules.count) rule(s), default \(new.defaultAction.rawValue), mode \(new.mode.rawValue)")
        return true
    }
}
