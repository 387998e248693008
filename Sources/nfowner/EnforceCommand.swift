import ArgumentParser
import Attribution
import NetfilterSystem
import Policy
import Rules
import Session

struct EnforceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "enforce",
        abstract: "Allow, deny or reject new flows by program, unit and user, by a policy file.",
        discussion: """
            The first packet of each new flow (every ICMP echo request) waits in an NFQUEUE queue \
            while nfowner names its owner — uid and gid from the kernel, the process (exe, comm), \
            its cgroup and unit from the socket — and decides it by the policy: the first rule \
            whose matchers all match, else the default. allow lets the flow go on through the \
            host's other rules; deny drops the packet; reject drops it and answers with a TCP reset \
            or ICMP port unreachable, so connect() fails at once. The rest of an allowed flow never \
            leaves the kernel.

            A policy (full format: docs/enforce.md; check one with `nfowner policy check FILE`):
              default = "deny"        # allow | deny: what no rule matches
              mode = "enforce"        # enforce | audit (decide and report, block nothing)
              fail = "closed"         # open: traffic passes while nfowner is not running
                                      # closed: queued traffic is dropped until nfowner answers
              [[rule]]
              name = "web-only"
              action = "allow"        # allow | deny | reject
              log = true              # an audit event (JSON) for each decision of this rule
              uid = [1000]            # also user, gid, group, unit, cgroup, exe, comm,
              proto = ["tcp"]         #   direction, proto, dst, src, dst_port, src_port, icmp_type
              dst_port = [8080, "8000-8100"]

            Rules live in nfowner's own iptables chains (NFOWNER-ENFORCE, NFOWNER-ENFORCE-QUEUE in \
            the filter table, jumped to first from OUTPUT, and INPUT with directions = ["in"]): this \
            kernel has no nft queue statement. Verdicts use packet mark bits 0xc00000. SIGINT or \
            SIGTERM removes the rules; with fail = "closed" a killed nfowner leaves them, so traffic \
            they queue stays blocked until the next run (or `nfowner enforce --remove-rules`). \
            SIGHUP re-reads the policy file (a file with errors is refused, the old policy kept).

            Audit events (one JSON object per line, the monitor's keys plus rule, rule_index, \
            action, verdict and mode) go to stdout, or to --audit-log; a summary line goes to \
            stderr at exit.

            Examples:
              sudo nfowner enforce --policy /etc/nfowner/policy.toml
              sudo nfowner enforce --policy audit.toml --audit-log /var/log/nfowner-audit.jsonl
              sudo nfowner enforce --policy p.toml --netns test1
            """)

    @Option(name: .customLong("policy"), help: ArgumentHelp("The policy file (TOML).", valueName: "file"))
    var policyPath: String?

    @Option(help: ArgumentHelp("The NFQUEUE queue number (0-65535) the rules queue to; it must be free.",
                               valueName: "n"))
    var queue: UInt16 = 10

    @Option(help: ArgumentHelp(
        "Spread new flows over this many queues (--queue and the ones after it, by the CPU each is sent on), each decided by a thread of its own (1-16).",
        valueName: "n"))
    var queues: UInt16 = 1
    @Option(name: .customLong("queue-length"), help: ArgumentHelp(
        "Packets held at once before the queue is full (then fail decides: open accepts, closed drops).",
        valueName: "packets"))
    var queueLength: UInt32 = 4096

    @Option(name: .customLong("receive-buffer"), help: ArgumentHelp(
        "The queue socket's receive buffer in bytes (SO_RCVBUFFORCE): room for bursts of new flows.", valueName: "bytes"))
    var receiveBuffer: Int = 4 << 20

    @Option(name: .customLong("audit-log"), help: ArgumentHelp(
        "Append audit events to this file instead of writing them to stdout.", valueName: "file"))
    var auditLog: String?

    @Flag(name: .customLong("no-audit"), help: "Write no audit events (the counts are still in the summary line).")
    var noAudit = false

    @Flag(name: .customLong("no-rules"), help: "Install no rules: your own rules queue to --queue and act on the verdict marks.")
    var noRules = false

    @Flag(name: .customLong("keep-rules"), help: "Leave the rules in place on exit (with fail = \"closed\": traffic they queue stays blocked).")
    var keepRules = false

    @Flag(name: .customLong("remove-rules"), help: "Remove enforce rules a killed run left behind, and exit.")
    var removeRules = false

    @Flag(name: .customLong("reset-flows"), help: ArgumentHelp(
        "On SIGHUP, also cut the established TCP/UDP flows of this host's sockets that the new policy denies (their conntrack entries are deleted, so their next packet is decided again)."))
    var resetFlows = false

    @Flag(name: .customLong("no-fast-path"), help: ArgumentHelp(
        "Send every new flow to nfowner, even those the kernel could decide alone (rules of uid, gid, proto, addresses, ports, ICMP type)."))
    var noFastPath = false

    @Option(name: .customLong("exit-grace"), help: ArgumentHelp(
        "How long exited processes stay attributable, in seconds.", valueName: "seconds"))
    var exitGrace: UInt32 = 30

    @OptionGroup var namespace: NamespaceOption

    func validate() throws {
        if !removeRules && policyPath == nil { throw ValidationError("give the policy file with --policy FILE") }
        if removeRules && policyPath != nil { throw ValidationError("--remove-rules takes no --policy") }
        if noRules && keepRules { throw ValidationError("--keep-rules and --no-rules contradict each other: pick one") }
        if auditLog != nil && noAudit { throw ValidationError("--audit-log and --no-audit contradict each other: pick one") }
        if queueLength == 0 { throw ValidationError("--queue-length must be at least 1") }
        if !(1...16).contains(queues) { throw ValidationError("--queues must be 1 to 16") }
        if Int(queue) + Int(queues) - 1 > Int(UInt16.max) {
            throw ValidationError("--queue \(queue) with --queues \(queues) goes past queue 65535: choose a lower --queue")
        }
        if receiveBuffer < 65536 || receiveBuffer > 1 << 30 {
            throw ValidationError("--receive-buffer must be 65536 to 1073741824 bytes")
        }
        if exitGrace == 0 || exitGrace > 3600 { throw ValidationError("--exit-grace must be 1 to 3600 seconds") }
    }

    func run() throws {
        if removeRules {
            do {
                let removed = try EnforceRulesRunner(netns: namespace.name).remove()
                note(removed ? "removed enforce mode's rules" : "no enforce rules were installed")
            } catch {
                throw UserFacingError(error.description)
            }
            return
        }
        guard let policyPath else { return }
        let check = PolicyParser.load(path: policyPath)
        check.warnings.forEach { note("\($0)") }
        let policy: Policy
        do { policy = try check.get() } catch {
            throw UserFacingError(check.errors.map(\.description).joined(separator: "\n"))
        }
        var audit: OutputDescriptor? = noAudit ? nil : .standardOutput
        var auditFile: OutputFile?
        if let auditLog {
            do { auditFile = try OutputFile(path: auditLog, append: true) } catch {
                throw UserFacingError("cannot open the audit log: \(error)")
            }
            audit = auditFile?.descriptor
        }
        defer { auditFile?.close() }
        var options = EnforceOptions(policy: policy, report: note)
        options.reloadPolicy = { PolicyParser.load(path: policyPath) }
        options.queue = queue
        options.queueCount = queues
        options.maximumQueueLength = queueLength
        options.socketReceiveBuffer = receiveBuffer
        options.installsRules = !noRules
        options.keepsRules = keepRules
        options.fastPath = !noFastPath
        options.resetFlows = resetFlows
        options.audit = audit
        options.namespace = namespace.name
        options.processes = ProcessResolutionSettings(exitGrace: UInt64(exitGrace) * 1_000_000_000)
        do {
            try EnforceSession(options).run(onReady: { ready in
                let range = queues == 1 ? "queue \(ready.queue)" : "queues \(ready.queue)-\(Int(ready.queue) + Int(queues) - 1)"
                note("deciding packets from NFQUEUE \(range); stop with Ctrl-C, reload the policy with SIGHUP")
            })
        } catch {
            throw UserFacingError(error.description)
        }
    }
}
