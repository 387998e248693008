import ArgumentParser
import Attribution
import Configuration
import Session
import Setup
import Sinks

struct MonitorCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "monitor",
        abstract: "Show every packet this host sends, with the user and group that own it.",
        discussion: """
            Reads packets from NFLOG and prints one line (or JSON object) per packet. Unless \
            --no-rules is given, nfowner installs its own nftables table (`table inet nfowner`, \
            logging the OUTPUT hook) for the run when none is installed, and removes it on exit; \
            other tables are never touched. A table `nfowner rules install` put there is used, with \
            cgroups followed in it, and stays installed; one left by a monitor that is no longer \
            running is adopted the same way and removed on exit. Stop with Ctrl-C: a summary line \
            goes to stderr, e.g.
              received=120 lost=0 enobufs=0 parse_errors=0 emitted=120 ...

            With cgroup discovery on (the default; see `nfowner config show`), each packet also \
            names its cgroup and systemd unit, and cgroups created while the monitor runs are \
            added to the ruleset within a second (--no-cgroups turns this off).

            Examples:
              sudo nfowner monitor                       # everything, as a table
              sudo nfowner monitor --user alice          # only alice's packets
              sudo nfowner monitor --format json --count 100 > packets.jsonl
              sudo nfowner monitor --netns test1         # inside `ip netns add test1`
              sudo nfowner monitor --hold-new-flows      # exact pids for short-lived TCP/ping senders
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

    @OptionGroup(title: "Hold mode") var hold: HoldOptions

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
        var plan = try ruleset.plan(follow: !noRules, hold: hold)
        if plan.hold != nil && noProcesses {
            throw ValidationError("hold mode exists to name each held packet's process: drop --no-processes, "
                                  + "or --no-hold-new-flows")
        }
        plan.nflog.flushTimeout = flushTimeout ?? plan.nflog.flushTimeout
        plan.nflog.socketReceiveBuffer = receiveBuffer ?? plan.nflog.socketReceiveBuffer
        plan.nflog.coalesceMicroseconds = coalesceMicroseconds ?? plan.nflog.coalesceMicroseconds
        var options = SessionOptions(
            plan: plan, rules: noRules ? .none : .installIfAbsent(keepOnExit: keepRules),
            sinks: [EventStreamSink(format: format)],
            processes: noProcesses ? nil : ProcessResolutionSettings(
                exitGrace: UInt64(exitGrace) * 1_000_000_000, flowLifetime: flowCache.lifetimeNanoseconds,
                maximumFlows: flowCache.maxFlows),
            report: note)
        options.eventLimit = count
        options.namespace = namespace.name
        options.reload = { note("SIGHUP: user, group and interface names are looked up again") }
        do {
            try Session(options).run(onReady: { ready in
                // Announced only now that every part is listening: tools (and tests) start sending on it.
                note("reading NFLOG group\(ready.groups.count > 1 ? "s" : "") "
                     + ready.groups.map(String.init).joined(separator: ",")
                     + (ready.newFlowGroup.map { " (each flow's first packet at once on \($0))" } ?? "")
                     + (ready.holdQueue.map { "; holding new TCP connections and pings on NFQUEUE queue \($0)" } ?? "")
                     + (ready.followsCgroups ? "; following cgroups" : "") + "; stop with Ctrl-C")
            })
        } catch {
            throw UserFacingError(error.description)
        }
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

