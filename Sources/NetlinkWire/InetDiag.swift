// sock_diag for IPv4/IPv6 sockets (inet_diag): one exact-lookup request and its reply.
//
// Request, userspace to kernel (NETLINK_SOCK_DIAG, type SOCK_DIAG_BY_FAMILY, flags NLM_F_REQUEST
// only — no NLM_F_DUMP, so the kernel looks one socket up instead of walking the table):
//
//   [nlmsghdr 16]
//   struct inet_diag_req_v2 (56 bytes):
//   0        1          2       3     4              8
//   +--------+----------+-------+-----+--------------+
//   | family | protocol | ext   | pad | states u32   |   u8s; states is a host-order bit mask
//   +--------+----------+-------+-----+--------------+
//   struct inet_diag_sockid (48 bytes), at 8:
//   +------------+------------+------------------+------------------+---------+----------------+
//   | sport be16 | dport be16 | src be32[4] (16) | dst be32[4] (16) | if u32  | cookie u32[2]  |
//   +------------+------------+------------------+------------------+---------+----------------+
//   IPv4 addresses fill the first 4 of the 16 bytes; the cookie is ~0 ~0 (INET_DIAG_NOCOOKIE)
//   when unknown.
//
// Reply: either NLMSG_ERROR (-ENOENT: no such socket) or one SOCK_DIAG_BY_FAMILY message:
//
//   [nlmsghdr 16]
//   struct inet_diag_msg (72 bytes):
//   | family u8 | state u8 | timer u8 | retrans u8 | inet_diag_sockid (48) |
//   | expires u32 | rqueue u32 | wqueue u32 | uid u32 | inode u32 |        all host order
//   then attributes (nlattr TLVs, host order): INET_DIAG_SHUTDOWN, INET_DIAG_MARK,
//   INET_DIAG_CGROUP_ID (u64, Linux >= 5.8, sent without being asked for), INET_DIAG_SOCKOPT, ...
//
// Which address goes where differs per protocol; that is the caller's business (see
// docs/socket-lookup.md): this file only moves fields to and from bytes.

import BinaryParsing

/// Constants of NETLINK_SOCK_DIAG and inet_diag (<linux/sock_diag.h>, <linux/inet_diag.h>).
public enum InetDiag {
    /// The netlink protocol number. The kernel constant is NETLINK_SOCK_DIAG.
    public static let netlinkProtocol: Int32 = 4
    /// Request and reply message type. The kernel constant is SOCK_DIAG_BY_FAMILY.
    public static let messageType: UInt16 = 20
    /// Closes the socket the request names (the kernel constant is SOCK_DESTROY; needs
    /// CONFIG_INET_DIAG_DESTROY and CAP_NET_ADMIN). Answered by an ACK or an error.
    public static let destroyType: UInt16 = 21
    /// Size of struct inet_diag_req_v2.
    public static let requestSize = 56
    /// Size of struct inet_diag_sockid.
    public static let socketIDSize = 48
    /// Size of struct inet_diag_msg.
    public static let messageSize = 72
    /// "Any state": the idiag_states mask with every bit set.
    public static let allStates: UInt32 = 0xFFFF_FFFF
    /// The cookie of a request that does not know it. The kernel constant is INET_DIAG_NOCOOKIE
    /// (in both u32 halves).
    public static let noCookie: UInt64 = 0xFFFF_FFFF_FFFF_FFFF

    /// AF_INET, as idiag_family holds it.
    public static let familyIPv4: UInt8 = 2
    /// AF_INET6, as idiag_family holds it.
    public static let familyIPv6: UInt8 = 10

    /// The socket's cgroup v2 id, u64 host order. The kernel constant is INET_DIAG_CGROUP_ID.
    public static let cgroupIDAttribute: UInt16 = 21
}

/// TCP states as idiag_state reports them (include/net/tcp_states.h). UDP sockets report
/// `established` when connected and `close` otherwise.
public enum InetDiagState {
    /// TCP_ESTABLISHED
    public static let established: UInt8 = 1
    /// TCP_SYN_SENT
    public static let synSent: UInt8 = 2
    /// TCP_SYN_RECV
    public static let synReceived: UInt8 = 3
    /// TCP_FIN_WAIT1
    public static let finWait1: UInt8 = 4
    /// TCP_FIN_WAIT2
    public static let finWait2: UInt8 = 5
    /// TCP_TIME_WAIT: a timewait mini-socket, no file, inode 0.
    public static let timeWait: UInt8 = 6
    /// TCP_CLOSE (also an unconnected UDP socket).
    public static let close: UInt8 = 7
    /// TCP_CLOSE_WAIT
    public static let closeWait: UInt8 = 8
    /// TCP_LAST_ACK
    public static let lastAck: UInt8 = 9
    /// TCP_LISTEN
    public static let listen: UInt8 = 10
    /// TCP_CLOSING
    public static let closing: UInt8 = 11
    /// TCP_NEW_SYN_RECV: a request socket (SYN received, not yet accepted), no file.
    public static let newSynReceived: UInt8 = 12

    /// A short lowercase name ("established", "time-wait"); "state N" for unknown values.
    public static func name(_ state: UInt8) -> String {
        switch state {
        case established: "established"
        case synSent: "syn-sent"
        case synReceived: "syn-recv"
        case finWait1: "fin-wait-1"
        case finWait2: "fin-wait-2"
        case timeWait: "time-wait"
        case close: "close"
        case closeWait: "close-wait"
        case lastAck: "last-ack"
        case listen: "listen"
        case closing: "closing"
        case newSynReceived: "new-syn-recv"
        default: "state \(state)"
        }
    }
}

/// A 16-byte inet_diag address in network byte order, as two big-endian halves; an IPv4
/// address sits in the first 4 bytes.
public struct InetDiagAddress: Sendable, Hashable, CustomStringConvertible {
    /// The first 8 bytes, big-endian.
    public var high: UInt64
    /// The last 8 bytes, big-endian.
    public var low: UInt64

    public init(high: UInt64, low: UInt64) {
        self.high = high
        self.low = low
    }

    /// An IPv4 address in host integer form (first octet most significant).
    public init(ipv4: UInt32) {
        self.init(high: UInt64(ipv4) << 32, low: 0)
    }

    /// The unspecified address (0.0.0.0 or ::).
    public static let any = InetDiagAddress(high: 0, low: 0)

    /// The IPv4 address in the first 4 bytes (meaningful for AF_INET only).
    public var ipv4: UInt32 { UInt32(truncatingIfNeeded: high >> 32) }

    public var description: String {
        let hex = String(high, radix: 16) + ":" + String(low, radix: 16)
        return "0x" + hex
    }
}

/// struct inet_diag_sockid: the addresses and ports that identify a socket.
public struct InetDiagSocketID: Sendable, Equatable {
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var source: InetDiagAddress
    public var destination: InetDiagAddress
    /// idiag_if: an interface index, 0 for any.
    public var interface: UInt32
    /// idiag_cookie, cookie[0] in the low half; `InetDiag.noCookie` when unknown.
    public var cookie: UInt64

    public init(sourcePort: UInt16, destinationPort: UInt16, source: InetDiagAddress,
                destination: InetDiagAddress, interface: UInt32 = 0, cookie: UInt64 = InetDiag.noCookie) {
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.source = source
        self.destination = destination
        self.interface = interface
        self.cookie = cookie
    }

    /// Reads the 48 bytes at `offset`, or nil when they do not fit.
    init?(in buffer: UnsafeRawBufferPointer, at offset: Int) {
        guard let sourcePort = buffer.bigEndianUInt16(at: offset),
              let destinationPort = buffer.bigEndianUInt16(at: offset + 2),
              let sourceHigh = buffer.bigEndianUInt64(at: offset + 4),
              let sourceLow = buffer.bigEndianUInt64(at: offset + 12),
              let destinationHigh = buffer.bigEndianUInt64(at: offset + 20),
              let destinationLow = buffer.bigEndianUInt64(at: offset + 28),
              let interface = buffer.hostUInt32(at: offset + 36),
              let cookieLow = buffer.hostUInt32(at: offset + 40),
              let cookieHigh = buffer.hostUInt32(at: offset + 44)
        else { return nil }
        self.init(sourcePort: sourcePort, destinationPort: destinationPort,
                  source: InetDiagAddress(high: sourceHigh, low: sourceLow),
                  destination: InetDiagAddress(high: destinationHigh, low: destinationLow),
                  interface: interface, cookie: UInt64(cookieHigh) << 32 | UInt64(cookieLow))
    }

    func append(to writer: inout NetlinkMessageWriter) {
        writer.appendBigEndian(sourcePort)
        writer.appendBigEndian(destinationPort)
        writer.appendBigEndian(source.high)
        writer.appendBigEndian(source.low)
        writer.appendBigEndian(destination.high)
        writer.appendBigEndian(destination.low)
        writer.appendHost(interface)
        writer.appendHost(UInt32(truncatingIfNeeded: cookie))
        writer.appendHost(UInt32(truncatingIfNeeded: cookie >> 32))
    }
}

/// struct inet_diag_req_v2 for an exact lookup of one socket.
public struct InetDiagRequest: Sendable, Equatable {
    /// `InetDiag.familyIPv4` or `.familyIPv6`.
    public var family: UInt8
    /// IPPROTO_TCP, IPPROTO_UDP or IPPROTO_UDPLITE (the kernel has handlers for these; raw
    /// needs INET_RAW_DIAG and ping has none).
    public var protocolNumber: UInt8
    /// idiag_ext: bit (1 << (attribute - 1)) asks for an extension attribute. Not needed for
    /// INET_DIAG_CGROUP_ID, which the kernel always sends.
    public var extensions: UInt8
    /// idiag_states: a mask of (1 << state); ignored by exact lookups, kept for dumps.
    public var states: UInt32
    public var socketID: InetDiagSocketID

    public init(family: UInt8, protocolNumber: UInt8, extensions: UInt8 = 0,
                states: UInt32 = InetDiag.allStates, socketID: InetDiagSocketID) {
        self.family = family
        self.protocolNumber = protocolNumber
        self.extensions = extensions
        self.states = states
        self.socketID = socketID
    }

    /// The whole netlink message (72 bytes) with `sequence` as nlmsg_seq: a lookup, or with
    /// `destroy` a SOCK_DESTROY that asks for an ACK.
    public func encoded(sequence: UInt32, destroy: Bool = false) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: destroy ? InetDiag.destroyType : InetDiag.messageType,
                                          flags: destroy ? [.request, .ack] : .request, sequence: sequence)
        writer.appendHost(family)
        writer.appendHost(protocolNumber)
        writer.appendHost(extensions)
        writer.appendHost(UInt8(0))
        writer.appendHost(states)
        socketID.append(to: &writer)
        return writer.finish()
    }
}

/// struct inet_diag_msg and the attributes nfowner uses.
public struct InetDiagMessage: Sendable, Equatable {
    public var family: UInt8
    /// idiag_state, see `InetDiagState`.
    public var state: UInt8
    public var timer: UInt8
    public var retransmits: UInt8
    public var socketID: InetDiagSocketID
    /// Milliseconds until the socket's timer fires.
    public var expires: UInt32
    /// Bytes queued for reading (TCP) or in the receive queue.
    public var receiveQueue: UInt32
    /// Bytes queued for sending.
    public var sendQueue: UInt32
    /// The socket owner's uid (fsuid when the socket was created).
    public var uid: UInt32
    /// The socket's inode; 0 when it has no file (TIME_WAIT, request sockets, not yet accepted).
    public var inode: UInt32
    /// INET_DIAG_CGROUP_ID, when present: the cgroup v2 id of the creating process's cgroup.
    public var cgroupID: UInt64?

    public init(family: UInt8, state: UInt8, timer: UInt8 = 0, retransmits: UInt8 = 0,
                socketID: InetDiagSocketID, expires: UInt32 = 0, receiveQueue: UInt32 = 0,
                sendQueue: UInt32 = 0, uid: UInt32, inode: UInt32, cgroupID: UInt64? = nil) {
        self.family = family
        self.state = state
        self.timer = timer
        self.retransmits = retransmits
        self.socketID = socketID
        self.expires = expires
        self.receiveQueue = receiveQueue
        self.sendQueue = sendQueue
        self.uid = uid
        self.inode = inode
        self.cgroupID = cgroupID
    }
}

/// What one reply datagram says about a lookup.
public enum InetDiagReply: Sendable, Equatable {
    /// The socket, found.
    case socket(InetDiagMessage, sequence: UInt32)
    /// NLMSG_ERROR with a positive errno: ENOENT (2) means no such socket; other values are
    /// real failures (EINVAL for a malformed request, EPROTONOSUPPORT for a protocol without a
    /// diag handler).
    case error(errno: Int32, sequence: UInt32)

    /// nlmsg_seq of the reply, to match it to its request.
    public var sequence: UInt32 {
        switch self {
        case .socket(_, let sequence), .error(_, let sequence): sequence
        }
    }
}

public enum InetDiagDecoder {
    /// The errno (0 for an ACK) of the NLMSG_ERROR answering `sequence` in a receive buffer,
    /// or nil when there is none. Bounds-checked; never traps.
    public static func acknowledgement(_ buffer: UnsafeRawBufferPointer, sequence: UInt32) -> Int32? {
        var messages = MessageCursor(buffer: buffer)
        while let next = messages.next(), case .success(let message) = next {
            guard message.header.type == NetlinkMessageType.error, message.header.sequence == sequence,
                  let errno = message.errorNumber
            else { continue }
            return errno
        }
        return nil
    }

    /// Decodes the first answer (SOCK_DIAG_BY_FAMILY or NLMSG_ERROR) in a receive buffer.
    ///
    /// Returns nil when the buffer holds no answer (empty, or only NLMSG_NOOP/NLMSG_DONE and
    /// other types). Throws `.invalidMessageLength` for bad framing, `.truncatedMessage` when
    /// inet_diag_msg or the error code is cut, `.invalidErrorCode` for a non-negative error
    /// (an ACK is not an answer to a lookup), `.invalidAttributeLength` for a bad nla_len and
    /// `.invalidAttributeValue` for an INET_DIAG_CGROUP_ID that is not 8 bytes. Never traps.
    public static func decodeReply(_ buffer: UnsafeRawBufferPointer) throws(NetlinkWireError) -> InetDiagReply? {
        var messages = MessageCursor(buffer: buffer)
        while let message = try messages.next()?.get() {
            switch message.header.type {
            case InetDiag.messageType:
                let decoded = try decodeMessage(message.bytes, offset: message.offset)
                return .socket(decoded, sequence: message.header.sequence)
            case NetlinkMessageType.error:
                guard let code = message.bytes.hostInt32(at: NetlinkMessageHeader.size) else {
                    throw NetlinkWireError(.truncatedMessage,
                                           "NLMSG_ERROR of \(message.bytes.count) bytes has no error code",
                                           offset: message.offset)
                }
                // 0 is an ACK, which a lookup never asks for; Int32.min cannot be negated.
                guard code < 0, code != Int32.min else {
                    throw NetlinkWireError(.invalidErrorCode,
                                           "NLMSG_ERROR carries error \(code), not a negative errno",
                                           offset: message.offset)
                }
                return .error(errno: -code, sequence: message.header.sequence)
            default:
                break
            }
        }
        return nil
    }

    /// Decodes one SOCK_DIAG_BY_FAMILY message (`message` starts at its nlmsghdr and is
    /// exactly nlmsg_len long). `offset` is only used in error offsets.
    public static func decodeMessage(_ message: UnsafeRawBufferPointer,
                                     offset: Int = 0) throws(NetlinkWireError) -> InetDiagMessage {
        let base = NetlinkMessageHeader.size
        guard let family = message.byte(at: base),
              let state = message.byte(at: base + 1),
              let timer = message.byte(at: base + 2),
              let retransmits = message.byte(at: base + 3),
              let socketID = InetDiagSocketID(in: message, at: base + 4),
              let expires = message.hostUInt32(at: base + 52),
              let receiveQueue = message.hostUInt32(at: base + 56),
              let sendQueue = message.hostUInt32(at: base + 60),
              let uid = message.hostUInt32(at: base + 64),
              let inode = message.hostUInt32(at: base + 68),
              let attributes = message.suffix(from: base + InetDiag.messageSize)
        else {
            throw NetlinkWireError(
                .truncatedMessage,
                "SOCK_DIAG_BY_FAMILY message of \(message.count) bytes is shorter than the \(base + InetDiag.messageSize) of nlmsghdr + inet_diag_msg",
                offset: offset)
        }
        var cgroupID: UInt64?
        try forEachAttribute(in: attributes, baseOffset: offset + base + InetDiag.messageSize) {
            (type, value, attributeOffset) throws(NetlinkWireError) in
            guard type == InetDiag.cgroupIDAttribute else { return }  // others are not used
            guard value.count == 8, let id = value.hostUInt64(at: 0) else {
                throw NetlinkWireError(
                    .invalidAttributeValue,
                    "attribute \(type) (INET_DIAG_CGROUP_ID) is not a u64; length: \(value.count)",
                    offset: attributeOffset)
            }
            cgroupID = id
        }
        return InetDiagMessage(family: family, state: state, timer: timer, retransmits: retransmits,
                               socketID: socketID, expires: expires, receiveQueue: receiveQueue,
                               sendQueue: sendQueue, uid: uid, inode: inode, cgroupID: cgroupID)
    }
}

extension UnsafeRawBufferPointer {
    /// A host-order UInt64 (u64 netlink attribute values), or nil when it does not fit.
    fileprivate func hostUInt64(at offset: Int) -> UInt64? {
        guard let first = hostUInt32(at: offset), let second = hostUInt32(at: offset + 4) else { return nil }
        // Two host-order halves in memory order; reassemble according to the host's byte order.
        let firstValue = UInt64(first), secondValue = UInt64(second)
        return 1.littleEndian == 1 ? secondValue << 32 | firstValue : firstValue << 32 | secondValue
    }
}
