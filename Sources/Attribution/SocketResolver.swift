// Packet → the socket that sent or receives it → the processes holding that socket.
//
//   TCP, UDP, UDP-Lite   sock_diag exact lookup (uid, inode, cgroup id, state)
//   ICMP/ICMPv6 echo     /proc/net/icmp{,6}: ping sockets, keyed by echo id (no diag handler);
//                        if none, raw ICMP sockets (setuid ping, traceroute)
//   anything else        /proc/net/raw{,6}: raw sockets of that protocol number
// then inode → pids through `SocketOwners`.
import NetlinkWire
import PacketModel
import PacketParsing

/// One socket found for a packet.
public struct ResolvedSocket: Sendable, Equatable {
    public var uid: UInt32
    /// 0 when the socket has no file (TIME_WAIT, not yet accepted): then `pids` is empty.
    public var inode: UInt64
    /// Only sock_diag reports it.
    public var cgroupID: UInt64?
    /// The TCP state (`InetDiagState`); for UDP established (connected) or close.
    public var state: UInt8
    /// The processes holding the socket now, ascending; empty when none was found.
    public var pids: [Int32]

    public init(uid: UInt32, inode: UInt64, cgroupID: UInt64?, state: UInt8, pids: [Int32]) {
        self.uid = uid
        self.inode = inode
        self.cgroupID = cgroupID
        self.state = state
        self.pids = pids
    }

    /// True for a TIME_WAIT socket: the connection is over, no process owns it.
    public var isTimeWait: Bool { state == InetDiagState.timeWait }
    /// True for a TCP connection the kernel set up that no process has accepted yet: a request
    /// socket, or one still in the accept queue (established, or close-wait when the peer has
    /// closed already). Such a socket has no file (inode 0); after close() an orphan is in
    /// another state (fin-wait, last-ack, closing).
    public var isAwaitingAccept: Bool {
        inode == 0 && [InetDiagState.synReceived, InetDiagState.newSynReceived, InetDiagState.established,
                       InetDiagState.closeWait].contains(state)
    }
    /// A short name of `state` ("time-wait", "established").
    public var stateName: String { InetDiagState.name(state) }
}

/// The socket(s) behind a packet and how they were found.
public struct SocketResolution: Sendable, Equatable {
    public enum Source: Sendable, Hashable {
        /// sock_diag exact lookup: exactly one socket.
        case sockDiag
        /// /proc/net/icmp{,6}: ping sockets with the packet's echo id.
        case procNetPing
        /// /proc/net/raw{,6}: raw sockets of the packet's protocol (each gets a copy).
        case procNetRaw
        /// /proc/net/packet: packet sockets of the frame's uid on its interface.
        case procNetPacket
    }

    public var source: Source
    /// Never empty. One for sock_diag; ping and raw lookups may find several candidates.
    public var sockets: [ResolvedSocket]

    public init(source: Source, sockets: [ResolvedSocket]) {
        self.source = source
        self.sockets = sockets
    }

    /// The first (for sock_diag: the only) socket.
    public var primary: ResolvedSocket? { sockets.first }
    /// Every pid holding any of the sockets, ascending.
    public var pids: [Int32] { Array(Set(sockets.flatMap(\.pids))).sorted() }
}

/// Resolves packets to sockets and processes. Not thread-safe; answers for the network
/// namespace of the thread that created it (sock_diag) and reads /proc/thread-self/net.
public final class SocketResolver: @unchecked Sendable {
    public let diagnostics: SocketDiagnostics
    public let procNet: ProcNetSockets
    public let owners: SocketOwners

    public init(diagnostics: SocketDiagnostics, procNet: ProcNetSockets = ProcNetSockets(),
                owners: SocketOwners = SocketOwners()) {
        self.diagnostics = diagnostics
        self.procNet = procNet
        self.owners = owners
    }

    /// Opens a sock_diag socket and uses /proc.
    public convenience init() throws(SocketLookupError) {
        self.init(diagnostics: try SocketDiagnostics())
    }

    /// The socket(s) of `packet`, or nil when none exists: kernel-generated packets (RST,
    /// ICMP errors), closed ports, a later fragment (no ports), or a packet too short to have
    /// ports. A TIME_WAIT socket is returned (inode 0, no pids, `isTimeWait`) so the caller can
    /// say "no socket: time-wait". Throws only when a lookup itself failed. `likelyHolders`
    /// names processes to read first when a socket's holder is not indexed (see `SocketOwners`);
    /// `refreshing` false never scans /proc at large for it (see `SocketOwners.pids`).
    public func resolve(packet: PacketSummary, direction: Direction, likelyHolders: () -> [Int32] = { [] },
                        refreshing: Bool = true) throws(SocketLookupError) -> SocketResolution? {
        let (localAddress, remoteAddress) = direction == .outbound
            ? (packet.source, packet.destination) : (packet.destination, packet.source)
        let ports: (source: UInt16?, destination: UInt16?)
        let transport: DiagProtocol
        switch packet.transport {
        case .tcp(let info):
            transport = .tcp
            ports = (info.ports.source, info.ports.destination)
        case .udp(let pair):
            transport = .udp
            ports = (pair.source, pair.destination)
        case .udpLite(let pair):
            transport = .udpLite
            ports = (pair.source, pair.destination)
        case .icmp(let info), .icmpv6(let info):
            return try resolveICMP(packet: packet, info: info, local: localAddress, remote: remoteAddress,
                                   likelyHolders: likelyHolders, refreshing: refreshing)
        case .notFirstFragment:
            return nil
        case .sctp, .gre, .esp, .ah, .other:
            return try resolveRaw(family: packet.family, protocolNumber: packet.protocolNumber,
                                  local: localAddress, remote: remoteAddress, likelyHolders: likelyHolders,
                                  refreshing: refreshing)
        }
        guard let sourcePort = ports.source, let destinationPort = ports.destination else { return nil }
        let (localPort, remotePort) = direction == .outbound
            ? (sourcePort, destinationPort) : (destinationPort, sourcePort)
        guard let info = try diagnostics.lookup(protocol: transport,
                                                local: SocketEndpoint(localAddress, localPort),
                                                remote: SocketEndpoint(remoteAddress, remotePort))
        else { return nil }
        let inode = UInt64(info.inode)
        let socket = ResolvedSocket(uid: info.uid, inode: inode, cgroupID: info.cgroupID, state: info.state,
                                    pids: owners.pids(forInode: inode, likelyHolders: likelyHolders,
                                                      refreshing: refreshing))
        return SocketResolution(source: .sockDiag, sockets: [socket])
    }

    /// The listening socket on the local address and port of TCP `packet`, or nil (not TCP, no
    /// listener). A connection the kernel has set up but no process has accepted yet (a request
    /// socket, or an established one still in the accept queue) has no file and no holder; the
    /// process that will accept it holds the listener. Found with an exact lookup whose remote
    /// end is the wildcard: the kernel's established lookup then misses and its listener lookup
    /// answers.
    public func resolveListener(packet: PacketSummary, direction: Direction,
                                refreshing: Bool = true) throws(SocketLookupError) -> SocketResolution? {
        guard case .tcp(let info) = packet.transport, let source = info.ports.source,
              let destination = info.ports.destination else { return nil }
        let (local, port) = direction == .outbound ? (packet.source, source) : (packet.destination, destination)
        let anywhere: IPAddress = switch local {
        case .v4: .v4(0)
        case .v6: .v6(high: 0, low: 0)
        }
        guard let found = try diagnostics.lookup(protocol: .tcp, local: SocketEndpoint(local, port),
                                                 remote: SocketEndpoint(anywhere, 0)),
              found.state == InetDiagState.listen, found.inode != 0
        else { return nil }
        let inode = UInt64(found.inode)
        let socket = ResolvedSocket(uid: found.uid, inode: inode, cgroupID: found.cgroupID, state: found.state,
                                    pids: owners.pids(forInode: inode, refreshing: refreshing))
        return SocketResolution(source: .sockDiag, sockets: [socket])
    }

    /// The packet sockets that may have sent a frame on `interface` as `uid` (see
    /// `ProcNetSockets.lookupPacket`), or nil when none is open now.
    public func resolvePacketSocket(uid: UInt32, interface: UInt32,
                                    likelyHolders: () -> [Int32] = { [] }) throws(SocketLookupError) -> SocketResolution? {
        let rows = try procNet.lookupPacket(uid: uid, interface: interface)
        guard !rows.isEmpty else { return nil }
        return SocketResolution(source: .procNetPacket, sockets: rows.map { row in
            ResolvedSocket(uid: row.uid, inode: row.inode, cgroupID: nil, state: 0,
                           pids: owners.pids(forInode: row.inode, likelyHolders: likelyHolders, refreshing: true))
        })
    }

    private func resolveICMP(packet: PacketSummary, info: ICMPInfo, local: IPAddress, remote: IPAddress,
                             likelyHolders: () -> [Int32], refreshing: Bool) throws(SocketLookupError) -> SocketResolution? {
        if let echoID = info.echoIdentifier {
            let rows = try procNet.lookupPing(family: packet.family, localAddress: local, echoID: echoID)
            if !rows.isEmpty {
                return SocketResolution(source: .procNetPing,
                                        sockets: rows.map { resolved($0, likelyHolders, refreshing) })
            }
        }
        // Echo from a raw ICMP socket (setuid ping), or an ICMP message a raw socket built.
        return try resolveRaw(family: packet.family, protocolNumber: packet.protocolNumber,
                              local: local, remote: remote, likelyHolders: likelyHolders, refreshing: refreshing)
    }

    private func resolveRaw(family: IPFamily, protocolNumber: UInt8, local: IPAddress, remote: IPAddress,
                            likelyHolders: () -> [Int32], refreshing: Bool) throws(SocketLookupError) -> SocketResolution? {
        let rows = try procNet.lookupRaw(family: family, protocolNumber: protocolNumber,
                                         localAddress: local, remoteAddress: remote)
        guard !rows.isEmpty else { return nil }
        return SocketResolution(source: .procNetRaw, sockets: rows.map { resolved($0, likelyHolders, refreshing) })
    }

    private func resolved(_ row: ProcNetSocketRow, _ likelyHolders: () -> [Int32], _ refreshing: Bool) -> ResolvedSocket {
        ResolvedSocket(uid: row.uid, inode: row.inode, cgroupID: nil, state: row.state,
                       pids: owners.pids(forInode: row.inode, likelyHolders: likelyHolders, refreshing: refreshing))
    }
}
