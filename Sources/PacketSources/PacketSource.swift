import NetfilterSystem
import PacketModel

/// Where packets come from: a kernel interface (NFLOG, NFQUEUE; capture files next) that
/// delivers datagrams, decodes each into `UnsafeSourcePacket`s for a consumer, and keeps its own
/// loss accounting. The receive loop drives any source; the session owns it.
///
/// Adding a source: a type conforming to this protocol in this folder (see `NflogSource`), and
/// the session choosing it.
public protocol PacketSource: AnyObject {
    /// The socket the receive loop reads.
    var socket: NetlinkSocket { get }
    /// Further sockets whose datagrams must not wait for a coalescing pause (each flow's first
    /// packet; held packets): read before `socket`, in this order, and watched during a pause.
    var urgentSockets: [NetlinkSocket] { get }
    /// True when the kernel writes each packet to `socket` in the sender's own system call (a
    /// queue: NFQUEUE), so a datagram read after the socket was seen empty was sent after that
    /// moment (see `EmptyQueueMark`). False for NFLOG's batches, which wait in the kernel.
    var writesAtSendTime: Bool { get }
    /// The NFLOG group each flow's first packet arrives on (an urgent socket's), nil when none.
    var urgentOrigin: UInt16? { get }
    /// Bytes the loop's receive buffer needs: a smaller one truncates batches (MSG_TRUNC).
    var receiveBufferSize: Int { get }
    /// Under load, wake at most once per this many microseconds (0: wake for each datagram).
    /// Zero for queues: a held packet waits for its verdict.
    var coalesceMicroseconds: UInt32 { get }
    /// The socket's kernel receive buffer, in bytes (it bounds a coalescing pause).
    var socketReceiveBufferBytes: Int { get }
    /// What the source counted: received, lost, malformed, batches, wakeups.
    var counters: SourceCounters { get }

    /// Decodes one datagram and hands each packet in it to `consumer`, counting as it goes.
    func process(datagram: UnsafeRawBufferPointer, into consumer: any PacketConsumer)
    /// Writes into `metadata` everything the source knows of `packet` besides its bytes and
    /// owner (read only for packets that become events); `receivedAt` is used when the kernel
    /// sent no time. In place: the previous packet's prefix is kept when it is the same.
    func readMetadata(of packet: UnsafeSourcePacket, receivedAt: EventTime, into metadata: inout PacketMetadata)

    /// Counts a wait for packets (in recv, or in a coalescing pause).
    func recordWakeup()
    /// Counts a receive that overran the socket buffer (ENOBUFS): one or more batches lost.
    func recordOverrun()
    /// Counts a datagram larger than the receive buffer (MSG_TRUNC): its tail was lost.
    func recordTruncatedDatagram()
    /// Asks the kernel to hand over what it still holds and to send no more (stopping: the loop
    /// then drains the sockets, so the summary covers every packet logged until now).
    func stopDelivery()
    /// Unsubscribes and closes the socket.
    func close()

    /// True while replies (NFQUEUE verdicts) wait to be sent together: the loop then sends
    /// them (`sendHeldReplies`) before it waits for the next datagram, and when it ends.
    var holdsReplies: Bool { get }
    func sendHeldReplies()
}

extension PacketSource {
    public var writesAtSendTime: Bool { false }
    public var holdsReplies: Bool { false }
    public func sendHeldReplies() {}
}

/// What a source feeds: the session's pipeline, or a test's collector.
///
/// A copying source (NFLOG) calls `consume`; a queue source (NFQUEUE) calls `decide` and gives
/// the kernel the verdict it returns, so one consumer serves both.
public protocol PacketConsumer: AnyObject {
    /// One packet; the view is valid only during the call.
    func consume(_ packet: UnsafeSourcePacket)
    /// One packet held by the kernel until this returns: consume it and say what becomes of it.
    func decide(_ packet: UnsafeSourcePacket) -> PacketVerdict
    /// Called before every datagram. `busySince` (monotonic ns): when the receive loop last
    /// stopped waiting; the datagram was queued about then or later (a loop busy resolving a
    /// burst of new flows reads their datagrams late, and their packets were sent before it
    /// read them, not within the flush timeout of the read). `sentAfter` (monotonic ns), for a
    /// datagram of a socket the kernel writes at send time (an urgent one, a queue's own): its
    /// packet was sent after this moment, when the socket's queue was seen empty (see
    /// `EmptyQueueMark`); nil otherwise.
    func beginDatagram(busySince: UInt64, sentAfter: UInt64?)
    /// Called after every datagram: where output is flushed. An ending stops the receive loop.
    func endDatagram() -> ReceiveLoop.Ending?
    /// True once the consumer wants no more packets (an event limit was reached).
    var isFinished: Bool { get }
}

extension PacketConsumer {
    public func beginDatagram(busySince: UInt64, sentAfter: UInt64?) {}

    /// Without a policy every held packet is accepted (the observing consumers).
    public func decide(_ packet: UnsafeSourcePacket) -> PacketVerdict {
        consume(packet)
        return .accept
    }
}

/// A source's loss and traffic accounting, the first half of the summary line.
public struct SourceCounters: Sendable, Equatable {
    /// Packet messages decoded (including ones whose IP header will not parse).
    public var received: UInt64 = 0
    /// Messages the kernel numbered but we never saw (sequence gaps, per group).
    public var lost: UInt64 = 0
    /// Receive-buffer overruns reported by the kernel (ENOBUFS): each is one or more lost batches.
    public var enobufs: UInt64 = 0
    /// Malformed netlink messages (the pipeline adds packets whose IP header does not parse).
    public var malformed: UInt64 = 0
    /// Datagrams larger than our receive buffer (MSG_TRUNC): their tail was lost.
    public var truncatedBatches: UInt64 = 0
    /// Datagrams (batches) received.
    public var batches: UInt64 = 0
    /// Times the receive thread waited for packets: blocked in recv(), or paused to let batches
    /// collect (`batches / wakeups` is how many batches each wakeup took).
    public var wakeups: UInt64 = 0
    /// Packets held in an NFQUEUE queue until their owner was resolved (hold mode), nil without one.
    public var held: UInt64?
    /// Verdicts on held packets the kernel did not take, nil without a queue.
    public var heldVerdictFailures: UInt64?

    public init() {}
}
