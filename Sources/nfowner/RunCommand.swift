import ArgumentParser
import Attribution
import Configuration
import Daemon
import Logging
import NetfilterSystem
import Policy
import Session
import Setup

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "The accounting daemon: traffic per unit, cgroup, user and program, kept in SQLite and served to Prometheus.",
        discussion: """
            Installs nfowner's ruleset (or uses the one `nfowner rules install` put there), logs \
            outgoing packets and, with [accounting] input (the default), the packets arriving for \
            local sockets, names each packet's owner, and totals bytes, packets and flows per \
            unit, cgroup, user, program, direction, protocol and remote end in time buckets \
            ([accounting] bucket_s, 60 s). Closed buckets are written to the SQLite history \
            ([storage] path, /var/lib/nfowner/nfowner.db) that `nfowner report` reads; running \
            totals are served at http://127.0.0.1:9465/metrics ([metrics] listen). Packets the \
            kernel dropped before nfowner saw them are counted as unaccounted, never hidden.

            With a policy ([enforce] policy, or --policy FILE) the daemon also enforces it, as \
            `nfowner enforce` does (docs/enforce.md): new flows are queued to NFQUEUE queue \
            [enforce] queue and allowed, denied or rejected by program, unit and user; the \
            decisions are counted in the metrics (nfowner_enforce_decisions_total{action}) and, \
            for rules with log = true, written to [enforce] audit_log.

            Signals: SIGTERM or SIGINT writes the last bucket, removes the rules (unless [run] \
            keep_rules) and exits 0. SIGHUP re-reads the config file and the policy file: counters \
            are kept, a bad file is refused and the running one kept; the log says which changes \
            wait for a restart. Logs go to stderr (the journal under systemd: see \
            dist/nfowner.service).

            Examples:
              sudo nfowner run                                  # /etc/nfowner/nfowner.toml or the defaults
              sudo nfowner run --config ./nfowner.toml
              sudo nfowner run --netns test1                    # everything inside `ip netns add test1`
              sudo nfowner run --policy /etc/nfowner/policy.toml   # account and enforce
              curl -s http://127.0.0.1:9465/metrics | grep nfowner_bytes_total
              nfowner report --since 1h --by unit,program
            """)

    @Option(name: .customLong("config"), help: ArgumentHelp(
        "Configuration file (TOML), also re-read on SIGHUP. Default: \(ConfigLoader.defaultPath) when it exists, else the built-in defaults (`nfowner config show`).",
        valueName: "file"))
    var configPath: String?

    @Flag(name: .customLong("no-rules"), help: "Do not install rules: account what an existing ruleset logs to the configured NFLOG group.")
    var noRules = false

    @Option(name: .customLong("policy"), help: ArgumentHelp(
        "Also enforce this policy file (TOML, docs/enforce.md); overrides [enforce] policy.", valueName: "file"))
    var policyPath: String?

    @OptionGroup var namespace: NamespaceOption

    func run() throws {
        var config: NfownerConfig
        do { config = try ConfigLoader.load(path: configPath) } catch { throw UserFacingError(error.description) }
        if let policyPath { config.enforce.policy = policyPath }
        let enforcement = try enforceOptions(config.enforce)
        defer { enforcement?.auditFile?.close() }
        var overrides = Overrides()
        if config.accounting.input { overrides.input = true }
        let plan = try makePlan(config: config, overrides: overrides, follow: !noRules)
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = .info
            return handler
        }
        let daemon = Daemon(Daemon.Options(
            config: config, configPath: configPath, plan: plan, installsRules: !noRules, namespace: namespace.name,
            processes: ProcessResolutionSettings(), loadConfig: { path in try ConfigLoader.load(path: path) },
            openHistory: { storage in openHistory(storage, logger: Logger(label: "nfowner")) },
            logger: Logger(label: "nfowner"), enforce: enforcement?.options))
        do { try daemon.run() } catch { throw UserFacingError(error.description) }
    }

    /// Enforce mode's options for `[enforce]`: the policy read and checked (its errors stop the
    /// start, with their lines), the audit log opened; nil without a policy.
    private func enforceOptions(_ settings: NfownerConfig.Enforce) throws -> (options: EnforceOptions, auditFile: OutputFile?)? {
        guard !settings.policy.isEmpty else { return nil }
        let path = settings.policy
        let check = PolicyParser.load(path: path)
        check.warnings.forEach { note("\($0)") }
        let policy: Policy
        do { policy = try check.get() } catch {
            throw UserFacingError(check.errors.map(\.description).joined(separator: "\n"))
        }
        var auditFile: OutputFile?
        if !settings.auditLog.isEmpty {
            do { auditFile = try OutputFile(path: settings.auditLog, append: true) } catch {
                throw UserFacingError("cannot open the audit log \(settings.auditLog): \(error); fix [enforce] audit_log")
            }
        }
        // Logged like the daemon's own lines (the logging system is set up before any is made).
        var options = EnforceOptions(policy: policy, report: { Logger(label: "nfowner").notice("\($0)") })
        options.reloadPolicy = { PolicyParser.load(path: path) }
        options.queue = UInt16(truncatingIfNeeded: settings.queue)
        options.queueCount = UInt16(truncatingIfNeeded: settings.queues)
        options.audit = auditFile?.descriptor
        options.namespace = namespace.name
        return (options, auditFile)
    }
}
