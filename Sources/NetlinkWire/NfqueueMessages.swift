// NFQUEUE (nfnetlink_queue) messages: configuration and verdicts from us, held packets from the
// kernel. Same framing as NFLOG (nlmsghdr, nfgenmsg with res_id = queue number, TLVs whose
// values are big-endian), subsystem 3 instead of 4.
//
//   config (0x0302):  NFQA_CFG_CMD    len 8  | u8 command, u8 pad, be16 pf
//                     NFQA_CFG_PARAMS len 9  | be32 copy_range, u8 copy_mode      + 3 pad
//                     NFQA_CFG_QUEUE_MAXLEN  | be32
//                     NFQA_CFG_MASK, NFQA_CFG_FLAGS | be32 each (which flags, their values)
//   packet (0x0300):  NFQA_PACKET_HDR len 11 | be32 packet_id, be16 hw_protocol, u8 hook  + 1 pad
//                     NFQA_UID, NFQA_GID (with F_UID_GID), NFQA_PAYLOAD, NFQA_MARK, ...
//   verdict (0x0301): NFQA_VERDICT_HDR len 12 | be32 verdict, be32 packet_id
//                     NFQA_MARK        len 8  | be32 the packet's new mark (optional)
//
// A packet stays in the kernel until a verdict names its id. Unknown attributes are skipped; a
// known one of the wrong size makes the message malformed (and its packet is never decided by
// us: the kernel drops it when the queue is unbound, or accepts it with fail-open when full).

import BinaryParsing

extension NetlinkMessageType {
    /// NFNL_SUBSYS_QUEUE.
    public static let nfqueueSubsystem: UInt16 = 3
    /// A held packet, kernel to userspace. NFQNL_MSG_PACKET.
    public static let nfqueuePacket: UInt16 = nfqueueSubsystem << 8 | 0
    /// A verdict on one packet. NFQNL_MSG_VERDICT.
    public static let nfqueueVerdict: UInt16 = nfqueueSubsystem << 8 | 1
    /// Queue configuration. NFQNL_MSG_CONFIG.
    public static let nfqueueConfig: UInt16 = nfqueueSubsystem << 8 | 2
}

/// Attribute types of an NFQNL_MSG_PACKET message (enum nfqnl_attr_type), those we read.
public enum NfqueueAttributeType: UInt16, Sendable, CaseIterable {
    /// be32 packet_id, be16 hw_protocol, u8 hook (packed, 7 bytes). NFQA_PACKET_HDR.
    case packetHeader = 1
    /// be32 verdict, be32 id. NFQA_VERDICT_HDR (in verdicts).
    case verdictHeader = 2
    /// be32 nfmark. NFQA_MARK.
    case mark = 3
    /// be64 sec, be64 usec. NFQA_TIMESTAMP.
    case timestamp = 4
    /// be32 ifindex. NFQA_IFINDEX_INDEV.
    case inputInterface = 5
    /// be32 ifindex. NFQA_IFINDEX_OUTDEV.
    case outputInterface = 6
    /// The packet from its network header. NFQA_PAYLOAD.
    case payload = 10
    /// be32 captured length when the payload was cut. NFQA_CAP_LEN.
    case capturedLength = 13
    /// be32 skb flags (NFQA_SKB_*). NFQA_SKB_INFO.
    case skbInfo = 14
    /// be32 fsuid of the socket owner (needs F_UID_GID). NFQA_UID.
    case uid = 16
    /// be32 fsgid of the socket owner. NFQA_GID.
    case gid = 17

    /// The value size the kernel sends, nil when it varies.
    var valueSize: Int? {
        switch self {
        case .packetHeader: 7
        case .verdictHeader: 8
        case .mark, .inputInterface, .outputInterface, .capturedLength, .skbInfo, .uid, .gid: 4
        case .timestamp: 16
        case .payload: nil
        }
    }
}

/// NFQUEUE configuration commands (enum nfqnl_msg_config_cmds).
public enum NfqueueConfigCommand: UInt8, Sendable {
    case bind = 1
    case unbind = 2
}

/// How much of each packet the kernel copies (enum nfqnl_config_mode).
public enum NfqueueCopyMode: UInt8, Sendable {
    case none = 0
    case meta = 1
    case packet = 2
}

/// NFQA_CFG_FLAGS bits.
public struct NfqueueConfigFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// Accept instead of dropping when the queue is full or the message cannot reach us.
    /// NFQA_CFG_F_FAIL_OPEN.
    public static let failOpen = NfqueueConfigFlags(rawValue: 1 << 0)
    /// Attach conntrack info (EOPNOTSUPP on the target kernel). NFQA_CFG_F_CONNTRACK.
    public static let conntrack = NfqueueConfigFlags(rawValue: 1 << 1)
    /// Deliver GSO packets unsegmented. NFQA_CFG_F_GSO.
    public static let gso = NfqueueConfigFlags(rawValue: 1 << 2)
    /// Attach the socket owner's uid and gid. NFQA_CFG_F_UID_GID.
    public static let uidGid = NfqueueConfigFlags(rawValue: 1 << 3)
}

/// One setting of a queue.
public enum NfqueueConfigAttribute: Sendable, Equatable {
    /// NFQA_CFG_CMD (`pf` is only read by the obsolete PF_BIND commands: 0).
    case command(NfqueueConfigCommand)
    /// NFQA_CFG_PARAMS: copy mode and the most payload bytes copied.
    case copyMode(NfqueueCopyMode, range: UInt32)
    /// NFQA_CFG_QUEUE_MAXLEN: packets held at once before the queue counts as full.
    case maximumLength(UInt32)
    /// NFQA_CFG_MASK and NFQA_CFG_FLAGS: these flags set, the others in the mask cleared.
    case flags(NfqueueConfigFlags, mask: NfqueueConfigFlags)
}

/// What becomes of a held packet (NF_DROP = 0, NF_ACCEPT = 1, NF_REPEAT = 4).
public enum NfqueueVerdictCode: UInt32, Sendable {
    case drop = 0
    case accept = 1
    /// Run the hook's chain that queued it again from its start (with a mark set, so that it is
    /// not queued again). NF_REPEAT.
    case `repeat` = 4
}

public enum NfqueueMessages {
    /// A config request for `queue` with NLM_F_REQUEST | NLM_F_ACK: the kernel answers with
    /// NLMSG_ERROR (0 = done). A bind and its settings go in one message.
    public static func config(queue: UInt16, sequence: UInt32, _ attributes: [NfqueueConfigAttribute]) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: NetlinkMessageType.nfqueueConfig, flags: [.request, .ack],
                                          sequence: sequence)
        writer.appendNfgenmsg(family: 0, group: queue)
        for attribute in attributes {
            switch attribute {
            case .command(let command):
                writer.appendAttribute(type: 1, [command.rawValue, 0, 0, 0])
            case .copyMode(let mode, let range):
                writer.appendAttribute(type: 2, range.bigEndianBytes + [mode.rawValue])
            case .maximumLength(let packets):
                writer.appendAttribute(type: 3, bigEndian: packets)
            case .flags(let flags, let mask):
                writer.appendAttribute(type: 4, bigEndian: mask.rawValue)
                writer.appendAttribute(type: 5, bigEndian: flags.rawValue)
            }
        }
        return writer.finish()
    }

    /// A verdict on packet `id` of `queue`, without an ACK (the kernel answers only errors).
    public static func verdict(queue: UInt16, id: UInt32, _ code: NfqueueVerdictCode, sequence: UInt32 = 0) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: NetlinkMessageType.nfqueueVerdict, flags: [.request],
                                          sequence: sequence)
        writer.appendNfgenmsg(family: 0, group: queue)
        writer.appendAttribute(type: NfqueueAttributeType.verdictHeader.rawValue,
                               code.rawValue.bigEndianBytes + id.bigEndianBytes)
        return writer.finish()
    }

    /// The length of a verdict message (fixed: header, nfgenmsg, one 12-byte attribute).
    public static let verdictLength = NetlinkMessageHeader.size + NfgenMessage.size + 12

    /// The length of a verdict message that also sets the packet's mark.
    public static let markedVerdictLength = verdictLength + 8

    /// Writes a verdict that also sets the packet's mark (NFQA_MARK) into `buffer` (at least
    /// `markedVerdictLength` bytes), without allocating. Returns the bytes written, 0 when the
    /// buffer is too small.
    public static func writeVerdict(queue: UInt16, id: UInt32, _ code: NfqueueVerdictCode, mark: UInt32,
                                    into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard buffer.count >= markedVerdictLength, let base = buffer.baseAddress,
              writeVerdict(queue: queue, id: id, code, into: buffer) == verdictLength
        else { return 0 }
        base.storeBytes(of: UInt32(markedVerdictLength), toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: UInt16(8), toByteOffset: verdictLength, as: UInt16.self)
        base.storeBytes(of: NfqueueAttributeType.mark.rawValue, toByteOffset: verdictLength + 2, as: UInt16.self)
        base.storeBytes(of: mark.bigEndian, toByteOffset: verdictLength + 4, as: UInt32.self)
        return markedVerdictLength
    }

    /// Writes a verdict into `buffer` (at least `verdictLength` bytes) without allocating: the
    /// receive thread answers every held packet this way. Returns the bytes written, 0 when the
    /// buffer is too small.
    public static func writeVerdict(queue: UInt16, id: UInt32, _ code: NfqueueVerdictCode,
                                    into buffer: UnsafeMutableRawBufferPointer) -> Int {
        guard buffer.count >= verdictLength, let base = buffer.baseAddress else { return 0 }
        base.storeBytes(of: UInt32(verdictLength), toByteOffset: 0, as: UInt32.self)
        base.storeBytes(of: NetlinkMessageType.nfqueueVerdict, toByteOffset: 4, as: UInt16.self)
        base.storeBytes(of: NetlinkMessageFlags.request.rawValue, toByteOffset: 6, as: UInt16.self)
        base.storeBytes(of: UInt32(0), toByteOffset: 8, as: UInt32.self)
        base.storeBytes(of: UInt32(0), toByteOffset: 12, as: UInt32.self)
        base.storeBytes(of: UInt8(0), toByteOffset: 16, as: UInt8.self)
        base.storeBytes(of: NfgenMessage.version0, toByteOffset: 17, as: UInt8.self)
        base.storeBytes(of: queue.bigEndian, toByteOffset: 18, as: UInt16.self)
        base.storeBytes(of: UInt16(12), toByteOffset: 20, as: UInt16.self)
        base.storeBytes(of: NfqueueAttributeType.verdictHeader.rawValue, toByteOffset: 22, as: UInt16.self)
        base.storeBytes(of: code.rawValue.bigEndian, toByteOffset: 24, as: UInt32.self)
        base.storeBytes(of: id.bigEndian, toByteOffset: 28, as: UInt32.self)
        return verdictLength
    }
}

/// One held packet (NFQNL_MSG_PACKET), validated in one pass; views into the receive buffer,
/// valid only inside the callback that received it.
public struct NfqueuePacketView {
    /// The queue number (`nfgenmsg.res_id`).
    public let queue: UInt16
    /// The packet's protocol family (2 = IPv4, 10 = IPv6).
    public let family: UInt8
    /// The id a verdict must name.
    public let id: UInt32
    /// Netfilter hook number.
    public let hook: UInt8
    public let uid: UInt32?
    public let gid: UInt32?
    public let mark: UInt32?
    public let inputInterface: UInt32?
    public let outputInterface: UInt32?
    /// The payload bytes, empty when absent.
    public let payload: UnsafeRawBufferPointer
    /// The whole message, from its nlmsghdr.
    public let message: UnsafeRawBufferPointer

    /// Validates `message` (from its nlmsghdr, exactly nlmsg_len long). Throws
    /// `.truncatedMessage` without nfgenmsg or NFQA_PACKET_HDR (no id: nothing can be decided),
    /// `.invalidAttributeLength` for a bad nla_len, `.invalidAttributeValue` for a known
    /// attribute of the wrong size.
    public init(message: UnsafeRawBufferPointer, offset: Int = 0) throws(NetlinkWireError) {
        let fixedEnd = NetlinkMessageHeader.size + NfgenMessage.size
        guard let family = message.byte(at: NetlinkMessageHeader.size),
              let queue = message.bigEndianUInt16(at: NetlinkMessageHeader.size + 2),
              let attributes = message.suffix(from: fixedEnd)
        else {
            throw NetlinkWireError(.truncatedMessage, "NFQUEUE packet message of \(message.count) bytes has no nfgenmsg",
                                   offset: offset)
        }
        var id: UInt32?
        var hook: UInt8 = 0
        var uid: UInt32?, gid: UInt32?, mark: UInt32?, input: UInt32?, output: UInt32?
        var payload = UnsafeRawBufferPointer(start: nil, count: 0)
        var cursor = AttributeCursor(area: attributes, baseOffset: offset + fixedEnd)
        while let attribute = try cursor.next() {
            guard let known = NfqueueAttributeType(rawValue: attribute.type) else { continue }
            let value = attribute.value
            if let size = known.valueSize, value.count != size {
                throw NetlinkWireError(.invalidAttributeValue,
                                       "NFQUEUE attribute \(known) (\(attribute.type)) has \(value.count) bytes, expected \(size)",
                                       offset: attribute.offset)
            }
            switch known {
            case .packetHeader:
                id = value.bigEndianUInt32(at: 0)
                hook = value.byte(at: 6) ?? 0
            case .uid: uid = value.bigEndianUInt32(at: 0)
            case .gid: gid = value.bigEndianUInt32(at: 0)
            case .mark: mark = value.bigEndianUInt32(at: 0)
            case .inputInterface: input = value.bigEndianUInt32(at: 0)
            case .outputInterface: output = value.bigEndianUInt32(at: 0)
            case .payload: payload = value
            case .verdictHeader, .timestamp, .capturedLength, .skbInfo: break
            }
        }
        guard let id else {
            throw NetlinkWireError(.truncatedMessage, "NFQUEUE packet message has no NFQA_PACKET_HDR (no packet id)",
                                   offset: offset)
        }
        self.queue = queue
        self.family = family
        self.id = id
        self.hook = hook
        self.uid = uid
        self.gid = gid
        self.mark = mark
        inputInterface = input
        outputInterface = output
        self.payload = payload
        self.message = message
    }
}

/// One thing in an NFQUEUE receive buffer.
public enum NfqueueItem {
    case packet(NfqueuePacketView)
    /// NLMSG_ERROR: an answer to a request (0 = ACK).
    case error(errno: Int32, sequence: UInt32)
    /// A message that could not be decoded; after a bad nlmsg_len, the last item.
    case malformed(NetlinkWireError)
    case other(type: UInt16)
}

public enum NfqueueDecoder {
    /// Calls `body` for each message in `buffer`, in order. Never traps, never reads outside
    /// `buffer`.
    public static func forEachItem(in buffer: UnsafeRawBufferPointer, _ body: (NfqueueItem) throws -> Void) rethrows {
        var messages = MessageCursor(buffer: buffer)
        while case let next? = messages.next() {
            let message: MessageCursor.Message
            switch next {
            case .failure(let error):
                try body(.malformed(error))
                return
            case .success(let found):
                message = found
            }
            switch message.header.type {
            case NetlinkMessageType.nfqueuePacket:
                switch Result(catching: { () throws(NetlinkWireError) in
                    try NfqueuePacketView(message: message.bytes, offset: message.offset)
                }) {
                case .success(let view): try body(.packet(view))
                case .failure(let error): try body(.malformed(error))
                }
            case NetlinkMessageType.error:
                guard let errno = message.errorNumber else {
                    try body(.malformed(NetlinkWireError(.invalidErrorCode, "NLMSG_ERROR without a valid error code",
                                                         offset: message.offset)))
                    continue
                }
                try body(.error(errno: errno, sequence: message.header.sequence))
            default:
                try body(.other(type: message.header.type))
            }
        }
    }
}
