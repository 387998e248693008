/// What the monitor counted; printed as the `key=value` summary line on exit.
///
/// The summary line is a public contract (docs/monitor.md): keys are only ever added.
public struct MonitorCounters: Sendable, Equatable {
    /// NFLOG packet messages decoded (including ones whose IP header did not parse).
    public var received: UInt64 = 0
    /// Messages the kernel numbered but we never saw (gaps in NFULA_SEQ, per group).
    public var lost: UInt64 = 0
    /// Receive-buffer overruns reported by the kernel (ENOBUFS): each is one or more lost batches.
    public var enobufs: UInt64 = 0
    /// Packets whose IP header could not be parsed, plus malformed netlink messages.
    public var parseErrors: UInt64 = 0
    /// Batches larger than our receive buffer (MSG_TRUNC): their tail was lost.
    public var truncatedBatches: UInt64 = 0
    /// Packets emitted as events (received minus parse errors; bounded by --count).
    public var emitted: UInt64 = 0
    /// IP datagram bytes of the received packets, from their headers.
    public var bytes: UInt64 = 0
    /// Packets that carried an owner uid.
    public var withOwner: UInt64 = 0
    /// recv() calls that returned data.
    public var batches: UInt64 = 0
    /// Times the receive thread waited for packets: blocked in recv(), or paused to let batches
    /// collect (`batches / wakeups` is how many batches each wakeup took).
    public var wakeups: UInt64 = 0

    public init() {}

    /// e.g. `received=12 lost=0 enobufs=0 parse_errors=0 emitted=12 ...`
    public func summaryLine(durationSeconds: Double, groups: [UInt16]) -> String {
        let groupList = groups.map(String.init).joined(separator: ",")
        let seconds = (durationSeconds * 1000).rounded() / 1000
        return "received=\(received) lost=\(lost) enobufs=\(enobufs) parse_errors=\(parseErrors) "
            + "emitted=\(emitted) with_owner=\(withOwner) bytes=\(bytes) batches=\(batches) "
            + "truncated_batches=\(truncatedBatches) groups=\(groupList) duration_s=\(seconds) wakeups=\(wakeups)"
    }
}

/// Counts messages lost between the ones we received, from NFLOG's per-group sequence numbers.
///
/// The kernel numbers each group's messages when it builds them (NFULNL_CFG_F_SEQ), so a gap
/// is exactly the number of messages dropped, whatever dropped them (a full socket buffer, a
/// truncated batch).
public struct SequenceGapTracker: Sendable {
    /// The group of the previous message and the sequence expected next from it: nearly every
    /// message comes from the same group as the one before, and this runs for every message.
    private var lastGroup: UInt16?
    private var lastExpected: UInt32 = 0
    /// The other groups' expected sequences (a monitor may bind several).
    private var others: [UInt16: UInt32] = [:]

    public init() {}

    /// Records `sequence` for `group` and returns how many messages were skipped before it.
    /// A sequence that goes backwards (instance re-created, or reordering) restarts tracking.
    @inline(__always)
    public mutating func record(group: UInt16, sequence: UInt32) -> UInt64 {
        guard group == lastGroup else { return recordSwitchingGroup(group, sequence) }
        let gap = sequence &- lastExpected
        lastExpected = sequence &+ 1
        return Self.loss(gap)
    }

    /// A message from another group than the previous one (rare: only with several groups).
    @inline(never)
    private mutating func recordSwitchingGroup(_ group: UInt16, _ sequence: UInt32) -> UInt64 {
        if let lastGroup { others[lastGroup] = lastExpected }
        let expected = others[group]
        lastGroup = group
        lastExpected = sequence &+ 1
        guard let next = expected else { return 0 }
        return Self.loss(sequence &- next)
    }

    /// More than half the sequence space ahead means "behind": a restart, not a loss.
    @inline(__always)
    private static func loss(_ gap: UInt32) -> UInt64 {
        gap < 0x8000_0000 ? UInt64(gap) : 0
    }
}
