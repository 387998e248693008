/// The reasons an attribution of `none` gives that the summary line counts apart. Shared by the
/// attributor that writes them and the tally that reads them, so the two cannot drift.
public enum NoOwnerReason {
    /// An outbound packet the kernel made itself: a RST to a closed port, an ICMP error, its
    /// own echo reply.
    public static let kernelGenerated = "no socket: kernel-generated"
    /// The flow's socket is a TIME_WAIT socket and its owner was not seen.
    public static let timeWait = "no socket: time-wait"
    /// Followed by the state in parentheses: an orphaned or not yet accepted socket (no file).
    public static let kernelSocketPrefix = "socket owned by kernel"
    /// An inbound packet no local socket receives (the kernel answers it, or drops it).
    public static let notDelivered = "no socket: none receives it"
}

/// What the summary line counts a packet as: its confidence, and for `none` the kind of reason.
public enum AttributionTally: Int, CaseIterable, Sendable {
    case exact, flow, single, program, candidates, uid
    case noneKernelGenerated, noneTimeWait, noneOrphaned, noneNotDelivered, noneOther

    /// Its key in the summary line (`confidence_exact`, `none_time_wait`, ...).
    public var key: String {
        switch self {
        case .exact: "confidence_exact"
        case .flow: "confidence_flow"
        case .single: "confidence_single"
        case .program: "confidence_program"
        case .candidates: "confidence_candidates"
        case .uid: "confidence_uid"
        case .noneKernelGenerated: "none_kernel_generated"
        case .noneTimeWait: "none_time_wait"
        case .noneOrphaned: "none_orphaned"
        case .noneNotDelivered: "none_not_delivered"
        case .noneOther: "none_other"
        }
    }

    /// Whether the packet had no owner at all (confidence `none`).
    public var isNone: Bool { rawValue >= AttributionTally.noneKernelGenerated.rawValue }
}

extension OwnerAttribution {
    /// How the summary line counts this attribution. Reads the reason only for `none`.
    public var tally: AttributionTally {
        switch confidence {
        case .exact: .exact
        case .flow: .flow
        case .single: .single
        case .program: .program
        case .candidates: .candidates
        case .uid: .uid
        case .none:
            switch reason {
            case NoOwnerReason.kernelGenerated: .noneKernelGenerated
            case NoOwnerReason.timeWait: .noneTimeWait
            case NoOwnerReason.notDelivered: .noneNotDelivered
            case let reason? where reason.hasPrefix(NoOwnerReason.kernelSocketPrefix): .noneOrphaned
            default: .noneOther
            }
        }
    }
}

/// Packets counted per `AttributionTally`, in fixed storage (no heap: the counters are copied
/// for other threads once per datagram).
public struct AttributionTallies: Sendable, Equatable {
    private var counts = SIMD16<UInt64>()

    public init() {}

    @inline(__always)
    public mutating func add(_ tally: AttributionTally) { counts[tally.rawValue] &+= 1 }

    public subscript(_ tally: AttributionTally) -> UInt64 { counts[tally.rawValue] }

    /// Packets of confidence `none`, whatever the reason.
    public var none: UInt64 {
        AttributionTally.allCases.lazy.filter(\.isNone).reduce(0) { $0 + self[$1] }
    }

    /// ` confidence_exact=N ... confidence_none=N none_kernel_generated=N ...`: every confidence
    /// in the order of `AttributionTally`, `confidence_none` the sum of the `none_*` keys after it.
    public var summaryKeys: String {
        var text = ""
        for tally in AttributionTally.allCases where !tally.isNone { text += " \(tally.key)=\(self[tally])" }
        text += " confidence_none=\(none)"
        for tally in AttributionTally.allCases where tally.isNone { text += " \(tally.key)=\(self[tally])" }
        return text
    }
}
