// ctnetlink (NFNL_SUBSYS_CTNETLINK = 1): dumping the conntrack table and deleting entries, for
// enforce mode's `--reset-flows`. Same framing as NFLOG/NFQUEUE (nlmsghdr, nfgenmsg with the
// family, TLVs with big-endian values); tuples are nested attributes (NLA_F_NESTED is masked off
// when reading):
//
//   entry (IPCTNL_MSG_CT_NEW in a dump):
//     CTA_TUPLE_ORIG (1, nested)
//       CTA_TUPLE_IP (1, nested):    CTA_IP_V4_SRC 1 / V4_DST 2 (4 bytes), CTA_IP_V6_SRC 3 / V6_DST 4 (16)
//       CTA_TUPLE_PROTO (2, nested): CTA_PROTO_NUM 1 (u8), SRC_PORT 2 / DST_PORT 3 (be16),
//                                    ICMP_ID 4 (be16), ICMP_TYPE 5, ICMP_CODE 6 (u8),
//                                    ICMPV6_ID 7 (be16), ICMPV6_TYPE 8, ICMPV6_CODE 9 (u8)
//     CTA_TUPLE_REPLY (2), CTA_STATUS (3), CTA_MARK (8), CTA_ID (12, be32), … skipped or read
//   dump request:   IPCTNL_MSG_CT_GET with NLM_F_REQUEST | NLM_F_DUMP, nfgenmsg family (0: all)
//   delete request: IPCTNL_MSG_CT_DELETE with NLM_F_REQUEST | NLM_F_ACK and CTA_TUPLE_ORIG (+ CTA_ID)
//
// Entries that do not decode (a missing or wrongly sized address, protocol or port) are reported
// as malformed and never deleted: a delete names exactly a tuple that was read.

import BinaryParsing

extension NetlinkMessageType {
    /// NFNL_SUBSYS_CTNETLINK.
    public static let conntrackSubsystem: UInt16 = 1
    /// A conntrack entry (in a dump), IPCTNL_MSG_CT_NEW.
    public static let conntrackNew: UInt16 = conntrackSubsystem << 8 | 0
    /// IPCTNL_MSG_CT_GET.
    public static let conntrackGet: UInt16 = conntrackSubsystem << 8 | 1
    /// IPCTNL_MSG_CT_DELETE.
    public static let conntrackDelete: UInt16 = conntrackSubsystem << 8 | 2
}

/// A conntrack entry's original-direction tuple: who started the flow, to whom.
public struct ConntrackEntry: Sendable, Equatable {
    /// 2 (AF_INET) or 10 (AF_INET6).
    public var family: UInt8
    /// Raw address bytes (4 or 16).
    public var source: [UInt8]
    public var destination: [UInt8]
    public var protocolNumber: UInt8
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    public var icmpID: UInt16?
    public var icmpType: UInt8?
    public var icmpCode: UInt8?
    /// CTA_ID, which a delete may name to be exact.
    public var id: UInt32?

    public init(family: UInt8, source: [UInt8], destination: [UInt8], protocolNumber: UInt8,
                sourcePort: UInt16? = nil, destinationPort: UInt16? = nil, icmpID: UInt16? = nil,
                icmpType: UInt8? = nil, icmpCode: UInt8? = nil, id: UInt32? = nil) {
        self.family = family
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.icmpID = icmpID
        self.icmpType = icmpType
        self.icmpCode = icmpCode
        self.id = id
    }
}

public enum ConntrackMessages {
    /// NLM_F_DUMP (NLM_F_ROOT | NLM_F_MATCH).
    static let dumpFlags = NetlinkMessageFlags(rawValue: 0x300)
    /// NLA_F_NESTED.
    static let nested: UInt16 = 0x8000

    /// A request for every entry of `family` (0: IPv4 and IPv6).
    public static func dump(family: UInt8 = 0, sequence: UInt32) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: NetlinkMessageType.conntrackGet,
                                          flags: [.request, dumpFlags], sequence: sequence)
        writer.appendNfgenmsg(family: family, group: 0)
        return writer.finish()
    }

    /// A request deleting `entry` (by its original tuple, and its id when known), acknowledged.
    public static func delete(_ entry: ConntrackEntry, sequence: UInt32) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: NetlinkMessageType.conntrackDelete, flags: [.request, .ack],
                                          sequence: sequence)
        writer.appendNfgenmsg(family: entry.family, group: 0)
        let v6 = entry.family == 10
        let ip = attribute(v6 ? 3 : 1, entry.source) + attribute(v6 ? 4 : 2, entry.destination)
        var proto = attribute(1, [entry.protocolNumber])
        if let port = entry.sourcePort { proto += attribute(2, port.bigEndianBytes) }
        if let port = entry.destinationPort { proto += attribute(3, port.bigEndianBytes) }
        if let id = entry.icmpID { proto += attribute(v6 ? 7 : 4, id.bigEndianBytes) }
        if let type = entry.icmpType { proto += attribute(v6 ? 8 : 5, [type]) }
        if let code = entry.icmpCode { proto += attribute(v6 ? 9 : 6, [code]) }
        writer.appendAttribute(type: 1 | nested, attribute(1 | nested, ip) + attribute(2 | nested, proto))
        if let id = entry.id { writer.appendAttribute(type: 12, bigEndian: id) }
        return writer.finish()
    }

    /// One padded TLV (host-order header).
    static func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
        var bytes = withUnsafeBytes(of: UInt16(NetlinkAttribute.headerSize + value.count), Array.init)
            + withUnsafeBytes(of: type, Array.init) + value
        while bytes.count % 4 != 0 { bytes.append(0) }
        return bytes
    }
}

/// One thing in a ctnetlink receive buffer.
public enum ConntrackItem: Sendable {
    case entry(ConntrackEntry)
    /// NLMSG_DONE: the dump is complete.
    case done
    /// NLMSG_ERROR: an answer (0 = ACK).
    case error(errno: Int32, sequence: UInt32)
    case malformed(NetlinkWireError)
    case other(type: UInt16)
}

public enum ConntrackDecoder {
    /// Calls `body` for each message in `buffer`. Never traps, never reads outside `buffer`.
    public static func forEachItem(in buffer: UnsafeRawBufferPointer, _ body: (ConntrackItem) -> Void) {
        var messages = MessageCursor(buffer: buffer)
        while case let next? = messages.next() {
            let message: MessageCursor.Message
            switch next {
            case .failure(let error):
                body(.malformed(error))
                return
            case .success(let found):
                message = found
            }
            switch message.header.type {
            case NetlinkMessageType.conntrackNew:
                do throws(NetlinkWireError) {
                    body(.entry(try entry(message.bytes, offset: message.offset)))
                } catch {
                    body(.malformed(error))
                }
            case NetlinkMessageType.done:
                body(.done)
            case NetlinkMessageType.error:
                guard let errno = message.errorNumber else {
                    body(.malformed(NetlinkWireError(.invalidErrorCode, "NLMSG_ERROR without a valid error code",
                                                     offset: message.offset)))
                    continue
                }
                body(.error(errno: errno, sequence: message.header.sequence))
            default:
                body(.other(type: message.header.type))
            }
        }
    }

    static func entry(_ message: UnsafeRawBufferPointer, offset: Int) throws(NetlinkWireError) -> ConntrackEntry {
        let fixedEnd = NetlinkMessageHeader.size + NfgenMessage.size
        guard let family = message.byte(at: NetlinkMessageHeader.size), let attributes = message.suffix(from: fixedEnd) else {
            throw NetlinkWireError(.truncatedMessage, "conntrack message of \(message.count) bytes has no nfgenmsg", offset: offset)
        }
        let addressSize = family == 10 ? 16 : 4
        var entry = ConntrackEntry(family: family, source: [], destination: [], protocolNumber: 0)
        var sawProtocol = false
        var cursor = AttributeCursor(area: attributes, baseOffset: offset + fixedEnd)
        while let attribute = try cursor.next() {
            switch attribute.type {
            case 1:  // CTA_TUPLE_ORIG
                var tuple = AttributeCursor(area: attribute.value, baseOffset: attribute.offset + NetlinkAttribute.headerSize)
                while let part = try tuple.next() {
                    var inner = AttributeCursor(area: part.value, baseOffset: part.offset + NetlinkAttribute.headerSize)
                    switch part.type {
                    case 1:  // CTA_TUPLE_IP
                        while let ip = try inner.next() {
                            guard (1...4).contains(ip.type) else { continue }
                            guard ip.value.count == addressSize else {
                                throw NetlinkWireError(.invalidAttributeValue, "conntrack address attribute \(ip.type) has "
                                                       + "\(ip.value.count) bytes, expected \(addressSize)", offset: ip.offset)
                            }
                            if ip.type == 1 || ip.type == 3 { entry.source = Array(ip.value) } else { entry.destination = Array(ip.value) }
                        }
                    case 2:  // CTA_TUPLE_PROTO
                        while let proto = try inner.next() {
                            let expected = [1: 1, 2: 2, 3: 2, 4: 2, 5: 1, 6: 1, 7: 2, 8: 1, 9: 1][Int(proto.type)]
                            guard let expected else { continue }
                            guard proto.value.count == expected else {
                                throw NetlinkWireError(.invalidAttributeValue, "conntrack protocol attribute \(proto.type) has "
                                                       + "\(proto.value.count) bytes, expected \(expected)", offset: proto.offset)
                            }
                            switch proto.type {
                            case 1:
                                entry.protocolNumber = proto.value.byte(at: 0) ?? 0
                                sawProtocol = true
                            case 2: entry.sourcePort = proto.value.bigEndianUInt16(at: 0)
                            case 3: entry.destinationPort = proto.value.bigEndianUInt16(at: 0)
                            case 4, 7: entry.icmpID = proto.value.bigEndianUInt16(at: 0)
                            case 5, 8: entry.icmpType = proto.value.byte(at: 0)
                            default: entry.icmpCode = proto.value.byte(at: 0)
                            }
                        }
                    default:
                        continue
                    }
                }
            case 12:  // CTA_ID
                entry.id = attribute.value.count == 4 ? attribute.value.bigEndianUInt32(at: 0) : nil
            default:
                continue
            }
        }
        guard sawProtocol, entry.source.count == addressSize, entry.destination.count == addressSize else {
            throw NetlinkWireError(.truncatedMessage, "conntrack entry without a complete original tuple", offset: offset)
        }
        return entry
    }
}
