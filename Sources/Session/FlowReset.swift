import Attribution
import NetfilterSystem
import NetlinkWire
import PacketModel
import PacketParsing
import Policy

/// `--reset-flows`: after a reload, the established outbound TCP and UDP flows the new policy
/// denies or rejects lose their conntrack entries (ctnetlink delete); their next packet starts
/// a new entry (conntrack picks TCP up mid-stream), reaches the decision chain as a new flow and
/// is decided by the new policy. A denied TCP connection's local socket is also closed
/// (SOCK_DESTROY, where the kernel has it): deleting the entry alone loses a race — when the
/// peer's next segment (an ACK) arrives first, it starts the new entry, the connection's own
/// packets are then its replies, established, and never decided again. The application's next
/// call fails with ECONNABORTED and the peer gets a reset.
///
/// Only flows whose socket nfowner finds on this host (an `exact` owner of the flow's reply, so
/// the socket's local end is the flow's source) are judged: an entry of a forwarded, NATed or inbound flow is never deleted. The
/// owner's uid is the socket's; gid and group matchers do not match here (a socket lookup gives
/// no gid). ICMP entries are left alone: every echo request is decided anyway.
enum FlowReset {
    struct Outcome: Equatable {
        /// Conntrack entries read, and those judged (TCP/UDP with a socket of this host).
        var entries = 0
        var examined = 0
        var deleted = 0
        var failures = 0
        /// Local TCP sockets of denied connections closed (SOCK_DESTROY).
        var closed = 0
        /// Why sockets could not be closed (the first reason), if any.
        var closeProblem: String?
    }

    /// Dumps the conntrack table of the current namespace and deletes the entries `policy` denies
    /// or rejects. Runs on the receive thread (the engine is its own); takes as long as the dump.
    static func run(policy: Policy, engine: AttributionEngine, decide: (PolicySubject, PacketOwner) -> PolicyDecision,
                    report: (String) -> Void) -> Outcome {
        var outcome = Outcome()
        let socket: NetlinkSocket
        do { socket = try NetlinkSocket(protocol: NetlinkSocket.netfilterProtocol) } catch {
            report("--reset-flows: cannot open a ctnetlink socket: \(error)")
            return outcome
        }
        defer { socket.close() }
        let entries: [ConntrackEntry]
        do { entries = try dump(on: socket) } catch {
            report("--reset-flows: cannot read the conntrack table: \(error)")
            return outcome
        }
        outcome.entries = entries.count
        let now = WallClock.monotonicNanoseconds()
        var sequence: UInt32 = 2
        for entry in entries {
            guard entry.protocolNumber == 6 || entry.protocolNumber == 17, let packet = packet(of: entry),
                  let reply = Self.packet(of: entry, reversed: true)
            else { continue }
            // The socket is found as the receiver of the flow's reply: its local end is the
            // original source (for an inbound or forwarded flow there is no such socket here).
            let owner = engine.owner(reply, direction: .inbound, uid: nil, gid: nil, cgroupID: nil, now: now)
            guard owner.attribution?.confidence == .exact else { continue }
            outcome.examined += 1
            let decision = decide(PolicySubject(packet: packet, direction: .outbound), owner)
            guard decision.action != .allow else { continue }
            sequence &+= 1
            do {
                try socket.send(ConntrackMessages.delete(entry, sequence: sequence))
                if try answer(on: socket, sequence: sequence) == 0 { outcome.deleted += 1 } else { outcome.failures += 1 }
            } catch {
                outcome.failures += 1
            }
            if entry.protocolNumber == 6, outcome.closeProblem == nil { closeSocket(of: packet, into: &outcome) }
        }
        return outcome
    }

    /// Closes the local TCP socket of the connection whose first packet is `packet` (its source
    /// is this host's end).
    private static func closeSocket(of packet: PacketSummary, into outcome: inout Outcome) {
        guard let sourcePort = packet.sourcePort, let destinationPort = packet.destinationPort else { return }
        do {
            let diagnostics = try SocketDiagnostics()
            if try diagnostics.destroyTCP(local: SocketEndpoint(packet.source, sourcePort),
                                          remote: SocketEndpoint(packet.destination, destinationPort)) {
                outcome.closed += 1
            }
        } catch {
            outcome.closeProblem = error.description
        }
    }

    /// The entry's original direction as a packet (no length, no flags); `reversed`: its reply.
    static func packet(of entry: ConntrackEntry, reversed: Bool = false) -> PacketSummary? {
        guard var source = IPAddress(bytes: entry.source), var destination = IPAddress(bytes: entry.destination) else { return nil }
        var ports = PortPair(source: entry.sourcePort, destination: entry.destinationPort)
        if reversed {
            swap(&source, &destination)
            ports = PortPair(source: ports.destination, destination: ports.source)
        }
        let transport: TransportInfo = entry.protocolNumber == 6 ? .tcp(TCPInfo(ports: ports, flags: nil)) : .udp(ports)
        return PacketSummary(family: entry.family == 10 ? .ipv6 : .ipv4, source: source, destination: destination,
                             protocolNumber: entry.protocolNumber, totalLength: 0, fragment: nil, transport: transport)
    }

    /// Every entry of the table (a dump ends with NLMSG_DONE; a bounded wait for each part).
    private static func dump(on socket: NetlinkSocket) throws -> [ConntrackEntry] {
        try socket.send(ConntrackMessages.dump(sequence: 1))
        let buffer = UnsafeMutableRawBufferPointer.allocateForKernelCopies(byteCount: 1 << 18)
        defer { buffer.deallocate() }
        var entries: [ConntrackEntry] = []
        var finished = false
        var failure: Int32?
        while !finished {
            guard try !waitReadable([socket.descriptor], timeoutMilliseconds: 2000).isEmpty else {
                throw SessionError("no answer from ctnetlink within 2 s")
            }
            guard case .bytes(let count) = try socket.receive(into: buffer, nonBlocking: true) else {
                throw SessionError("the conntrack dump did not fit the receive buffer")
            }
            ConntrackDecoder.forEachItem(in: UnsafeRawBufferPointer(rebasing: buffer[0..<count])) { item in
                switch item {
                case .entry(let entry): entries.append(entry)
                case .done: finished = true
                case .error(let errno, _) where errno != 0:
                    failure = errno
                    finished = true
                default: break
                }
            }
        }
        if let failure { throw SessionError("ctnetlink refused the dump: \(Errno.describe(failure))") }
        return entries
    }

    private static func answer(on socket: NetlinkSocket, sequence: UInt32) throws -> Int32 {
        let buffer = UnsafeMutableRawBufferPointer.allocateForKernelCopies(byteCount: 1 << 12)
        defer { buffer.deallocate() }
        for _ in 0..<16 {
            guard try !waitReadable([socket.descriptor], timeoutMilliseconds: 1000).isEmpty,
                  case .bytes(let count) = try socket.receive(into: buffer, nonBlocking: true)
            else { break }
            var code: Int32?
            ConntrackDecoder.forEachItem(in: UnsafeRawBufferPointer(rebasing: buffer[0..<count])) { item in
                if case .error(let errno, let replySequence) = item, replySequence == sequence { code = errno }
            }
            if let code { return code }
        }
        return -1
    }
}
