import Accounting
import Attribution
import Configuration
import Logging
import MetricsEndpoint
import NetfilterSystem
import Session
import Rules
import Setup
import Sinks
import Synchronization

/// Where closed time buckets go: the history writer. `submit` runs on the receive thread and
/// must not block; `close` writes what is pending and runs once, at the end.
public protocol BucketWriter: AnyObject, Sendable {
    func submit(_ buckets: [TrafficBucket])
    /// A reloaded config's `[storage]` (retention, size bound).
    func apply(_ storage: NfownerConfig.Storage)
    func close()
}

/// What `nfowner run` runs: the configured ruleset, every packet attributed and accounted, the
/// buckets handed to the history writer, the totals served to Prometheus. SIGHUP reloads the
/// config file (counters kept; a bad file is refused and the running config kept).
public final class Daemon: @unchecked Sendable {
    public struct Options {
        public var config: NfownerConfig
        /// The file SIGHUP re-reads (nil: the default path).
        public var configPath: String?
        public var plan: Plan
        /// Install (or adopt) the plan's ruleset; false reads what an existing ruleset logs.
        public var installsRules: Bool
        public var namespace: String?
        public var processes: ProcessResolutionSettings
        /// Reads the config file (SIGHUP).
        public var loadConfig: (String?) throws -> NfownerConfig
        /// Opens the history for `[storage]`; nil when the path is empty (no history).
        public var openHistory: (NfownerConfig.Storage) throws -> (any BucketWriter)?
        public var logger: Logger
        /// Enforce mode besides accounting (`[enforce] policy`); nil: nothing is enforced.
        public var enforce: EnforceOptions?

        public init(config: NfownerConfig, configPath: String?, plan: Plan, installsRules: Bool = true, namespace: String?,
                    processes: ProcessResolutionSettings, loadConfig: @escaping (String?) throws -> NfownerConfig,
                    openHistory: @escaping (NfownerConfig.Storage) throws -> (any BucketWriter)?, logger: Logger,
                    enforce: EnforceOptions? = nil) {
            self.enforce = enforce
            self.config = config
            self.configPath = configPath
            self.plan = plan
            self.installsRules = installsRules
            self.namespace = namespace
            self.processes = processes
            self.loadConfig = loadConfig
            self.openHistory = openHistory
            self.logger = logger
        }
    }

    private let options: Options
    private let running: Mutex<NfownerConfig>

    public init(_ options: Options) {
        self.options = options
        running = Mutex(options.config)
    }

    /// The accounting limits a config asks for.
    public static func limits(_ config: NfownerConfig) -> TrafficAggregator.Limits {
        TrafficAggregator.Limits(bucketSeconds: config.accounting.bucketSeconds, maxRemotes: config.accounting.maxRemotes,
                                 maxRows: config.accounting.maxRows, remoteLabels: config.metrics.remoteLabels)
    }

    /// Runs until SIGINT/SIGTERM (or a failure): then the last bucket is written, the rules are
    /// removed unless `[run] keep_rules`, and the session's summary line is logged.
    /// The packet session's outcome (nil in kernel counting mode).
    @discardableResult
    public func run() throws(DaemonError) -> Session.Outcome? {
        let logger = options.logger
        let config = options.config
        // Before any thread starts (the history writer's, GRDB's): every thread must inherit the
        // mask, or a SIGTERM delivered to one of them would end the process without a flush.
        do { try TerminationSignals.blockForThisThread() } catch { throw DaemonError("\(error)") }
        let history: (any BucketWriter)?
        do { history = try options.openHistory(config.storage) } catch {
            throw DaemonError("\(error)")
        }
        defer { history?.close() }
        // Enforcement first, accounting after: the policy is in force before the daemon says it
        // runs, and it ends last.
        let stopAccounting = Mutex<(@Sendable () -> Void)?>(nil)
        let enforcementEnded = Mutex<String?>(nil)
        let enforcement = try options.enforce.map { enforce throws(DaemonError) in
            try DaemonEnforcement(enforce, onUnexpectedEnd: { reason in
                logger.error("enforcement stopped: \(reason); stopping the daemon")
                enforcementEnded.withLock { $0 = reason }
                stopAccounting.withLock { $0 }?()
            })
        }
        defer { enforcement?.stop() }
        self.enforcement = enforcement
        func failIfEnforcementEnded() throws(DaemonError) {
            if let reason = enforcementEnded.withLock({ $0 }) { throw DaemonError("enforcement stopped: \(reason)") }
        }
        if config.accounting.mode == .kernel {
            // Kernel counting has no stop from outside: a failed enforcement is logged, and the
            // exit status says so.
            try runKernelCounting(history: history)
            try failIfEnforcementEnded()
            return nil
        }
        let names = options.plan.cgroupMount.flatMap { CgroupNames(mountPoint: $0.mountPoint) }
        let sink = AccountingSink(limits: Self.limits(config), userName: AccountDatabase.userName(of:),
                                  cgroupName: { id in names?.entry(forID: id).map { ($0.path, $0.unit) } },
                                  deliver: { buckets in history?.submit(buckets) })
        var sessionOptions = SessionOptions(
            plan: options.plan, rules: options.installsRules ? .installIfAbsent(keepOnExit: config.run.keepRules) : .none,
            sinks: [sink],
            processes: options.processes, report: { logger.notice("\($0)") })
        sessionOptions.namespace = options.namespace
        sessionOptions.reload = { [self] in reload(sink: sink, history: history) }
        let session = Session(sessionOptions)
        sink.lostPackets = { [weak session] in session?.counters.source.lost ?? 0 }
        let exporter = PrometheusExporter()
        nonisolated(unsafe) var server: MetricsServer?
        do {
            let outcome = try session.run(onReady: { ready in
                stopAccounting.withLock { $0 = ready.stop }
                if enforcementEnded.withLock({ $0 }) != nil { ready.stop() }
                server = try Self.serveMetrics(config, logger: logger) { [weak session] in
                    let counters = session?.counters
                    return exporter.render(
                        snapshot: sink.published.withLock { $0 },
                        figures: .init(lostPackets: counters?.source.lost ?? 0,
                                       parseErrors: (counters?.source.malformed ?? 0) + (counters?.pipeline.parseErrors ?? 0),
                                       enforce: enforcement.map { Self.figures($0.counters) }))
                }
                let groups = ready.groups.map(String.init).joined(separator: ",")
                let storage = config.storage.path.isEmpty ? "no history kept" : "history in \(config.storage.path)"
                let follows = ready.followsCgroups ? "; following cgroups" : ""
                logger.notice("accounting NFLOG group \(groups) in \(config.accounting.bucketSeconds) s buckets; \(storage)\(follows); stop with SIGTERM")
            }, beforeSummary: { _ in
                server?.stop()
            })
            try failIfEnforcementEnded()
            return outcome
        } catch let error as DaemonError {
            throw error
        } catch {
            server?.stop()
            throw DaemonError("\(error)")
        }
    }

    /// The running enforcement, for SIGHUP (set once, before any signal is read).
    private nonisolated(unsafe) var enforcement: DaemonEnforcement?

    /// Enforce mode's counters as the metrics show them.
    static func figures(_ counters: EnforceCounters) -> PrometheusExporter.EnforceFigures {
        PrometheusExporter.EnforceFigures(allow: counters.allow, deny: counters.deny, reject: counters.reject,
                                          unknownProcess: counters.unknownProcess, auditEvents: counters.auditEvents)
    }

    /// The metrics endpoint of `config` serving `render`, bound on the calling thread (so inside
    /// the namespace it entered); nil when metrics are off.
    private static func serveMetrics(_ config: NfownerConfig, logger: Logger,
                                     render: @escaping @Sendable () -> [UInt8]) throws(DaemonError) -> MetricsServer? {
        guard !config.metrics.listen.isEmpty, let address = ListenAddress(config.metrics.listen) else { return nil }
        do {
            let metrics = try MetricsServer(host: address.host, port: address.port, ipv6: address.isIPv6, render: render)
            try metrics.start()
            logger.notice("serving metrics at http://\(address.isIPv6 ? "[\(address.host)]" : address.host):\(metrics.port)/metrics")
            return metrics
        } catch {
            throw DaemonError("cannot serve metrics on \(address): \(error); choose another [metrics] listen "
                              + "address, or \"\" to turn metrics off")
        }
    }

    /// Kernel counting: nft counts, this reads every few seconds and accounts the differences.
    private func runKernelCounting(history: (any BucketWriter)?) throws(DaemonError) {
        let logger = options.logger
        let config = options.config
        var aggregator = TrafficAggregator(limits: Self.limits(config), mode: .kernel)
        let published = Mutex(AccountingSnapshot())
        let exporter = PrometheusExporter()
        let names = options.plan.cgroupMount.flatMap { CgroupNames(mountPoint: $0.mountPoint) }
        var userNames: [UInt32: String] = [:]
        var last = OwnerCounterReading()
        var server: MetricsServer?
        defer { server?.stop() }

        func account(_ reading: OwnerCounterReading, at second: Int64) {
            for (key, count) in reading.counts {
                let delta = Self.difference(count, since: last.counts[key])
                guard delta.packets > 0 else { continue }
                let entry = key.cgroupKey == 0 ? nil : names?.entry(forID: UInt64(key.cgroupKey))
                var user = ""
                if let uid = key.uid {
                    if userNames[uid] == nil { userNames[uid] = AccountDatabase.userName(of: uid) ?? String(uid) }
                    user = userNames[uid] ?? String(uid)
                }
                aggregator.addTotals(delta, owner: TrafficOwner(unit: entry?.unit ?? "", cgroup: entry?.path ?? "", user: user),
                                     direction: key.inbound ? .in : .out, proto: "", at: second)
            }
            let overflow = Self.difference(reading.overflow, since: last.overflow)
            aggregator.addTotals(overflow, owner: TrafficOwner(unit: AccountingKey.other, cgroup: AccountingKey.other,
                                                               user: AccountingKey.other, program: AccountingKey.other),
                                 direction: .out, proto: "", at: second)
            last = reading
            aggregator.advance(to: Int64(WallClock.now().seconds))
            let buckets = aggregator.takeCompleted()
            if !buckets.isEmpty { history?.submit(buckets) }
            published.withLock {
                $0 = AccountingSnapshot(series: aggregator.seriesKeys, counts: aggregator.seriesCounts, total: aggregator.total,
                                        unaccounted: 0, activeFlows: 0)
            }
        }

        var counting = KernelCounting.Options(
            plan: options.plan, rules: options.installsRules ? .installIfAbsent(keepOnExit: config.run.keepRules) : .none,
            namespace: options.namespace, readSeconds: Self.readPeriod(bucketSeconds: config.accounting.bucketSeconds),
            report: { logger.notice("\($0)") })
        counting.reload = { [self] in
            logger.notice("SIGHUP: kernel counting keeps its configuration; restart nfowner to change it")
            self.enforcement?.reload()
        }
        do {
            try KernelCounting(counting).run(onReady: { baseline in
                last = baseline
                let enforcement = self.enforcement
                server = try Self.serveMetrics(config, logger: logger) {
                    exporter.render(snapshot: published.withLock { $0 },
                                    figures: .init(lostPackets: 0, parseErrors: 0,
                                                   enforce: enforcement.map { Self.figures($0.counters) }))
                }
                let storage = config.storage.path.isEmpty ? "no history kept" : "history in \(config.storage.path)"
                let table = KernelCounting.tableName, seconds = config.accounting.bucketSeconds
                logger.notice("accounting with the kernel's counters (table inet \(table)) in \(seconds) s buckets; \(storage); stop with SIGTERM")
            }, onReading: account)
        } catch {
            throw DaemonError("\(error)")
        }
        let buckets = aggregator.finish()
        if !buckets.isEmpty { history?.submit(buckets) }
        let total = aggregator.total
        logger.notice("kernel counting: \(total.packets) packets, \(total.bytes) bytes accounted")
    }

    /// `now` minus `before` (nil: zero); a counter that went back (its element was deleted and
    /// made again) counts from zero.
    static func difference(_ now: OwnerCount, since before: OwnerCount?) -> AccountingCounts {
        let before = before ?? OwnerCount()
        guard now.packets >= before.packets, now.bytes >= before.bytes else {
            return AccountingCounts(bytes: now.bytes, packets: now.packets)
        }
        return AccountingCounts(bytes: now.bytes - before.bytes, packets: now.packets - before.packets)
    }

    /// Seconds between reads of the kernel's counters: the largest divisor of the bucket length
    /// up to 10, so every bucket ends on a read and the metrics are at most 10 s behind.
    static func readPeriod(bucketSeconds: Int) -> Int {
        (1...min(10, max(1, bucketSeconds))).last { bucketSeconds % $0 == 0 } ?? 1
    }

    /// SIGHUP: re-reads the config file. What can change while running does (accounting bounds,
    /// retention); the rest is named as waiting for a restart. A bad file changes nothing.
    private func reload(sink: AccountingSink, history: (any BucketWriter)?) {
        let logger = options.logger
        let path = options.configPath ?? ConfigLoader.defaultPath
        let fresh: NfownerConfig
        do { fresh = try options.loadConfig(options.configPath) } catch {
            logger.error("SIGHUP: configuration not reloaded, the running one is kept: \(error)")
            return
        }
        let old = running.withLock { running in
            defer { running = fresh }
            return running
        }
        sink.reconfigure(Self.limits(fresh))
        history?.apply(fresh.storage)
        enforcement?.reload()
        let later = Self.restartOnlyChanges(from: old, to: fresh)
        let pending = later.isEmpty ? "" : "; applied at the next start: " + later.joined(separator: ", ")
        logger.notice("SIGHUP: configuration reloaded from \(path); counters kept\(pending)")
    }

    /// The tables whose changes a running daemon cannot apply.
    static func restartOnlyChanges(from old: NfownerConfig, to new: NfownerConfig) -> [String] {
        var tables: [String] = []
        if old.nflog != new.nflog { tables.append("[nflog]") }
        if old.hooks != new.hooks { tables.append("[hooks]") }
        if old.select != new.select { tables.append("[select]") }
        if old.cgroups != new.cgroups { tables.append("[cgroups]") }
        if old.accounting.mode != new.accounting.mode { tables.append("accounting.mode") }
        if old.accounting.input != new.accounting.input { tables.append("accounting.input") }
        if old.storage.path != new.storage.path { tables.append("storage.path") }
        if old.metrics.listen != new.metrics.listen { tables.append("metrics.listen") }
        if old.metrics.remoteLabels != new.metrics.remoteLabels { tables.append("metrics.remote_labels") }
        if old.run != new.run { tables.append("[run]") }
        if old.enforce != new.enforce { tables.append("[enforce]") }
        return tables
    }
}

/// Why the daemon could not start or stopped, phrased for the administrator.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}
