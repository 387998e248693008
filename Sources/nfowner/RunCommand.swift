import ArgumentParser
import Attribution
import Configuration
import Daemon
import Logging
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

            Signals: SIGTERM or SIGINT writes the last bucket, removes the rules (unless [run] \
            keep_rules) and exits 0. SIGHUP re-reads the config file: counters are kept, a bad \
            file is refused and the running config kept; the log says which changes wait for a \
            restart. Logs go to stderr (the journal under systemd: see dist/nfowner.service).

            Examples:
              sudo nfowner run                                  # /etc/nfowner/nfowner.toml or the defaults
              sudo nfowner run --config ./nfowner.toml
              sudo nfowner run --netns test1                    # everything inside `ip netns add test1`
              curl -s http://127.0.0.1:9465/metrics | grep nfowner_bytes_total
              nfowner report --since 1h --by unit,program
            """)

    @Option(name: .customLong("config"), help: ArgumentHelp(
        "Configuration file (TOML), also re-read on SIGHUP. Default: \(ConfigLoader.defaultPath) when it exists, else the built-in defaults (`nfowner config show`).",
        valueName: "file"))
    var configPath: String?

    @Flag(name: .customLong("no-rules"), help: "Do not install rules: account what an existing ruleset logs to the configured NFLOG group.")
    var noRules = false

    @OptionGroup var namespace: NamespaceOption

    func run() throws {
        let config: NfownerConfig
        do { config = try ConfigLoader.load(path: configPath) } catch { throw UserFacingError(error.description) }
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
            logger: Logger(label: "nfowner")))
        do { try daemon.run() } catch { throw UserFacingError(error.description) }
    }
}
