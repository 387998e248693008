// Netlink framing: message headers and attributes (TLVs).
//
// A recv() buffer holds one or more messages, each aligned to 4 bytes:
//
//   0               4       6       8               12              16
//   +---------------+-------+-------+---------------+---------------+-----------------+---+
//   | nlmsg_len u32 | type  | flags | nlmsg_seq u32 | nlmsg_pid u32 | payload ...     |pad|
//   +---------------+-------+-------+---------------+---------------+-----------------+---+
//   |<------------------------------ nlmsg_len ------------------------------->|
//   all header fields host order; the next message starts at NLMSG_ALIGN(nlmsg_len)
//
// The payload of an nfnetlink message (NFLOG, NFQUEUE) starts with struct nfgenmsg and is
// followed by attributes:
//
//   +--------+---------+------------+------------------+------------------+---
//   | family | version | res_id be16| nla_len | nla_type| value ...    |pad | next attribute
//   |  u8    |  u8     | (group)    |  u16    |  u16    |              |    |
//   +--------+---------+------------+------------------+------------------+---
//                                    |<------ nla_len ------>|  next at NLA_ALIGN(nla_len)
//
// nla_len/nla_type are host order; the top two bits of nla_type are flags (NLA_F_NESTED,
// NLA_F_NET_BYTEORDER). NFLOG attribute values themselves are big-endian.
//
// Lengths are checked the way libmnl's mnl_nlmsg_ok / mnl_attr_ok do: the remaining byte count
// is a signed Int, so an aligned advance past the end makes it negative (loop ends) instead of
// wrapping around to a huge unsigned value.

import BinaryParsing

/// Netlink message types shared by every netlink family, and the nfnetlink types NFLOG uses.
public enum NetlinkMessageType {
    /// Nothing; to be ignored. The kernel constant is NLMSG_NOOP.
    public static let noop: UInt16 = 1
    /// An error or ACK reply: int32 error (negative errno, 0 = ACK) + the request's header.
    /// The kernel constant is NLMSG_ERROR.
    public static let error: UInt16 = 2
    /// End of a multi-part message (an NFLOG batch of several packets). NLMSG_DONE.
    public static let done: UInt16 = 3
    /// Data lost. The kernel constant is NLMSG_OVERRUN (not sent by NFLOG; listed for completeness).
    public static let overrun: UInt16 = 4

    /// The nfnetlink subsystem of NFLOG. The kernel constant is NFNL_SUBSYS_ULOG.
    public static let nflogSubsystem: UInt16 = 4
    /// A logged packet, kernel to userspace: NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_PACKET.
    public static let nflogPacket: UInt16 = nflogSubsystem << 8 | 0
    /// A configuration request, userspace to kernel: NFNL_SUBSYS_ULOG << 8 | NFULNL_MSG_CONFIG.
    public static let nflogConfig: UInt16 = nflogSubsystem << 8 | 1
}

/// nlmsg_flags bits.
public struct NetlinkMessageFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// A request to the kernel. The kernel constant is NLM_F_REQUEST.
    public static let request = NetlinkMessageFlags(rawValue: 0x1)
    /// Part of a multi-part message terminated by NLMSG_DONE. NLM_F_MULTI.
    public static let multi = NetlinkMessageFlags(rawValue: 0x2)
    /// Ask for an ACK (an NLMSG_ERROR with error 0) on success. NLM_F_ACK.
    public static let ack = NetlinkMessageFlags(rawValue: 0x4)
}

/// `struct nlmsghdr`, decoded.
public struct NetlinkMessageHeader: Sendable, Equatable {
    /// Size of `struct nlmsghdr` in bytes. The kernel macro is NLMSG_HDRLEN.
    public static let size = 16

    /// nlmsg_len: header plus payload, in bytes, excluding the trailing alignment padding.
    public var length: UInt32
    public var type: UInt16
    public var flags: NetlinkMessageFlags
    public var sequence: UInt32
    /// nlmsg_pid: the sender's port id (0 for the kernel).
    public var portID: UInt32

    public init(length: UInt32, type: UInt16, flags: NetlinkMessageFlags, sequence: UInt32, portID: UInt32) {
        self.length = length
        self.type = type
        self.flags = flags
        self.sequence = sequence
        self.portID = portID
    }

    /// Reads a header at `offset`, or returns nil when fewer than 16 bytes remain there.
    /// Does not check `length` against anything.
    /// One bounds check for the five fields (this runs for every message received).
    @inline(__always)
    init?(in buffer: UnsafeRawBufferPointer, at offset: Int) {
        guard buffer.contains(offset: offset, count: Self.size), let base = buffer.baseAddress else { return nil }
        self.init(length: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self),
                  type: base.loadUnaligned(fromByteOffset: offset &+ 4, as: UInt16.self),
                  flags: NetlinkMessageFlags(rawValue: base.loadUnaligned(fromByteOffset: offset &+ 6, as: UInt16.self)),
                  sequence: base.loadUnaligned(fromByteOffset: offset &+ 8, as: UInt32.self),
                  portID: base.loadUnaligned(fromByteOffset: offset &+ 12, as: UInt32.self))
    }
}

/// Steps through the netlink messages in one receive buffer, checking each header: the one
/// framing walk behind the NFLOG, proc connector and sock_diag decoders.
///
/// Yields `.invalidMessageLength` when 1…15 bytes are left (too few for a header) or nlmsg_len is
/// outside 16…what remains; nothing after that can be found, so the walk ends there. The last
/// message's alignment padding may be missing.
struct MessageCursor {
    /// One message: its header, its bytes (from the header, exactly nlmsg_len long) and its
    /// offset in the buffer (for error messages).
    struct Message {
        var header: NetlinkMessageHeader
        var bytes: UnsafeRawBufferPointer
        var offset: Int

        /// An NLMSG_ERROR's errno, positive (0 for an acknowledgement); nil when its int32 is
        /// missing or is not 0 or a negative errno (positive, or Int32.min, which cannot be negated).
        var errorNumber: Int32? {
            guard let code = bytes.hostInt32(at: NetlinkMessageHeader.size), code <= 0, code != Int32.min else { return nil }
            return -code
        }
    }

    private let buffer: UnsafeRawBufferPointer
    private var position = 0
    private var remaining: Int

    init(buffer: UnsafeRawBufferPointer) {
        self.buffer = buffer
        remaining = buffer.count
    }

    /// The next message or the framing error that ends the walk; nil after the last.
    @inline(__always)
    mutating func next() -> Result<Message, NetlinkWireError>? {
        guard remaining > 0 else { return nil }
        let offset = position
        guard let header = NetlinkMessageHeader(in: buffer, at: offset) else {
            let left = remaining
            remaining = 0
            return .failure(NetlinkWireError(
                .invalidMessageLength,
                "\(left) bytes left, too few for a \(NetlinkMessageHeader.size)-byte netlink header",
                offset: offset))
        }
        let length = Int(header.length)
        guard length >= NetlinkMessageHeader.size, length <= remaining,
              let bytes = buffer.subrange(at: offset, count: length)
        else {
            let left = remaining
            remaining = 0
            return .failure(NetlinkWireError(
                .invalidMessageLength,
                "nlmsg_len \(length) of message type \(header.type) is outside \(NetlinkMessageHeader.size)…\(left)",
                offset: offset))
        }
        if let step = netlinkAligned(length) {
            position += step
            remaining -= step  // negative when the last message's padding is missing: the walk ends
        } else {
            remaining = 0
        }
        return .success(Message(header: header, bytes: bytes, offset: offset))
    }
}

/// Sizes and flag bits of `struct nlattr` and `struct nfgenmsg`.
public enum NetlinkAttribute {
    /// Size of `struct nlattr`. The kernel macro is NLA_HDRLEN.
    public static let headerSize = 4
    /// Set on attributes that contain attributes. The kernel constant is NLA_F_NESTED.
    public static let nestedFlag: UInt16 = 0x8000
    /// Set when the value is in network byte order. The kernel constant is NLA_F_NET_BYTEORDER.
    public static let netByteOrderFlag: UInt16 = 0x4000
    /// The bits of nla_type left after removing the two flags. The kernel constant is NLA_TYPE_MASK.
    public static let typeMask: UInt16 = ~(nestedFlag | netByteOrderFlag)
}

/// `struct nfgenmsg`, the fixed part at the start of every nfnetlink payload.
public enum NfgenMessage {
    /// Size in bytes: u8 nfgen_family, u8 version, be16 res_id.
    public static let size = 4
    /// The only version there is. The kernel constant is NFNETLINK_V0.
    public static let version0: UInt8 = 0
}

/// Rounds up to the 4-byte boundary netlink uses for both messages and attributes
/// (NLMSG_ALIGN / NLA_ALIGN). Returns nil instead of overflowing.
@inlinable
func netlinkAligned(_ length: Int) -> Int? {
    let (sum, overflow) = length.addingReportingOverflow(3)
    guard !overflow else { return nil }
    return sum & ~3
}

/// Steps through the attributes in `area` (the bytes after a message's fixed header) one at a
/// time, checking each header: the one walk behind `forEachAttribute` and `NflogPacketView`.
///
/// Throws `.invalidAttributeLength` for an nla_len below 4 or past the end of `area`. Up to 3
/// trailing bytes too short for an attribute header are ignored as padding, as the kernel's
/// non-strict nla_parse does.
struct AttributeCursor {
    /// One attribute: its type (flags masked off), where its value lies in the area, and the
    /// attribute's offset in the batch (for error messages).
    struct Attribute {
        var type: UInt16
        var valueStart: Int
        var valueLength: Int
        var offset: Int
        /// The value's bytes (`valueLength` of them from `valueStart` in the area).
        var value: UnsafeRawBufferPointer
    }

    private let area: UnsafeRawBufferPointer
    private let baseOffset: Int
    private var position = 0
    private var remaining: Int

    /// `baseOffset`: the area's offset in the batch.
    init(area: UnsafeRawBufferPointer, baseOffset: Int) {
        self.area = area
        self.baseOffset = baseOffset
        remaining = area.count
    }

    /// The next attribute, nil after the last. Its value (`valueStart`, `valueLength`) lies
    /// inside the area: checked here.
    @inline(__always)
    mutating func next() throws(NetlinkWireError) -> Attribute? {
        // `remaining` is always `area.count - position`, so this one check puts the 4-byte
        // header inside the area; the arithmetic below stays within the area's size.
        guard remaining >= NetlinkAttribute.headerSize, let base = area.baseAddress else { return nil }
        let length = Int(base.loadUnaligned(fromByteOffset: position, as: UInt16.self))  // host order
        let type = base.loadUnaligned(fromByteOffset: position &+ 2, as: UInt16.self) & NetlinkAttribute.typeMask
        guard length >= NetlinkAttribute.headerSize, length <= remaining else {
            throw NetlinkWireError(
                .invalidAttributeLength,
                "attribute \(type) has length \(length); \(remaining) bytes remain in the message",
                offset: baseOffset + position)
        }
        let valueStart = position &+ NetlinkAttribute.headerSize
        let valueLength = length &- NetlinkAttribute.headerSize
        let attribute = Attribute(type: type, valueStart: valueStart, valueLength: valueLength,
                                  offset: baseOffset &+ position,
                                  value: UnsafeRawBufferPointer(start: base + valueStart, count: valueLength))
        let step = (length &+ 3) & ~3  // length ≤ 65535
        position &+= step
        remaining &-= step  // may go negative when the last attribute's padding is missing
        return attribute
    }
}

/// Walks the attributes in `area` (the bytes after a message's fixed header), calling `body`
/// with each attribute's type (flags masked off), its value bytes, and the attribute's offset
/// in the batch (`baseOffset` + position in `area`). Errors as `AttributeCursor.next()`.
func forEachAttribute(
    in area: UnsafeRawBufferPointer,
    baseOffset: Int,
    _ body: (_ type: UInt16, _ value: UnsafeRawBufferPointer, _ offset: Int) throws(NetlinkWireError) -> Void
) throws(NetlinkWireError) {
    var cursor = AttributeCursor(area: area, baseOffset: baseOffset)
    while let attribute = try cursor.next() {
        try body(attribute.type, attribute.value, attribute.offset)
    }
}
