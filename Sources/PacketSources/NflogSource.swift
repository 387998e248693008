import NetfilterSystem
import NetlinkWire
import PacketModel

/// NFLOG as a packet source: a subscription to one or more groups, whose batches are decoded in
/// place (`NflogPacketView`) into `UnsafeSourcePacket`s, with loss counted from the kernel's
/// per-group sequence numbers.
public final class NflogSource: PacketSource, @unchecked Sendable {
    private let subscription: NflogSubscription?
    // Touched for every message by the receive thread alone: no runtime exclusivity checks.
    @exclusivity(unchecked) public private(set) var counters = SourceCounters()
    @exclusivity(unchecked) private var gaps = SequenceGapTracker()
    /// Errors the kernel answered with inside the packet stream (requests of ours that failed).
    public private(set) var errorReplies: [(errno: Int32, sequence: UInt32)] = []

    /// Subscribes to the groups in `settings` (see `NflogSubscription`).
    public convenience init(settings: NflogSettings) throws(SourceError) {
        self.init(subscription: try NflogSubscription(settings: settings))
    }

    /// `subscription` nil: a decoder only, fed by hand (tests, benchmarks, recorded batches).
    public init(subscription: NflogSubscription?) {
        self.subscription = subscription
    }

    public var socket: NetlinkSocket {
        guard let subscription else { preconditionFailure("a decode-only NFLOG source has no socket") }
        return subscription.socket
    }

    /// The new-flow group's socket (see `NflogSettings.newFlowGroup`).
    public var urgentSockets: [NetlinkSocket] { subscription?.newFlowSocket.map { [$0] } ?? [] }
    public var urgentOrigin: UInt16? { subscription?.newFlowSocket == nil ? nil : subscription?.settings.newFlowGroup }

    public var settings: NflogSettings { subscription?.settings ?? NflogSettings() }

    public var receiveBufferSize: Int { max(256 << 10, Int(settings.netlinkBufferSize) * 2) }
    public var coalesceMicroseconds: UInt32 { settings.coalesceMicroseconds }
    public var socketReceiveBufferBytes: Int { settings.socketReceiveBuffer }

    public func process(datagram: UnsafeRawBufferPointer, into consumer: any PacketConsumer) {
        counters.batches += 1
        NflogBatchDecoder.forEachPacket(in: datagram, packet: { message in
            counters.received += 1
            if let sequence = message.sequence {
                counters.lost += gaps.record(group: message.group, sequence: sequence)
            }
            consumer.consume(UnsafeSourcePacket(
                origin: PacketOrigin(kind: .nflog, number: message.group), payload: message.payload,
                family: message.family, hookNumber: message.hook, uid: message.uid, gid: message.gid,
                label: message.prefixBytes ?? UnsafeRawBufferPointer(start: nil, count: 0),
                message: message.message))
        }, other: { item in
            switch item {
            case .error(let errno, let sequence):
                if errno != 0 { errorReplies.append((errno, sequence)) }
            case .malformed:
                counters.malformed += 1
            case .packet, .done, .other:
                break
            }
        })
    }

    /// The oldest a kernel timestamp may be, in seconds before the receive time, to be taken.
    static let plausibleStampAge: UInt64 = 120

    public func readMetadata(of packet: UnsafeSourcePacket, receivedAt: EventTime, into metadata: inout PacketMetadata) {
        metadata.origin = packet.origin
        metadata.family = packet.family
        metadata.hookNumber = packet.hookNumber
        metadata.time = receivedAt
        metadata.capturedLength = packet.payload.count
        // The message was validated when it was delivered: one walk reads the rest.
        var fields = NflogPacketView.EventFields()
        _ = NflogPacketView.readEventFields(ofValidatedMessage: packet.message, into: &fields)  // none without nfgenmsg
        // A packet that crossed a veth from another namespace can carry TCP's departure time,
        // on the monotonic clock (seconds since boot), as its timestamp: only a stamp near the
        // receive time is wall-clock time. A batch waits at most the longest flush timeout (60 s).
        if let stamp = fields.timestamp, stamp.seconds &+ Self.plausibleStampAge >= receivedAt.seconds,
           stamp.seconds <= receivedAt.seconds &+ 1 {
            metadata.time = EventTime(seconds: stamp.seconds, microseconds: stamp.microseconds)
        }
        metadata.sequence = fields.sequence
        metadata.inputInterface = fields.inputInterface
        metadata.outputInterface = fields.outputInterface
        metadata.mark = fields.mark
        if packet.label.count > 0 {
            let bytes = packet.label
            let summary = metadata.prefixSummary
            let same = summary.isExact ? summary.matches(bytes) : metadata.prefix?.equals(bytes) == true
            if !same { metadata.prefix = LogPrefix(bytes: bytes) }
        } else if !metadata.prefixSummary.isAbsent {
            metadata.prefix = nil
        }
    }

    public func recordWakeup() { counters.wakeups += 1 }
    public func recordOverrun() { counters.enobufs += 1 }
    public func recordTruncatedDatagram() { counters.truncatedBatches += 1 }

    /// Unbinding a group flushes the batch the kernel was still collecting to our socket.
    public func stopDelivery() { subscription?.unbind() }

    public func close() { subscription?.close() }
}
