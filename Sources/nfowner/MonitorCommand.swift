import ArgumentParser
import Configuration
import Export
import Monitor
import NetfilterSystem
import ProcessResolution
import Rules
import Setup

struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Show every packet this host sends, with the user and group that own it.",
        discussion: """
            Reads packets from NFLOG and prints one line (or JSON object) per packet. Unless \
            --no-rules is given, nfowner installs its own nftables table (`table inet nfowner`, \
            logging the OUTPUT hook) for the run when none is installed, and removes it on exit; \
            other tables are never touched. Stop with Ctrl-C: a summary line goes to stderr, e.g.
              received=120 lost=0 enobufs=0 parse_errors=0 emitted=120 ...

            With cgroup discovery on (the default; see `nfowner config show`), each packet also \
            names its cgroup and systemd unit, and cgroups created while the monitor runs are \
            added to the ruleset within a second (--no-cgroups turns this off).

            Examples:
              sudo nfowner monitor                       # everything, as a table
              sudo nfowner monitor --user alice          # only alice's packets
              sudo nfowner monitor --format json --count 100 > packets.jsonl
              sudo nfowner monitor --netns test1         # inside `ip netns add test1`
            """)

    @Option(help: "Output: text (aligned columns), json (JSON Lines, see docs/json-schema.md), none (count only).")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("Exit after this many packets.", valueName: "n"))
    var count: UInt64?

    @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions

    @Flag(name: .customLong("keep-rules"), help: "Leave the ruleset this run installs in place on exit.")
    var keepRules = false

    @Flag(name: .customLong("no-rules"), help: "Do not install rules: read a group an existing ruleset logs to.")
    var noRules = false

    @Option(name: .customLong("flush-timeout"), help: ArgumentHelp(
        "Longest the kernel holds a partial batch, in 1/100 s (lower: livelier output; higher: fewer wakeups). Default: 10.",
        valueName: "hundredths"))
    var flushTimeout: UInt32?

    @Option(name: .customLong("receive-buffer"), help: ArgumentHelp(
        "Socket receive buffer in bytes (SO_RCVBUFFORCE): room for bursts; raise it if `enobufs` is non-zero.",
        valueName: "bytes"))
    var receiveBuffer: Int?

    @Option(name: .customLong("coalesce-us"), help: ArgumentHelp(
        "Under load, read at most once per this many microseconds, taking every batch queued meanwhile (fewer wakeups: about half the CPU per packet at high rates, for at most this much more delay); 0 wakes for each batch. Default: 2000.",
        valueName: "microseconds"))
    var coalesceMicroseconds: UInt32?

    @Flag(name: .customLong("no-processes"), help: "Do not resolve packets to processes (pid/comm/exe); uid, gid and cgroup only.")
    var noProcesses = false

    @Option(name: .customLong("exit-grace"), help: ArgumentHelp(
        "How long exited processes stay attributable, in seconds (packets reach nfowner after their sender may have exited). Default: 30.",
        valueName: "seconds"))
    var exitGrace: UInt32 = 30

    @OptionGroup var flowCache: FlowCacheOptions

    @OptionGroup var namespace: NamespaceOption

    func validate() throws {
        if keepRules && noRules { throw ValidationError("--keep-rules and --no-rules contradict each other: pick one") }
        if count == 0 { throw ValidationError("--count must be at least 1") }
        if let receiveBuffer, receiveBuffer < 65536 {
            throw ValidationError("--receive-buffer below 65536 bytes would lose batches")
        }
        if flushTimeout == 0 { throw ValidationError("--flush-timeout must be at least 1 (1/100 s)") }
        let coalesceRange = NfownerConfig.Nflog.coalesceMicrosecondsRange
        if let coalesceMicroseconds, !coalesceRange.contains(coalesceMicroseconds) {
            throw ValidationError("--coalesce-us must be \(coalesceRange.lowerBound) to \(coalesceRange.upperBound) (0.1 s)")
        }
        if exitGrace == 0 || exitGrace > 3600 { throw ValidationError("--exit-grace must be 1 to 3600 seconds") }
    }

    func run() throws {
        var plan = try ruleset.plan(follow: !noRules)
        plan.nflog.flushTimeout = flushTimeout ?? plan.nflog.flushTimeout
        plan.nflog.socketReceiveBuffer = receiveBuffer ?? plan.nflog.socketReceiveBuffer
        plan.nflog.coalesceMicroseconds = coalesceMicroseconds ?? plan.nflog.coalesceMicroseconds
        let spec = plan.spec
        plan.notes.forEach(note)
        let processEvents = noProcesses ? nil : OwnerResolution.subscribeToProcessEvents()
        if let name = namespace.name {
            // The whole pipeline runs inside the namespace: the socket, the nft child processes,
            // and the threads all inherit it from this (main) thread.
            do { try NetworkNamespace.enter(named: name) } catch { throw UserFacingError(error.description) }
        }
        let signals: TerminationSignals
        let wakeup: WakeupEvent
        let followerWakeup: WakeupEvent
        do {
            signals = try TerminationSignals()
            wakeup = try WakeupEvent()
            followerWakeup = try WakeupEvent()
        } catch {
            throw UserFacingError("cannot set up signal handling: \(error)")
        }

        let subscription: NflogSubscription
        do {
            subscription = try NflogSubscription(settings: plan.nflog)
        } catch {
            throw UserFacingError(error.description)
        }

        let runner = NftRunner()
        var installedByUs = false
        if !noRules {
            do {
                if try runner.listTable(name: spec.tableName) == nil {
                    let vanished = try runner.installSkippingVanished(spec)
                    for cgroup in vanished { note("cgroup \(cgroup.hierarchyPath) vanished before installing; left out") }
                    installedByUs = true
                    let cgroups = spec.classifiesCgroups ? ", \(spec.cgroups.count - vanished.count) cgroup(s) classified" : ""
                    note((keepRules
                          ? "installed table inet \(spec.tableName) (kept after exit: --keep-rules)"
                          : "installed table inet \(spec.tableName) for this run; it is removed on exit") + cgroups)
                } else if try runner.status(spec).current {
                    note("table inet \(spec.tableName) is already installed; using it as it is")
                } else {
                    note("warning: table inet \(spec.tableName) is already installed with other settings than these "
                         + "options (group, snaplen, selectors or cgroups) and is left as it is, so this monitor may "
                         + "see nothing on group \(spec.group); compare with `nfowner rules status`, replace it with "
                         + "`nfowner rules install` and the same options, or pass --no-rules to silence this")
                }
            } catch {
                subscription.close()
                throw UserFacingError(error.description)
            }
        }

        // Follow cgroups only in a table this run owns: another one may be managed by someone else.
        var follower: CgroupFollower?
        if installedByUs, plan.follow, spec.classifiesCgroups, let mount = plan.cgroupMount {
            do {
                let watcher = try CgroupWatcher(mountPoint: mount.mountPoint,
                                                maxLevel: max(spec.cgroupLevels.max() ?? 1, 1))
                follower = CgroupFollower(
                    watcher: watcher, runner: runner, spec: spec, classifies: plan.classifies,
                    classifier: { Planner.classifier(for: $0, mount: mount) },
                    wakeup: followerWakeup, report: note)
            } catch {
                note("not following cgroups: \(error)")
            }
        }

        let writer = EventWriter(format: format)
        do { try writer.writeHeader() } catch {}
        let cgroupNames = plan.cgroupMount.flatMap { CgroupNames(mountPoint: $0.mountPoint) }
        let owners = processEvents.map { OwnerResolution(events: $0, flushTimeout: plan.nflog.flushTimeout,
                                                                         exitGrace: UInt64(exitGrace) * 1_000_000_000,
                                                                         flowLifetime: flowCache.lifetimeNanoseconds,
                                                                         maximumFlows: flowCache.maxFlows, report: note) }
        let processor = BatchProcessor(eventLimit: count, buildsEvents: format != .none, cgroups: cgroupNames,
                                       attributor: owners, clock: {
            let now = WallClock.now()
            return EventTime(seconds: now.seconds, microseconds: now.microseconds)
        })
        let loop = ReceiveLoop(subscription: subscription, processor: processor, writer: writer,
                               signals: signals, wakeup: wakeup,
                               tick: owners.map { owners in { owners.housekeeping() } })
        // Announced only now that every part is listening: tools (and tests) start sending on it.
        note("reading NFLOG group\(plan.nflog.groups.count > 1 ? "s" : "") "
             + plan.nflog.groups.map(String.init).joined(separator: ",")
             + (follower != nil ? "; following cgroups" : "") + "; stop with Ctrl-C")
        let followThread = follower.flatMap { follower in try? DedicatedThread(name: "nfowner-follow") { follower.run() } }
        let started = WallClock.monotonicNanoseconds()
        let ending = runOnDedicatedThread(loop)
        let seconds = Double(WallClock.monotonicNanoseconds() - started) / 1e9
        follower?.requestStop()
        followThread?.join()
        owners?.shutdown()
        subscription.close()

        if installedByUs && !keepRules {
            do { try runner.remove(spec) } catch {
                note("could not remove table inet \(spec.tableName): \(error); remove it with `nfowner rules remove`")
            }
        }
        var summary = loop.counters.summaryLine(durationSeconds: seconds, groups: plan.nflog.groups)
        if let follower {
            summary += " cgroups_added=\(follower.added) cgroups_removed=\(follower.removed) cgroup_update_failures=\(follower.failures)"
        }
        try? OutputDescriptor.standardError.write(summary + "\n")
        if case .failed(let reason) = ending { throw UserFacingError(reason) }
    }

    /// Runs the loop on its own thread (it blocks in poll) and waits for it.
    private func runOnDedicatedThread(_ loop: ReceiveLoop) -> ReceiveLoop.Ending {
        nonisolated(unsafe) var ending = ReceiveLoop.Ending.stopRequested
        do {
            let thread = try DedicatedThread(name: "nfowner-recv") { ending = loop.run() }
            thread.join()
        } catch {
            return .failed("cannot start the receive thread: \(error)")
        }
        return ending
    }
}

extension OutputFormat: ExpressibleByArgument {}

/// The owner-resolution flow cache's settings (monitor and trace): see `FlowCache`.
struct FlowCacheOptions: ParsableArguments {
    @Option(name: .customLong("flow-lifetime"), help: ArgumentHelp(
        "How long a flow's owner is remembered, in seconds (1 to 3600). Longer: fewer socket lookups for "
            + "long-lived flows; but a 5-tuple reused by another process keeps its old owner that long.",
        valueName: "seconds"))
    var flowLifetime: UInt32 = 2

    @Option(name: .customLong("max-flows"), help: ArgumentHelp(
        "The most flows remembered at once (1024 to 16777216). It bounds memory: 16 bytes per slot, a power of "
            + "two of slots at most 3/4 full (32 MiB for the default); when full, the oldest flows are resolved again.",
        valueName: "n"))
    var maxFlows: Int = FlowCache.defaultMaximumFlows

    var lifetimeNanoseconds: UInt64 { UInt64(flowLifetime) * 1_000_000_000 }

    func validate() throws {
        if !FlowCache.lifetimeSecondsRange.contains(flowLifetime) {
            throw ValidationError("--flow-lifetime must be 1 to 3600 seconds")
        }
        if !FlowCache.maximumFlowsRange.contains(maxFlows) {
            throw ValidationError("--max-flows must be 1024 to 16777216")
        }
    }
}

