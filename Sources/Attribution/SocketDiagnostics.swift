// Exact socket lookups through sock_diag (NETLINK_SOCK_DIAG, inet_diag): given the addresses
// and ports of a packet, the socket that sent or receives it, with its uid, inode and cgroup.
//
// The kernel looks the socket up the way its receive path would, so which address goes in
// idiag_src differs per protocol (measured on 6.18, see docs/socket-lookup.md):
//   TCP:          src = local,  dst = remote   (tcp_dump_one: inet_lookup(dst, src) as if
//                                               a segment came from the remote end)
//   UDP/UDP-Lite: src = remote, dst = local    (udp_dump_one: __udp4_lib_lookup(src, dst),
//                                               dst being the receiving socket)
// Getting UDP wrong is not just ENOENT: on loopback the swapped request can find the PEER's
// socket. The UDP lookup is the receive-path one, so it also finds unconnected and wildcard-bound
// sockets; no second, wildcard request is needed.
import NetfilterSystem
import NetlinkWire
import PacketParsing

/// The transport protocols sock_diag can look up here.
public enum DiagProtocol: Sendable, Hashable {
    case tcp, udp, udpLite

    /// The IPPROTO_* number.
    public var number: UInt8 {
        switch self {
        case .tcp: IPProtocolNumber.tcp
        case .udp: IPProtocolNumber.udp
        case .udpLite: IPProtocolNumber.udpLite
        }
    }
}

/// An address and port of one end of a flow.
public struct SocketEndpoint: Sendable, Hashable {
    public var address: IPAddress
    public var port: UInt16
    public init(_ address: IPAddress, _ port: UInt16) {
        self.address = address
        self.port = port
    }
}

/// What sock_diag reports about a socket.
public struct SocketInfo: Sendable, Equatable {
    /// The socket owner's uid (set when the socket was created).
    public var uid: UInt32
    /// The socket inode; 0 when the socket has no file (TIME_WAIT, not yet accepted).
    public var inode: UInt32
    /// The cgroup v2 id of the socket (the creator's cgroup), when the kernel sends it.
    public var cgroupID: UInt64?
    /// idiag_state (`InetDiagState`): time-wait, established, close (unconnected UDP)...
    public var state: UInt8

    public init(uid: UInt32, inode: UInt32, cgroupID: UInt64?, state: UInt8) {
        self.uid = uid
        self.inode = inode
        self.cgroupID = cgroupID
        self.state = state
    }

    /// A short name of `state` ("time-wait").
    public var stateName: String { InetDiagState.name(state) }
}

/// Exact lookups over one persistent sock_diag socket. Not thread-safe: use one per thread.
/// Answers for the network namespace the creating thread was in.
public final class SocketDiagnostics: @unchecked Sendable {
    private let socket: SockDiagSocket

    public init() throws(SocketLookupError) {
        do {
            socket = try SockDiagSocket()
        } catch {
            throw SocketLookupError(.systemCall, "cannot open a sock_diag socket: \(error)")
        }
    }

    /// The socket of a flow seen from this host: `local` is the address and port on this host
    /// (the source of an outbound packet, the destination of an inbound one).
    ///
    /// Returns nil when no such socket exists (ENOENT). Throws `.systemCall` on socket errors
    /// and `.malformedReply` for an undecodable reply or any other kernel error.
    public func lookup(protocol transport: DiagProtocol, local: SocketEndpoint,
                       remote: SocketEndpoint) throws(SocketLookupError) -> SocketInfo? {
        guard let family = Self.family(local.address, remote.address) else { return nil }
        let localAddress = Self.diagAddress(local.address), remoteAddress = Self.diagAddress(remote.address)
        let id: InetDiagSocketID
        switch transport {
        case .tcp:
            id = InetDiagSocketID(sourcePort: local.port, destinationPort: remote.port,
                                  source: localAddress, destination: remoteAddress)
        case .udp, .udpLite:
            id = InetDiagSocketID(sourcePort: remote.port, destinationPort: local.port,
                                  source: remoteAddress, destination: localAddress)
        }
        let request = InetDiagRequest(family: family, protocolNumber: transport.number, socketID: id)
        guard let message = try exchange(request) else { return nil }
        return SocketInfo(uid: message.uid, inode: message.inode, cgroupID: message.cgroupID,
                          state: message.state)
    }

    /// Closes the TCP socket of the connection `local` ↔ `remote` on this host (SOCK_DESTROY):
    /// the application's next call fails with ECONNABORTED and the peer gets a reset. True when
    /// one was closed, false when there is none.
    public func destroyTCP(local: SocketEndpoint, remote: SocketEndpoint) throws(SocketLookupError) -> Bool {
        guard let family = Self.family(local.address, remote.address) else { return false }
        let id = InetDiagSocketID(sourcePort: local.port, destinationPort: remote.port,
                                  source: Self.diagAddress(local.address), destination: Self.diagAddress(remote.address))
        let sequence = socket.takeSequence()
        do {
            try socket.send(InetDiagRequest(family: family, protocolNumber: DiagProtocol.tcp.number, socketID: id)
                .encoded(sequence: sequence, destroy: true))
        } catch {
            throw SocketLookupError(.systemCall, "sock_diag destroy: \(error)")
        }
        for _ in 0..<8 {
            let code: Int32?
            do {
                code = try socket.receive { bytes in InetDiagDecoder.acknowledgement(bytes, sequence: sequence) }
            } catch {
                throw SocketLookupError(.systemCall, "sock_diag destroy reply: \(error)")
            }
            guard let code else { continue }
            switch code {
            case 0: return true
            case Errno.notFound: return false
            case Errno.notSupported:
                throw SocketLookupError(.systemCall, "the kernel cannot close sockets from outside (CONFIG_INET_DIAG_DESTROY is off)")
            default:
                throw SocketLookupError(.systemCall, "sock_diag destroy failed: \(Errno.describe(code))")
            }
        }
        throw SocketLookupError(.malformedReply, "no sock_diag answer with sequence \(sequence)")
    }

    /// Sends one request and waits for its answer; nil for ENOENT.
    func exchange(_ request: InetDiagRequest) throws(SocketLookupError) -> InetDiagMessage? {
        let sequence = socket.takeSequence()
        do {
            try socket.send(request.encoded(sequence: sequence))
        } catch {
            throw SocketLookupError(.systemCall, "sock_diag request: \(error)")
        }
        // A reply to an earlier request that timed out may still be queued: skip stale ones.
        for _ in 0..<8 {
            let reply: InetDiagReply?
            do {
                reply = try socket.receive { bytes in try InetDiagDecoder.decodeReply(bytes) }
            } catch let error as NetlinkWireError {
                throw SocketLookupError(.malformedReply, "sock_diag reply: \(error)")
            } catch {
                throw SocketLookupError(.systemCall, "sock_diag reply: \(error)")
            }
            guard let reply, reply.sequence == sequence else { continue }
            switch reply {
            case .socket(let message, _):
                return message
            case .error(let errno, _) where errno == Errno.notFound:
                return nil
            case .error(let errno, _):
                throw SocketLookupError(.malformedReply,
                                        "sock_diag lookup failed: \(Errno.describe(errno)) (errno \(errno))")
            }
        }
        throw SocketLookupError(.malformedReply, "no sock_diag reply with sequence \(sequence)")
    }

    static func family(_ first: IPAddress, _ second: IPAddress) -> UInt8? {
        switch (first, second) {
        case (.v4, .v4): InetDiag.familyIPv4
        case (.v6, .v6): InetDiag.familyIPv6
        default: nil
        }
    }

    static func diagAddress(_ address: IPAddress) -> InetDiagAddress {
        switch address {
        case .v4(let value): InetDiagAddress(ipv4: value)
        case .v6(let high, let low): InetDiagAddress(high: high, low: low)
        }
    }
}
