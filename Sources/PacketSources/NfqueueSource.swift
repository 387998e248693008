import NetfilterSystem
import NetlinkWire
import PacketModel

/// How the kernel should hand us queued packets. Units on every field.
public struct NfqueueSettings: Sendable, Equatable {
    /// The queue number (0…65535) the rules send packets to; must be free.
    public var queue: UInt16 = 5
    /// Bytes of each packet copied to us (the headers are enough to find the owner).
    public var copyRange: UInt32 = 128
    /// Packets held at once before the queue counts as full (then `failOpen` decides).
    public var maximumLength: UInt32 = 1024
    /// Accept packets the kernel cannot queue (queue full, message undeliverable) instead of
    /// dropping them: a slow monitor never blocks traffic.
    public var failOpen = true
    /// Socket receive buffer in bytes (SO_RCVBUFFORCE).
    public var socketReceiveBuffer: Int = 4 << 20

    public init() {}
}

/// NFQUEUE as a packet source: each held packet is handed to the consumer's `decide`, and the
/// verdict it returns goes back to the kernel at once (one small message per packet, written
/// into a buffer kept for it: no allocation per packet).
///
/// The kernel adds the socket owner's uid and gid (NFQA_CFG_F_UID_GID). When this source's
/// socket closes — the monitor exits or is killed — the kernel destroys the queue; the rules'
/// `--queue-bypass` then lets packets pass with nobody listening.
public final class NfqueueSource: PacketSource, @unchecked Sendable {
    public let settings: NfqueueSettings
    /// Answer allow and reject with NF_REPEAT and these marks (enforce mode's rules act on
    /// them); nil: accept is NF_ACCEPT and reject is a drop. Not part of `NfqueueSettings`,
    /// which travels inside every `Plan`.
    public let verdictMarks: VerdictMarks?
    private let queueSocket: NetlinkSocket?
    @exclusivity(unchecked) public private(set) var counters = SourceCounters()
    /// Verdicts the kernel did not take (the packet was gone, or the send failed).
    @exclusivity(unchecked) public private(set) var verdictFailures: UInt64 = 0
    @exclusivity(unchecked) private var nextSequence: UInt32 = 1
    /// Verdict messages written back to back, sent in one datagram (the kernel handles each
    /// message of it in turn): `verdictBatch` of them at most.
    private let verdictBuffer: UnsafeMutableRawBufferPointer
    /// The most verdicts held back before they are sent together; 1 sends each at once.
    public let verdictBatch: Int
    @exclusivity(unchecked) private var heldBytes = 0
    @exclusivity(unchecked) private var heldVerdicts = 0
    /// Sends made (one per verdict, or per batch of them).
    @exclusivity(unchecked) public private(set) var verdictSends: UInt64 = 0
    private var unbound = false

    /// Opens the socket and binds the queue with its settings, waiting for the kernel's answer
    /// so that a failure names its cause (queue taken, not root, no nfnetlink_queue).
    /// `verdictBatch` > 1: verdicts are held back and sent together when the loop has nothing
    /// more to read or that many wait (the loop must call `sendHeldReplies`; enforce mode does).
    public init(settings: NfqueueSettings, verdictMarks: VerdictMarks? = nil, verdictBatch: Int = 1) throws(SourceError) {
        self.settings = settings
        self.verdictMarks = verdictMarks
        self.verdictBatch = max(1, min(verdictBatch, 256))
        verdictBuffer = .allocateForKernelCopies(byteCount: NfqueueMessages.markedVerdictLength * max(1, min(verdictBatch, 256)))
        let socket: NetlinkSocket
        do {
            socket = try NetlinkSocket(protocol: NetlinkSocket.netfilterProtocol)
        } catch {
            verdictBuffer.deallocate()
            throw SourceError.openSocket(error)
        }
        queueSocket = socket
        _ = try? socket.setReceiveBufferSize(settings.socketReceiveBuffer, force: true)
        let flags = Self.configFlags(failOpen: settings.failOpen)
        let sequence = takeSequence()
        let request = NfqueueMessages.config(queue: settings.queue, sequence: sequence, [
            .command(.bind), .copyMode(.packet, range: settings.copyRange),
            .maximumLength(settings.maximumLength), .flags(flags, mask: [.uidGid, .failOpen, .gso]),
        ])
        let code: Int32
        do {
            code = try NetlinkExchange.send(request, on: socket, sequence: sequence,
                                            what: "bind NFQUEUE queue \(settings.queue)")
        } catch {
            socket.close()
            throw error
        }
        guard code == 0 else {
            socket.close()
            throw SourceError.queueBind(queue: settings.queue, errno: code)
        }
    }

    /// A decoder only, fed by hand (tests): verdicts are counted, not sent.
    public init(decodingOnly settings: NfqueueSettings = NfqueueSettings(), verdictMarks: VerdictMarks? = nil) {
        self.settings = settings
        self.verdictMarks = verdictMarks
        verdictBatch = 1
        queueSocket = nil
        unbound = true
        verdictBuffer = .allocateForKernelCopies(byteCount: NfqueueMessages.markedVerdictLength)
    }

    deinit { verdictBuffer.deallocate() }

    /// The queue's flags: the owner's uid/gid on each packet; GSO packets as they are (the
    /// kernel would otherwise segment each one in software before queueing it — nfowner reads
    /// only the headers and never gives a payload back, so an unsegmented packet, its checksum
    /// not filled in yet, is decided the same); fail-open when asked.
    public static func configFlags(failOpen: Bool) -> NfqueueConfigFlags {
        failOpen ? [.uidGid, .gso, .failOpen] : [.uidGid, .gso]
    }

    public var socket: NetlinkSocket {
        guard let queueSocket else { preconditionFailure("a decode-only NFQUEUE source has no socket") }
        return queueSocket
    }

    public var urgentSockets: [NetlinkSocket] { [] }
    /// A held packet is queued in the sender's system call (or, inbound, as it arrives).
    public var writesAtSendTime: Bool { true }
    public var urgentOrigin: UInt16? { nil }
    /// Held packets are small (`copyRange`) and come one per datagram.
    public var receiveBufferSize: Int { 64 << 10 }
    /// A held packet waits for its verdict: never pause.
    public var coalesceMicroseconds: UInt32 { 0 }
    public var socketReceiveBufferBytes: Int { settings.socketReceiveBuffer }

    /// The verdicts sent, by kind, with the mark set (for tests of a decode-only source).
    public private(set) var sentVerdicts: [(id: UInt32, code: NfqueueVerdictCode, mark: UInt32?)] = []

    public func process(datagram: UnsafeRawBufferPointer, into consumer: any PacketConsumer) {
        counters.batches += 1
        NfqueueDecoder.forEachItem(in: datagram) { item in
            switch item {
            case .packet(let view):
                counters.received += 1
                let verdict = consumer.decide(UnsafeSourcePacket(
                    origin: PacketOrigin(kind: .nfqueue, number: view.queue), payload: view.payload,
                    family: view.family, hookNumber: view.hook, uid: view.uid, gid: view.gid,
                    label: UnsafeRawBufferPointer(start: nil, count: 0), message: view.message))
                if let marks = verdictMarks {
                    switch verdict {
                    case .accept: answer(id: view.id, .repeat, mark: marks.mark(view.mark, with: marks.allow))
                    case .reject: answer(id: view.id, .repeat, mark: marks.mark(view.mark, with: marks.reject))
                    case .drop: answer(id: view.id, .drop)
                    }
                } else {
                    answer(id: view.id, verdict == .accept ? .accept : .drop)
                }
            case .error(let errno, _):
                // A verdict the kernel refused (ENOENT: the packet was no longer held).
                if errno != 0 { verdictFailures += 1 }
            case .malformed:
                counters.malformed += 1
            case .other:
                break
            }
        }
    }

    private func answer(id: UInt32, _ code: NfqueueVerdictCode, mark: UInt32? = nil) {
        let free = UnsafeMutableRawBufferPointer(rebasing: verdictBuffer[heldBytes...])
        let length = if let mark {
            NfqueueMessages.writeVerdict(queue: settings.queue, id: id, code, mark: mark, into: free)
        } else {
            NfqueueMessages.writeVerdict(queue: settings.queue, id: id, code, into: free)
        }
        guard queueSocket != nil else {
            sentVerdicts.append((id, code, mark))
            return
        }
        heldBytes += length
        heldVerdicts += 1
        if heldVerdicts >= verdictBatch { sendHeldReplies() }
    }

    public var holdsReplies: Bool { heldVerdicts > 0 }

    /// Sends the verdicts held back, in one datagram.
    public func sendHeldReplies() {
        guard heldVerdicts > 0, let queueSocket else { return }
        defer {
            heldBytes = 0
            heldVerdicts = 0
        }
        verdictSends += 1
        do {
            try queueSocket.send(bytes: UnsafeRawBufferPointer(rebasing: verdictBuffer[0..<heldBytes]))
        } catch {
            verdictFailures += UInt64(heldVerdicts)
        }
    }

    public func readMetadata(of packet: UnsafeSourcePacket, receivedAt: EventTime, into metadata: inout PacketMetadata) {
        metadata.origin = packet.origin
        metadata.family = packet.family
        metadata.hookNumber = packet.hookNumber
        metadata.time = receivedAt
        metadata.capturedLength = packet.payload.count
        metadata.sequence = nil
        metadata.prefix = nil
        let view = try? NfqueuePacketView(message: packet.message)
        metadata.inputInterface = view?.inputInterface
        metadata.outputInterface = view?.outputInterface
        metadata.mark = view?.mark
    }

    public func recordWakeup() { counters.wakeups += 1 }
    public func recordOverrun() { counters.enobufs += 1 }
    public func recordTruncatedDatagram() { counters.truncatedBatches += 1 }

    /// Unbinding makes the kernel drop what it still holds for us: packets not yet read are
    /// lost to the sender (TCP and ping retry), so a stop first drains, then unbinds (`close`).
    public func stopDelivery() {}

    public func close() {
        if !unbound, let queueSocket {
            unbound = true
            _ = try? queueSocket.send(NfqueueMessages.config(queue: settings.queue, sequence: takeSequence(),
                                                             [.command(.unbind)]))
        }
        queueSocket?.close()
    }

    private func takeSequence() -> UInt32 {
        defer { nextSequence &+= 1 }
        return nextSequence
    }
}
