import Export
import NetfilterSystem
import NetlinkWire
import PacketParsing
import ProcessResolution
import Rules

/// Turns received NFLOG batches into events: decode, parse, attribute, count.
///
/// No I/O of its own except name lookups (cached), so unit tests feed it recorded or built
/// batches. The receive loop owns one and calls `process` for every datagram.
public struct BatchProcessor {
    public private(set) var counters = MonitorCounters()
    private var gaps = SequenceGapTracker()
    private var owners: OwnerNames
    private var interfaces: InterfaceNames
    /// Stop emitting after this many events (nil: no limit).
    public var eventLimit: UInt64?
    /// Whether events are built at all (`--format none` still parses and counts).
    public var buildsEvents: Bool
    private let clock: () -> EventTime
    /// cgroup id → path and unit; nil when there is no cgroup2 (events then carry only the id).
    private let cgroups: CgroupNames?
    /// Names the process behind each packet; nil when owner resolution is off.
    private let attributor: (any PacketAttributing)?

    public init(eventLimit: UInt64? = nil, buildsEvents: Bool = true,
                owners: OwnerNames = OwnerNames(), interfaces: InterfaceNames = InterfaceNames(),
                cgroups: CgroupNames? = nil, attributor: (any PacketAttributing)? = nil,
                clock: @escaping () -> EventTime) {
        self.cgroups = cgroups
        self.attributor = attributor
        self.eventLimit = eventLimit
        self.buildsEvents = buildsEvents
        self.owners = owners
        self.interfaces = interfaces
        self.clock = clock
    }

    /// True once `eventLimit` events were emitted.
    public var isFinished: Bool {
        guard let eventLimit else { return false }
        return counters.emitted >= eventLimit
    }

    /// What a batch said besides packets: errors and acknowledgements for our requests.
    public struct Replies {
        public var errors: [(errno: Int32, sequence: UInt32)] = []
    }

    /// Processes one datagram from the NFLOG socket, calling `emit` for each event.
    @discardableResult
    public mutating func process(batch: UnsafeRawBufferPointer, emit: (PacketEvent) -> Void) -> Replies {
        counters.batches += 1
        currentBatchTime = nil
        var replies = Replies()
        // One receive time per batch: NFLOG has no timestamp at output, and every message in a
        // batch was queued within the flush timeout of the first.
        var receiveTime: EventTime?
        NflogBatchDecoder.forEachPacket(in: batch, packet: { packet in
            handle(packet, receiveTime: &receiveTime, emit: emit)
        }, other: { item in
            switch item {
            case .error(let errno, let sequence):
                if errno != 0 { replies.errors.append((errno, sequence)) }
            case .malformed:
                counters.parseErrors += 1
            case .packet, .done, .other:
                break
            }
        })
        return replies
    }

    private mutating func handle(_ message: NflogPacketView, receiveTime: inout EventTime?,
                                 emit: (PacketEvent) -> Void) {
        counters.received += 1
        if let sequence = message.sequence {
            counters.lost += gaps.record(group: message.group, sequence: sequence)
        }
        let uid = message.uid
        if uid != nil { counters.withOwner += 1 }
        let packet: PacketSummary
        do {
            // The message's family (NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10) must agree with the header.
            switch message.family {
            case 2: packet = try PacketParser.parse(message.payload, family: .ipv4)
            case 10: packet = try PacketParser.parse(message.payload, family: .ipv6)
            default: packet = try PacketParser.parse(message.payload)
            }
        } catch {
            counters.parseErrors += 1
            return
        }
        counters.bytes += UInt64(max(0, packet.totalLength))
        guard !isFinished else { return }
        counters.emitted += 1
        // Classification and owner resolution run even without output (`--format none`
        // measures the whole pipeline but formatting and printing).
        // The ruleset logs a classified packet with the prefix "nfowner cg=<id>".
        let cgroupID = message.prefixBytes.flatMap(CgroupClassifier.cgroupID(fromPrefixBytes:))
        let direction = Hook(family: message.family, number: message.hook)?.direction ?? .outbound
        guard buildsEvents else {
            // The owner is resolved all the same; only the result is not handed out. (Without a
            // cgroup no entry is made at all: nothing to release for every unclassified packet.)
            if let cgroupID, let cgroup = cgroups?.entry(forID: cgroupID) {
                attributor?.resolve(packet: packet, direction: direction, uid: uid, cgroupPath: cgroup.path,
                                    now: batchMonotonicTime())
            } else {
                attributor?.resolve(packet: packet, direction: direction, uid: uid, cgroupPath: nil,
                                    now: batchMonotonicTime())
            }
            return
        }
        let cgroup = cgroupID.flatMap { cgroups?.entry(forID: $0) }
        let attribution = attributor?.attribute(
            packet: packet, direction: direction, uid: uid, cgroupPath: cgroup?.path, now: batchMonotonicTime())
        // Only a packet that is shown needs every field, as a value that outlives the buffer.
        let record = message.record
        let time: EventTime
        if let stamp = record.timestamp {
            time = EventTime(seconds: stamp.seconds, microseconds: stamp.microseconds)
        } else if let receiveTime {
            time = receiveTime
        } else {
            time = clock()
            receiveTime = time
        }
        emit(PacketEvent(
            time: time, record: record, packet: packet,
            inputInterfaceName: record.inputInterface.flatMap { interfaces.name(of: $0) },
            outputInterfaceName: record.outputInterface.flatMap { interfaces.name(of: $0) },
            userName: record.uid.flatMap { owners.userName(of: $0) },
            groupName: record.gid.flatMap { owners.groupName(of: $0) },
            cgroupID: cgroupID, cgroupPath: cgroup?.path, unit: cgroup?.unit, attribution: attribution))
    }

    /// The monotonic receive time of the batch being processed, read once per batch.
    private var currentBatchTime: UInt64?
    private mutating func batchMonotonicTime() -> UInt64 {
        if let currentBatchTime { return currentBatchTime }
        let now = WallClock.monotonicNanoseconds()
        currentBatchTime = now
        return now
    }

    /// Counts a wait for packets (in recv, or in a coalescing pause).
    public mutating func recordWakeup() { counters.wakeups += 1 }

    /// Counts a receive that overran the socket buffer (ENOBUFS).
    public mutating func recordOverrun() { counters.enobufs += 1 }

    /// Counts a batch that did not fit our receive buffer.
    public mutating func recordTruncatedBatch() { counters.truncatedBatches += 1 }
}
