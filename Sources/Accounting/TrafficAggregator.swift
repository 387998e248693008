import PacketModel
import PacketParsing

/// Totals traffic into time buckets by owner, direction, protocol and remote end, and keeps
/// running totals per metric series. Pure: the caller feeds packets and times and takes the
/// completed buckets; nothing here does I/O or reads a clock.
///
/// Per packet the work is one flow-table lookup: a flow remembers the row it was counted in
/// (and a stamp of its owner), so the row's strings are built and hashed only for a flow's
/// first packet in a bucket, or when its owner changes.
///
/// Memory is bounded three ways: remote endpoints per owner and bucket (`maxRemotes`, the rest
/// under the remote "other"), rows per bucket (`maxRows`, the rest under the owner "other"),
/// and flows remembered (`maxFlows`; past it idle flows are forgotten first).
public struct TrafficAggregator: Sendable {
    public struct Limits: Sendable, Equatable {
        public var bucketSeconds: Int
        public var maxRemotes: Int
        public var maxRows: Int
        /// Flows remembered at once; a flow forgotten and seen again counts as a new flow.
        public var maxFlows: Int
        /// A flow idle this long counts as a new one when it sends again.
        public var flowIdleSeconds: Int64
        /// Distinct metric series; past it new programs are added up as "other".
        public var maxSeries: Int
        /// Series carry the remote address (an unbounded label: off unless asked for).
        public var remoteLabels: Bool
        /// Series carry the cgroup path (for the live view, `top --by cgroup`).
        public var cgroupLabels: Bool

        public init(bucketSeconds: Int = 60, maxRemotes: Int = 100, maxRows: Int = 100_000, maxFlows: Int = 262_144,
                    flowIdleSeconds: Int64 = 120, maxSeries: Int = 10_000, remoteLabels: Bool = false,
                    cgroupLabels: Bool = false) {
            self.bucketSeconds = max(1, bucketSeconds)
            self.maxRemotes = max(0, maxRemotes)
            self.maxRows = max(1, maxRows)
            self.maxFlows = max(1, maxFlows)
            self.flowIdleSeconds = flowIdleSeconds
            self.maxSeries = max(1, maxSeries)
            self.remoteLabels = remoteLabels
            self.cgroupLabels = cgroupLabels
        }
    }

    public private(set) var limits: Limits
    /// The bucket being filled (nil before the first packet or time), and its bounds.
    private var current: OpenBucket?
    private var openStart: Int64 = 0
    private var openEnd: Int64 = Int64.min
    /// Buckets opened so far (wrapping): what a flow's memo names its row's bucket by.
    private var openedBuckets: UInt32 = 0
    private var completed: [TrafficBucket] = []
    /// Flows by their key's 64-bit hash (seeded per process): 8 bytes a key instead of the key's
    /// 56, and a 16-byte memo; two flows sharing a hash (about 1 in 2^45 at 262,144 flows) would
    /// share a flow count, never bytes.
    private var flows: [Int: FlowMemo] = [:]
    /// The flow counted last (its key), where its memo sits in `flows`, and the memo: the
    /// next packet of that flow (a run of one flow's packets is the usual case) skips mixing the
    /// key, the dictionary's probe and reading the memo back, and writes the memo only when it
    /// changed (a new second, bucket or owner). Cleared whenever `flows` gains or loses keys,
    /// which is what invalidates an index (writing a value through one does not, nor does the
    /// copy-on-write of a copied aggregator).
    private var lastFlow: LastFlow?
    private struct LastFlow {
        var key: FlowKey
        var id: Int
        var index: Dictionary<Int, FlowMemo>.Index
        var memo: FlowMemo
    }
    private var seriesIndex: [MetricSeries: Int] = [:]
    public private(set) var seriesKeys: [MetricSeries] = []
    public private(set) var seriesCounts: [AccountingCounts] = []
    /// Every packet counted so far (all buckets), and every unaccounted one.
    public private(set) var total = AccountingCounts()
    public private(set) var totalUnaccounted: UInt64 = 0
    /// Flows placed in an "other" row by a bound (remotes per owner, rows per bucket), since the start.
    public private(set) var foldedRows: UInt64 = 0

    /// How the figures are counted: every bucket carries it.
    public let mode: AccountingMode

    public init(limits: Limits = Limits(), mode: AccountingMode = .packets) {
        self.limits = limits
        self.mode = mode
    }

    /// Adds totals counted elsewhere (the kernel's counters, `mode` kernel) to the row of
    /// `owner`, `direction` and `proto` ("" for all protocols; no remote) in the bucket of
    /// `seconds`.
    public mutating func addTotals(_ counts: AccountingCounts, owner: TrafficOwner, direction: TrafficDirection,
                                   proto: String, at seconds: Int64) {
        guard counts.packets > 0 || counts.bytes > 0 else { return }
        advance(to: seconds)
        let key = AccountingKey(unit: owner.unit, cgroup: owner.cgroup, user: owner.user, program: owner.program,
                                direction: direction, proto: proto)
        let row: Int
        if let existing = current!.index[key] {
            row = existing
        } else {
            let series = seriesIndex(for: MetricSeries(unit: key.unit, user: key.user, program: key.program,
                                                       direction: direction, proto: proto, remote: "",
                                                       cgroup: limits.cgroupLabels ? key.cgroup : ""))
            row = current!.insert(key, owner: key, series: series)
        }
        current!.counts[row] += counts
        seriesCounts[current!.series[row]] += counts
        total += counts
    }

    /// New limits (a reloaded config): they bound rows added from now on; a new bucket length
    /// starts with the next bucket. Totals and series are kept.
    public mutating func reconfigure(_ limits: Limits) {
        self.limits = limits
    }

    /// Flows seen within `flowIdleSeconds` of the latest time given.
    public var activeFlows: Int { flows.count }

    /// Counts one packet of `bytes` IP bytes at `seconds` (Unix time). `owner` is asked only
    /// when the flow's row is not known for this bucket or `stamp` differs from the flow's last.
    ///
    /// The common case — the next packet of the flow counted last, in the same bucket, by the
    /// same owner — costs a comparison of the key's words and three additions; another flow
    /// already counted costs one dictionary probe (its memo found and updated through one index).
    public mutating func add(flow: FlowKey, stamp: OwnerStamp, direction: TrafficDirection, protocolNumber: UInt8,
                             remote: IPAddress, remotePort: UInt16?, bytes: UInt64, at seconds: Int64,
                             owner: () -> TrafficOwner) {
        // The usual packet: the next one of the flow counted last, in the same second (so in the
        // same bucket and not new) and by the same owner. Only the counts change; everything
        // else stays in `placeCounting` (out of line, so this path saves no registers for it).
        if let last = lastFlow, last.memo.stamp == stamp.mixed, last.key.isSame(as: flow),
           canAddToLastFlow(at: seconds) {
            count(AccountingCounts(bytes: bytes, packets: 1, flows: 0), row: Int(last.memo.row))
            return
        }
        placeCounting(flow: flow, stamp: stamp, direction: direction, protocolNumber: protocolNumber, remote: remote,
                      remotePort: remotePort, bytes: bytes, at: seconds, owner: owner)
    }

    /// Whether packets of the flow counted last, by the same owner, can be added at `seconds`
    /// with `addToLastFlow` (same second and bucket as its last packet). Until the next mutating
    /// call the answer holds, so a caller can gather a run of such packets and add them at once.
    @inline(__always)
    public func canAddToLastFlow(at seconds: Int64) -> Bool {
        guard let last = lastFlow, seconds < openEnd, current != nil else { return false }
        return last.memo.bucket == openedBuckets && last.memo.lastSeen == UInt32(truncatingIfNeeded: seconds)
            && limits.flowIdleSeconds >= 0
    }

    /// Counts `packets` more packets (`bytes` in all) of the flow counted last, by the same owner
    /// (the caller knows both; see `PacketFacts.repeatsPrevious`), without their key: true when
    /// counted, false (nothing counted) when `canAddToLastFlow(at:)` is false — they must go
    /// through `add`.
    public mutating func addToLastFlow(bytes: UInt64, packets: UInt64 = 1, at seconds: Int64) -> Bool {
        guard canAddToLastFlow(at: seconds), let last = lastFlow else { return false }
        count(AccountingCounts(bytes: bytes, packets: packets, flows: 0), row: Int(last.memo.row))
        return true
    }

    @inline(__always)
    private mutating func count(_ added: AccountingCounts, row: Int) {
        current!.counts[row] += added
        seriesCounts[current!.series[row]] += added
        total += added
    }

    /// `add` for any packet: finds or places the flow's row, then counts.
    @inline(never)
    private mutating func placeCounting(flow: FlowKey, stamp: OwnerStamp, direction: TrafficDirection,
                                        protocolNumber: UInt8, remote: IPAddress, remotePort: UInt16?, bytes: UInt64,
                                        at seconds: Int64, owner: () -> TrafficOwner) {
        if seconds >= openEnd || current == nil { advance(to: seconds) }
        let bucket = openedBuckets
        let stampID = stamp.mixed
        var isNewFlow = true
        var row = -1
        let flowID: Int
        let index: Dictionary<Int, FlowMemo>.Index?
        let known: FlowMemo?
        var isLastFlow = false
        if let last = lastFlow, last.key.isSame(as: flow) {
            (flowID, index, known) = (last.id, last.index, last.memo)
            isLastFlow = true
        } else {
            // Unseeded: the dictionary hashes it again with its seeded hash, and two flows mixing
            // to the same value would only share a flow count.
            flowID = Int(bitPattern: UInt(flow.mixed()))
            index = flows.index(forKey: flowID)
            known = index.map { flows.values[$0] }
        }
        if let memo = known {
            isNewFlow = seconds - Int64(memo.lastSeen) > limits.flowIdleSeconds
            if memo.bucket == bucket && memo.stamp == stampID { row = Int(memo.row) }
        } else if flows.count >= limits.maxFlows {
            forgetIdleFlows(now: seconds, keepingAtMost: limits.maxFlows * 3 / 4)
        }
        if row < 0 {
            switch current!.place(owner(), direction: direction, protocolNumber: protocolNumber, remote: remote,
                                  remotePort: remotePort, limits: limits) {
            case .existing(let existing, let folded):
                row = existing
                if folded { foldedRows &+= 1 }
            case .new(let key, let ownerKey, let folded):
                if folded { foldedRows &+= 1 }
                let series = seriesIndex(for: MetricSeries(
                    unit: key.unit, user: key.user, program: key.program, direction: direction, proto: key.proto,
                    remote: limits.remoteLabels ? key.remoteAddress : "", cgroup: limits.cgroupLabels ? key.cgroup : ""))
                row = current!.insert(key, owner: ownerKey, series: series)
            }
        }
        let memo = FlowMemo(lastSeen: UInt32(truncatingIfNeeded: seconds), bucket: bucket,
                            row: Int32(truncatingIfNeeded: row), stamp: stampID)
        // Placing a row touches the bucket and the series, never `flows`: the index still holds.
        if let index {
            if memo != known {
                flows.values[index] = memo
                if isLastFlow { lastFlow?.memo = memo }
            }
            if !isLastFlow { lastFlow = LastFlow(key: flow, id: flowID, index: index, memo: memo) }
        } else {
            flows[flowID] = memo
            lastFlow = nil
        }
        count(AccountingCounts(bytes: bytes, packets: 1, flows: isNewFlow ? 1 : 0), row: row)
    }

    /// Packets lost before they could be counted (sequence gaps, ENOBUFS), in the bucket of
    /// `seconds`.
    public mutating func addUnaccounted(_ packets: UInt64, at seconds: Int64) {
        guard packets > 0 else { return }
        advance(to: seconds)
        current!.unaccounted &+= packets
        totalUnaccounted &+= packets
    }

    /// Closes the bucket being filled when `seconds` is past its end (a later bucket starts).
    /// Time going backwards keeps the current bucket.
    public mutating func advance(to seconds: Int64) {
        // Called at every flush: the usual answer (still inside the open bucket, whose end is
        // `openEnd`) without copying the open bucket out of its optional.
        if current != nil, seconds < openEnd { return }
        if let open = current {
            completed.append(open.closed())
            forgetIdleFlows(now: seconds, keepingAtMost: limits.maxFlows)
        }
        openedBuckets &+= 1
        openStart = Self.floor(seconds, limits.bucketSeconds)
        openEnd = openStart + Int64(limits.bucketSeconds)
        current = OpenBucket(start: openStart, seconds: limits.bucketSeconds, mode: mode)
    }

    /// The buckets closed since the last call, oldest first.
    public mutating func takeCompleted() -> [TrafficBucket] {
        // Usually none: emptying a buffer the returned copy shares would allocate a new one.
        guard !completed.isEmpty else { return [] }
        defer { completed.removeAll(keepingCapacity: true) }
        return completed
    }

    /// Closes the bucket being filled (at the end of a run: it is partial) and returns every
    /// bucket not taken yet.
    public mutating func finish() -> [TrafficBucket] {
        if let open = current, !open.counts.isEmpty || open.unaccounted > 0 {
            completed.append(open.closed())
        }
        current = nil
        openEnd = Int64.min
        return takeCompleted()
    }

    /// The bucket being filled, as it stands (for a live view).
    public var openBucket: TrafficBucket? { current?.closed() }

    static func floor(_ seconds: Int64, _ length: Int) -> Int64 {
        let length = Int64(length)
        let remainder = seconds % length
        return seconds - (remainder < 0 ? remainder + length : remainder)
    }

    /// Drops flows idle longer than `flowIdleSeconds`; if more than `keepingAtMost` remain
    /// (a flood of live flows), drops them all: they count as new when they send again.
    private mutating func forgetIdleFlows(now: Int64, keepingAtMost maximum: Int) {
        let idle = limits.flowIdleSeconds
        lastFlow = nil
        flows = flows.filter { now - Int64($0.value.lastSeen) <= idle }
        if flows.count > maximum { flows.removeAll(keepingCapacity: true) }
    }

    /// The series index for an owner, adding it (or folding it into "other" past `maxSeries`).
    private mutating func seriesIndex(for key: MetricSeries) -> Int {
        if let index = seriesIndex[key] { return index }
        var key = key
        if seriesKeys.count >= limits.maxSeries {
            key = MetricSeries(unit: AccountingKey.other, user: AccountingKey.other, program: AccountingKey.other,
                               direction: key.direction, proto: key.proto, remote: limits.remoteLabels ? AccountingKey.other : "",
                               cgroup: limits.cgroupLabels ? AccountingKey.other : "")
            if let index = seriesIndex[key] { return index }
        }
        seriesIndex[key] = seriesKeys.count
        seriesKeys.append(key)
        seriesCounts.append(AccountingCounts())
        return seriesKeys.count - 1
    }
}

/// Who owns a row, as the caller names it from a packet's owner ("" for unknown).
public struct TrafficOwner: Sendable, Equatable {
    public var unit: String
    public var cgroup: String
    public var user: String
    public var program: String

    public init(unit: String = "", cgroup: String = "", user: String = "", program: String = "") {
        self.unit = unit
        self.cgroup = cgroup
        self.user = user
        self.program = program
    }
}

/// A cheap fingerprint of a packet's owner: when a flow's packet carries the same stamp as its
/// last one, it is counted in the same row without naming the owner again.
public struct OwnerStamp: Sendable, Equatable {
    public var uid: UInt32
    public var cgroupID: UInt64
    public var pid: Int32
    public var confidence: UInt8

    public init(uid: UInt32?, cgroupID: UInt64?, pid: Int32?, confidence: UInt8) {
        self.uid = uid ?? UInt32.max
        self.cgroupID = cgroupID ?? 0
        self.pid = pid ?? -1
        self.confidence = confidence
    }

    /// The stamp as one word (a cheap mix: equal stamps give equal words; the rare unequal pair
    /// that collides keeps a flow in its last row for the rest of the bucket).
    @inline(__always)
    var mixed: Int {
        var hash = (UInt64(uid) | UInt64(confidence) << 32 | UInt64(UInt32(bitPattern: pid)) << 40) &* 0x9E37_79B9_7F4A_7C15
        hash ^= cgroupID &* 0xBF58_476D_1CE4_E5B9
        return Int(bitPattern: UInt(hash ^ (hash >> 29)))
    }
}

/// One metric series: its labels. `remote` is "" unless remote labels are on.
public struct MetricSeries: Sendable, Hashable {
    public var unit: String
    public var user: String
    public var program: String
    public var direction: TrafficDirection
    public var proto: String
    public var remote: String
    /// "" unless cgroup labels are on (the live view groups by cgroup; the metrics do not).
    public var cgroup: String

    public init(unit: String, user: String, program: String, direction: TrafficDirection, proto: String, remote: String,
                cgroup: String = "") {
        self.cgroup = cgroup
        self.unit = unit
        self.user = user
        self.program = program
        self.direction = direction
        self.proto = proto
        self.remote = remote
    }
}

/// A flow's last second, the bucket and row it was last counted in, and its owner's stamp
/// (hashed): 24 bytes.
private struct FlowMemo: Sendable, Equatable {
    /// Seconds since the epoch, low 32 bits (wraps in 2106; a difference stays right until then).
    var lastSeen: UInt32
    /// Which bucket its row is in (`openedBuckets` when it was written): not the bucket's start,
    /// which a bucket opened after `finish()` can share with the one before.
    var bucket: UInt32
    var row: Int32
    var stamp: Int
}

/// The bucket being filled: rows in arrays (a flow's memo holds its row's index), a dictionary
/// from key to index for rows not memoized yet.
private struct OpenBucket: Sendable {
    let start: Int64
    let seconds: Int
    let mode: AccountingMode
    var keys: [AccountingKey] = []
    var counts: [AccountingCounts] = []
    var series: [Int] = []
    var index: [AccountingKey: Int] = [:]
    /// Distinct remotes per owner, direction and protocol (for `maxRemotes`).
    var remotes: [AccountingKey: Int] = [:]
    var unaccounted: UInt64 = 0

    init(start: Int64, seconds: Int, mode: AccountingMode) {
        self.start = start
        self.seconds = seconds
        self.mode = mode
    }

    /// The row a packet goes to: an existing one's index, or the key of a new row (folded into
    /// "other" when a bound is reached).
    func place(_ owner: TrafficOwner, direction: TrafficDirection, protocolNumber: UInt8, remote: IPAddress,
               remotePort: UInt16?, limits: TrafficAggregator.Limits) -> Placement {
        let proto = IPProtocolNames.name(for: protocolNumber) ?? String(protocolNumber)
        let ownerKey = AccountingKey(unit: owner.unit, cgroup: owner.cgroup, user: owner.user, program: owner.program,
                                     direction: direction, proto: proto)
        var key = ownerKey
        key.remoteAddress = remote.description
        key.remotePort = remotePort
        if let existing = index[key] { return .existing(existing) }
        var folded = true
        if remotes[ownerKey, default: 0] >= limits.maxRemotes {
            key.remoteAddress = AccountingKey.other
            key.remotePort = nil
        } else if keys.count >= limits.maxRows {
            key = AccountingKey(unit: AccountingKey.other, cgroup: AccountingKey.other, user: AccountingKey.other,
                                program: AccountingKey.other, direction: direction, proto: proto,
                                remoteAddress: AccountingKey.other)
        } else {
            folded = false
        }
        if let existing = index[key] { return .existing(existing, folded: folded) }
        return .new(key, owner: ownerKey, folded: folded)
    }

    enum Placement {
        case existing(Int, folded: Bool = false)
        case new(AccountingKey, owner: AccountingKey, folded: Bool)
    }

    mutating func insert(_ key: AccountingKey, owner: AccountingKey, series: Int) -> Int {
        if key.remoteAddress != AccountingKey.other { remotes[owner, default: 0] += 1 }
        index[key] = keys.count
        keys.append(key)
        counts.append(AccountingCounts())
        self.series.append(series)
        return keys.count - 1
    }

    func closed() -> TrafficBucket {
        var rows: [AccountingKey: AccountingCounts] = [:]
        rows.reserveCapacity(keys.count)
        for (offset, key) in keys.enumerated() { rows[key] = counts[offset] }
        return TrafficBucket(start: start, seconds: seconds, mode: mode, rows: rows, unaccountedPackets: unaccounted)
    }
}
