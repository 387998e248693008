import NetfilterSystem
import PacketModel
import PacketParsing

/// Where attributed packets go. The session fans every packet out to its sinks, building for
/// each only what the most demanding one needs (`needs`): counting sinks never force an event.
///
/// Adding a sink: one type conforming to this protocol (in this folder, or next to the feature
/// that owns it), and one line that appends it to the session's `sinks`.
public protocol PacketSink: AnyObject {
    /// What this sink reads per packet.
    var needs: SinkNeeds { get }
    /// Once, before the first packet (a header).
    func start() throws(SinkError)
    /// A packet, for sinks whose `needs` is `.facts`.
    func consume(_ facts: borrowing PacketFacts)
    /// A packet, for sinks whose `needs` is `.events`. `payload` is the packet's captured bytes,
    /// valid only during the call.
    func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer)
    /// After each received datagram (a batch of packets): where buffered output is written.
    func flush() throws(SinkError)
    /// About twice a second, busy or idle, on the receive thread: where time-driven work goes
    /// (closing a time bucket when no packet arrives).
    func tick()
    /// Once, when the run ends (after the last flush).
    func finish()
}

extension PacketSink {
    public func start() throws(SinkError) {}
    public func consume(_ facts: borrowing PacketFacts) {}
    public func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) {}
    public func flush() throws(SinkError) {}
    public func tick() {}
    public func finish() {}
}

/// How much of each packet a sink reads, cheapest first.
public enum SinkNeeds: Int, Sendable, Comparable {
    /// Nothing per packet: the session's counters are enough (the summary line).
    case counters
    /// Headers, owner ids and attribution (`PacketFacts`): no names, no metadata copy.
    case facts
    /// Whole events (`PacketEvent`): names, interfaces, prefix, time.
    case events

    public static func < (lhs: SinkNeeds, rhs: SinkNeeds) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// What a counting sink gets per packet: its headers, direction and owner ids, and the
/// attribution when owner resolution is on. Cheaper than an event: no names, no metadata.
///
/// Not copyable: the session lends one to each sink. A copy would retain the attribution's
/// strings, process list and cgroup per packet and sink (as an existential call on a value read
/// through a pointer did), and a sink has no reason to keep one.
public struct PacketFacts: ~Copyable {
    public var packet: PacketSummary
    public var direction: Direction
    public var uid: UInt32?
    public var gid: UInt32?
    /// The cgroup the ruleset classified the packet into (the log prefix's id). The named
    /// process's own cgroup, which events report instead, is `attribution?.cgroup`.
    public var cgroupID: UInt64?
    public var attribution: OwnerAttribution?
    /// The packet's flow: protocol, both ends, direction and uid (see `FlowKey`).
    public var flow: FlowKey
    /// True when the packet handed out just before this one had the same flow, classified
    /// cgroup and attribution: only its length can differ. A counting sink can then add it to
    /// where it put that one without looking at anything else (the usual case: a flow's packets
    /// come in runs).
    public var repeatsPrevious: Bool
    /// Makes the facts an address-only type, lent to each sink by address rather than copied to
    /// a temporary per call (see `PacketEvent.lentByAddress`); holds nothing.
    @usableFromInline let lentByAddress: any Sendable = ()

    public init(packet: PacketSummary, direction: Direction, uid: UInt32?, gid: UInt32?, cgroupID: UInt64?,
                attribution: OwnerAttribution?, flow: FlowKey? = nil, repeatsPrevious: Bool = false) {
        self.packet = packet
        self.direction = direction
        self.uid = uid
        self.gid = gid
        self.cgroupID = cgroupID
        self.attribution = attribution
        self.flow = flow ?? FlowKey(packet: packet, direction: direction, uid: uid)
        self.repeatsPrevious = repeatsPrevious
    }
}

/// Why a sink could not take more packets (the shared `DomainError` shape).
public typealias SinkError = DomainError<SinkErrorCode>

public struct SinkErrorCode: DomainErrorCode {
    private enum Backing: String, Sendable {
        case outputClosed
        case writeFailed
    }
    private let backing: Backing
    private init(_ backing: Backing) { self.backing = backing }

    /// The reader went away (EPIPE): a normal end for `monitor | head`.
    public static let outputClosed = SinkErrorCode(.outputClosed)
    /// Writing failed otherwise (disk full, I/O error).
    public static let writeFailed = SinkErrorCode(.writeFailed)

    public var description: String { backing.rawValue }
}
