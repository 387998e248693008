import Attribution
import NetfilterSystem
import Rules
import Setup

/// A run in kernel counting mode (`[accounting] mode = "kernel"`): nfowner's table counts every
/// packet in the kernel by direction, socket uid and classified cgroup (`OwnerCounterSet`), and
/// nothing is logged; this run installs (or adopts) that table, follows cgroups into it, and
/// reads its counters every `readSeconds`, on the seconds that are multiples of it, and once more
/// at the end. SIGINT/SIGTERM end it, SIGHUP calls `reload`. nfowner's CPU does not grow with the
/// packet rate: one nft listing per read.
public final class KernelCounting: @unchecked Sendable {
    public struct Options {
        public var plan: Plan
        public var rules: RulesPolicy
        public var namespace: String?
        /// Seconds between reads, 1…3600.
        public var readSeconds: Int
        public var report: (String) -> Void
        public var reload: (() -> Void)?

        public init(plan: Plan, rules: RulesPolicy, namespace: String?, readSeconds: Int,
                    report: @escaping (String) -> Void) {
            self.plan = plan
            self.rules = rules
            self.namespace = namespace
            self.readSeconds = readSeconds
            self.report = report
        }
    }

    public static let tableName = OwnerCounterSet.tableName

    private let options: Options

    public init(_ options: Options) {
        self.options = options
    }

    /// Runs until a stop signal. `onReady` runs once the table counts (with the first reading,
    /// the baseline); `onReading` after every read, with its wall-clock second.
    public func run(onReady: (OwnerCounterReading) throws -> Void,
                    onReading: (OwnerCounterReading, Int64) -> Void) throws(SessionError) {
        let plan = options.plan
        let report = options.report
        plan.notes.forEach(report)
        if let name = options.namespace {
            do { try NetworkNamespace.enter(named: name) } catch { throw SessionError(error.description) }
        }
        let signals: TerminationSignals, followerWakeup: WakeupEvent
        do {
            signals = try TerminationSignals()
            followerWakeup = try WakeupEvent()
        } catch {
            throw SessionError("cannot set up signal handling: \(error)")
        }
        var spec = plan.spec
        spec.tableName = Self.tableName
        spec.countsOwners = true
        let rules = RulesLifecycle(spec: spec, policy: options.rules,
                                   wantsFollow: plan.follow && plan.cgroupMount != nil, report: report)
        try rules.start()
        defer { rules.finish() }
        let follower = Session.follower(of: rules, plan: plan, wakeup: followerWakeup, report: report)
        let followThread = follower.flatMap { follower in try? DedicatedThread(name: "nfowner-follow") { follower.run() } }
        defer {
            follower?.requestStop()
            followThread?.join()
        }
        let runner = NftRunner()
        func read() throws(SessionError) -> OwnerCounterReading {
            do { return try runner.readOwnerCounters(table: Self.tableName) } catch {
                throw SessionError("cannot read the kernel's counters: \(error)")
            }
        }
        do { try onReady(try read()) } catch let error as SessionError { throw error } catch {
            throw SessionError("\(error)")
        }
        let period = Int64(max(1, options.readSeconds))
        while true {
            let now = WallClock.now()
            let nowMilliseconds = Int64(now.seconds) * 1000 + Int64(now.microseconds / 1000)
            // Just past the next multiple of the period: a read then closes the period before it.
            let next = (Int64(now.seconds) / period + 1) * period * 1000 + 20
            let ready: [Int32]
            do {
                ready = try waitReadable([signals.descriptor], timeoutMilliseconds: Int32(clamping: next - nowMilliseconds))
            } catch {
                throw SessionError("cannot wait for signals: \(error)")
            }
            if !ready.isEmpty, let signal = signals.take() {
                if signal == TerminationSignals.hangup {
                    options.reload?()
                    continue
                }
                onReading(try read(), Int64(WallClock.now().seconds))
                return
            }
            let reading = try read()
            // The counts of the period that just ended belong to its last second.
            onReading(reading, Int64(WallClock.now().seconds) - 1)
        }
    }
}
