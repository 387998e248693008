import NetfilterSystem
import NetlinkWire
import PacketModel

/// NFLOG with an NFQUEUE queue beside it, read by one receive loop: hold mode. The rules hold
/// each new TCP connection's SYN and each ping's echo request in the queue; the consumer
/// resolves the packet's owner while the sender still waits for its answer, then accepts it;
/// the packet goes on to nfowner's NFLOG rules and becomes an event there, its owner already
/// known. The queue's socket is read first: a held packet delays its sender.
public final class HoldingSource: PacketSource, @unchecked Sendable {
    public let log: NflogSource
    public let queue: NfqueueSource

    public init(log: NflogSource, queue: NfqueueSource) {
        self.log = log
        self.queue = queue
    }

    public var socket: NetlinkSocket { log.socket }
    public var urgentSockets: [NetlinkSocket] { [queue.socket] + log.urgentSockets }
    public var urgentOrigin: UInt16? { log.urgentOrigin }
    public var receiveBufferSize: Int { max(log.receiveBufferSize, queue.receiveBufferSize) }
    public var coalesceMicroseconds: UInt32 { log.coalesceMicroseconds }
    public var socketReceiveBufferBytes: Int { log.socketReceiveBufferBytes }

    /// NFLOG's counters (the events), with the queue's malformed messages added; what was
    /// held is in `held`.
    public var counters: SourceCounters {
        var counters = log.counters
        counters.malformed += queue.counters.malformed
        counters.held = queue.counters.received
        counters.heldVerdictFailures = queue.verdictFailures
        return counters
    }

    /// Each datagram holds messages of one subsystem: the first header's type says which.
    public func process(datagram: UnsafeRawBufferPointer, into consumer: any PacketConsumer) {
        guard datagram.count >= 6,
              datagram.loadUnaligned(fromByteOffset: 4, as: UInt16.self) >> 8 == NetlinkMessageType.nfqueueSubsystem
        else {
            log.process(datagram: datagram, into: consumer)
            return
        }
        queue.process(datagram: datagram, into: consumer)
    }

    public func readMetadata(of packet: UnsafeSourcePacket, receivedAt: EventTime, into metadata: inout PacketMetadata) {
        if packet.origin.kind == .nfqueue {
            queue.readMetadata(of: packet, receivedAt: receivedAt, into: &metadata)
        } else {
            log.readMetadata(of: packet, receivedAt: receivedAt, into: &metadata)
        }
    }

    public func recordWakeup() { log.recordWakeup() }
    public func recordOverrun() { log.recordOverrun() }
    public func recordTruncatedDatagram() { log.recordTruncatedDatagram() }
    public func stopDelivery() { log.stopDelivery() }

    public func close() {
        queue.close()
        log.close()
    }
}
