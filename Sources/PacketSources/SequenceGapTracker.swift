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
