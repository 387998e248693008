import Accounting
import NetfilterSystem
import PacketModel
import PacketParsing
import Synchronization

/// Totals every packet into time buckets (`TrafficAggregator`) for the daemon: completed buckets
/// go to `deliver` (the history writer, which must not block), running totals are published for
/// the metrics endpoint at most once a second, and packets the session lost are added to the
/// bucket they were lost in as unaccounted.
public final class AccountingSink: PacketSink, @unchecked Sendable {
    // Touched by the receive thread only (the metrics endpoint reads `published`): no dynamic
    // exclusivity check per packet.
    @exclusivity(unchecked) private var aggregator: TrafficAggregator
    private let userName: (UInt32) -> String?
    private let cgroupName: (UInt64) -> (path: String, unit: String?)?
    /// The second packets are counted in: read at the first packet after each batch or tick.
    @exclusivity(unchecked) private var second: Int64 = 0
    @exclusivity(unchecked) private var clockIsStale = true
    /// Packets repeating the one counted before them (`PacketFacts.repeatsPrevious`), gathered
    /// within `second` and added to the aggregator at once (`settleRun`): per packet, two
    /// additions.
    @exclusivity(unchecked) private var runBytes: UInt64 = 0
    @exclusivity(unchecked) private var runPackets: UInt64 = 0
    private let deliver: ([TrafficBucket]) -> Void
    /// The session's lost packets so far (sequence gaps and ENOBUFS); set once the session exists.
    public var lostPackets: (() -> UInt64)?
    private var lostSeen: UInt64 = 0
    private var lastPublished: UInt64 = 0
    private var publishedTotal = AccountingCounts()
    private var publishedUnaccounted: UInt64 = 0
    private var userNames: [UInt32: String] = [:]
    /// What the metrics endpoint reads, from any thread.
    public let published = Mutex(AccountingSnapshot())
    /// Limits from a reloaded config, taken by the receive thread at its next tick.
    private let pendingLimits = Mutex<TrafficAggregator.Limits?>(nil)

    /// `userName` names a uid (nil: no such user, the uid is shown); `deliver` receives closed
    /// buckets on the receive thread.
    /// `cgroupName` gives the path and unit of a cgroup id the ruleset classified a packet into.
    public init(limits: TrafficAggregator.Limits, userName: @escaping (UInt32) -> String?,
                cgroupName: @escaping (UInt64) -> (path: String, unit: String?)? = { _ in nil },
                deliver: @escaping ([TrafficBucket]) -> Void) {
        aggregator = TrafficAggregator(limits: limits)
        self.userName = userName
        self.cgroupName = cgroupName
        self.deliver = deliver
    }

    /// Facts, not events: no names or metadata per packet. Names are looked up only when a
    /// flow opens a row, and the time is read once per batch.
    public var needs: SinkNeeds { .facts }

    public func consume(_ facts: borrowing PacketFacts) {
        if clockIsStale {
            second = Int64(WallClock.now().seconds)
            clockIsStale = false
        }
        let bytes = UInt64(max(0, facts.packet.totalLength))
        // The usual packet: the next of a run of one flow's, by the same owner, in one second.
        if facts.repeatsPrevious, runPackets > 0 || aggregator.canAddToLastFlow(at: second) {
            runBytes &+= bytes
            runPackets &+= 1
            return
        }
        settleRun()
        let outbound = facts.direction == .outbound
        // Read through `facts` (borrowed), never copied out: a copy of the attribution retains
        // its strings, array and cgroup for every packet.
        let uid = facts.uid ?? facts.attribution?.uid
        let stamp = OwnerStamp(uid: uid, cgroupID: facts.cgroupID, pid: facts.attribution?.processes.first?.pid,
                               confidence: Self.rank(facts.attribution?.confidence))
        let remotePort = facts.packet.icmp == nil
            ? (outbound ? facts.packet.destinationPort : facts.packet.sourcePort) : nil
        aggregator.add(flow: facts.flow.withoutOwner, stamp: stamp,
                       direction: outbound ? .out : .in, protocolNumber: facts.packet.protocolNumber,
                       remote: outbound ? facts.packet.destination : facts.packet.source, remotePort: remotePort,
                       bytes: bytes, at: second) {
            let named = facts.attribution?.named
            // The named process's own cgroup, else the one the ruleset classified the packet into.
            let cgroup = facts.attribution?.cgroup.map { (path: $0.path, unit: $0.unit) } ?? facts.cgroupID.flatMap(cgroupName)
            return TrafficOwner(unit: cgroup?.unit ?? "", cgroup: cgroup?.path ?? "", user: uid.map(name(of:)) ?? "",
                                program: named?.exe ?? named?.comm ?? "")
        }
    }

    public func flush() throws(SinkError) {
        clockIsStale = true
        update(now: WallClock.now().seconds, publishing: false)
    }

    /// Ticks publish what changed since the last tick: metrics lag packets by at most a tick.
    public func tick() {
        clockIsStale = true
        update(now: WallClock.now().seconds, publishing: true)
    }

    public func finish() {
        settleRun()
        takeLosses(now: Int64(WallClock.now().seconds))
        let buckets = aggregator.finish()
        publish()
        if !buckets.isEmpty { deliver(buckets) }
    }

    /// New limits, from any thread: applied at the receive thread's next flush or tick.
    public func reconfigure(_ limits: TrafficAggregator.Limits) {
        pendingLimits.withLock { $0 = limits }
    }

    private func update(now: UInt64, publishing: Bool) {
        settleRun()
        if let limits = pendingLimits.withLock({ pending in defer { pending = nil }; return pending }) {
            aggregator.reconfigure(limits)
        }
        takeLosses(now: Int64(now))
        aggregator.advance(to: Int64(now))
        let buckets = aggregator.takeCompleted()
        if !buckets.isEmpty { deliver(buckets) }
        if publishing || now != lastPublished {
            lastPublished = now
            if aggregator.total != publishedTotal || aggregator.totalUnaccounted != publishedUnaccounted { publish() }
        }
    }

    /// Adds the run gathered so far to the flow it repeats. Called before anything else touches
    /// the aggregator, which is what keeps `canAddToLastFlow` true for the run.
    private func settleRun() {
        guard runPackets > 0 else { return }
        if !aggregator.addToLastFlow(bytes: runBytes, packets: runPackets, at: second) {
            // Not expected (see above); were it to happen, the packets show as unaccounted
            // rather than vanish.
            assertionFailure("a run of \(runPackets) packets lost its flow")
            aggregator.addUnaccounted(runPackets, at: second)
        }
        runBytes = 0
        runPackets = 0
    }

    private func takeLosses(now: Int64) {
        guard let lost = lostPackets?(), lost > lostSeen else { return }
        aggregator.addUnaccounted(lost - lostSeen, at: now)
        lostSeen = lost
    }

    private func publish() {
        publishedTotal = aggregator.total
        publishedUnaccounted = aggregator.totalUnaccounted
        let snapshot = AccountingSnapshot(series: aggregator.seriesKeys, counts: aggregator.seriesCounts,
                                          total: aggregator.total, unaccounted: aggregator.totalUnaccounted,
                                          activeFlows: aggregator.activeFlows)
        published.withLock { $0 = snapshot }
    }

    private func name(of uid: UInt32) -> String {
        if let known = userNames[uid] { return known }
        let name = userName(uid) ?? String(uid)
        if userNames.count < 4096 { userNames[uid] = name }
        return name
    }

    /// A small number per confidence: part of the owner stamp, so a flow whose attribution
    /// improves (candidates, then exact) moves to its better row.
    private static func rank(_ confidence: OwnerAttribution.Confidence?) -> UInt8 {
        switch confidence {
        case nil: 0
        case .exact?: 1
        case .flow?: 2
        case .single?: 3
        case .program?: 4
        case .candidates?: 5
        case .uid?: 6
        case .none?: 7
        }
    }
}

/// The running totals as the metrics endpoint and live views read them.
public struct AccountingSnapshot: Sendable {
    public var series: [MetricSeries] = []
    public var counts: [AccountingCounts] = []
    public var total = AccountingCounts()
    public var unaccounted: UInt64 = 0
    public var activeFlows = 0

    public init() {}

    public init(series: [MetricSeries], counts: [AccountingCounts], total: AccountingCounts, unaccounted: UInt64,
                activeFlows: Int) {
        self.series = series
        self.counts = counts
        self.total = total
        self.unaccounted = unaccounted
        self.activeFlows = activeFlows
    }
}
