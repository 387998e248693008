// One NFULNL_MSG_PACKET message, validated in one pass.
//
//   [nlmsghdr][nfgenmsg: family, version, res_id = group][attributes ...]
//                                                        └ one walk: every known attribute's
//                                                          size checked, the hot fields kept
//
// Every known attribute's size is checked during the walk, so a malformed message is rejected
// the same way whatever is read from it later. The fields every packet needs (hook, uid, gid,
// sequence, prefix, payload) are taken on the way; the rest are read by a second walk, only for
// packets that are shown (`record`).

import PacketModel
import BinaryParsing

/// A decoded NFLOG packet message, as views into the receive buffer: valid only inside the
/// callback that received it. The monitor reads the few fields every packet needs (uid,
/// sequence, prefix, payload) straight from the view, and builds the full `NflogRecord` only for
/// packets it shows.
public struct NflogPacketView {
    /// The NFLOG group (`nfgenmsg.res_id`).
    public let group: UInt16
    /// The packet's protocol family (`nfgenmsg.nfgen_family`): 2 = IPv4, 10 = IPv6.
    public let family: UInt8
    /// Netfilter hook number (NFULA_PACKET_HDR), 0 when absent.
    public let hook: UInt8
    /// Socket owner's fsuid (NFULA_UID).
    public let uid: UInt32?
    /// Socket owner's fsgid (NFULA_GID).
    public let gid: UInt32?
    /// Per-group sequence number (NFULA_SEQ).
    public let sequence: UInt32?
    /// The NFULA_PAYLOAD bytes (the packet from its network header), empty when absent.
    public let payload: UnsafeRawBufferPointer
    /// The log prefix's bytes up to its first NUL, nil when absent or empty (nft's "no prefix").
    /// A view: nothing is copied.
    public let prefixBytes: UnsafeRawBufferPointer?
    /// The attribute area, walked again for `record`.
    private let attributes: UnsafeRawBufferPointer
    /// The whole message (from its nlmsghdr), to be decoded again into a record later.
    public let message: UnsafeRawBufferPointer

    /// Validates `message` (it starts at its nlmsghdr and is exactly nlmsg_len long); `offset`
    /// is its position in the batch, used only in error offsets.
    ///
    /// Throws `.truncatedMessage` when nfgenmsg is missing, `.invalidAttributeLength` for a bad
    /// nla_len, and `.invalidAttributeValue` for a known attribute of the wrong size (the first
    /// such attribute in message order). When a type occurs twice, the last one counts.
    @inline(__always)
    public init(message: UnsafeRawBufferPointer, offset: Int = 0) throws(NetlinkWireError) {
        var refusal = Refusal()
        guard let view = Self(validating: message, refusal: &refusal) else {
            throw refusal.error(messageBytes: message.count, messageOffset: offset)
        }
        self = view
    }

    /// Why `init(validating:refusal:)` refused a message, as plain numbers: the error and its
    /// text are made only for a malformed message (`error`), never on the per-packet path.
    public struct Refusal: Sendable {
        enum Reason: Sendable { case noNfgenmsg, attributeLength, valueSize }
        var reason = Reason.noNfgenmsg
        /// The attribute's type (flags masked off), its nla_len or value size, the bytes left
        /// in the message at it, and its position in the message.
        var type: UInt16 = 0
        var length = 0
        var remaining = 0
        var position = 0

        public init() {}

        init(reason: Reason, type: UInt16, length: Int, remaining: Int, position: Int) {
            self.reason = reason
            self.type = type
            self.length = length
            self.remaining = remaining
            self.position = position
        }

        /// The error `init(message:offset:)` throws; `messageOffset` is the message's position
        /// in its batch.
        @inline(never)
        public func error(messageBytes: Int, messageOffset: Int) -> NetlinkWireError {
            switch reason {
            case .noNfgenmsg:
                NetlinkWireError(.truncatedMessage, "NFLOG packet message of \(messageBytes) bytes has no nfgenmsg",
                                 offset: messageOffset)
            case .attributeLength:
                NetlinkWireError(.invalidAttributeLength,
                                 "attribute \(type) has length \(length); \(remaining) bytes remain in the message",
                                 offset: messageOffset + position)
            case .valueSize:
                NflogPacketView.wrongSize(type, length, messageOffset + position)
            }
        }
    }

    /// The per-packet path: the same checks as `init(message:offset:)` in one walk of plain
    /// loads, nil when one fails, with where and why in `refusal` (no error value, and so no
    /// String, on the way of a valid message). The batch walk fell from 384 to 361 instructions
    /// a message with it (callgrind, `bench/callgrind-monitor.sh`).
    @inline(__always)
    public init?(validating message: UnsafeRawBufferPointer, refusal: inout Refusal) {
        let fixedEnd = NetlinkMessageHeader.size + NfgenMessage.size
        let end = message.count
        guard end >= fixedEnd, let base = message.baseAddress else {
            refusal.reason = .noNfgenmsg
            return nil
        }
        // Where the hot attributes start (0: absent, as no attribute starts before nfgenmsg's
        // end). One integer each keeps the walk's state in registers; the values are read after it.
        var uidAt = 0, gidAt = 0, sequenceAt = 0, headerAt = 0, payloadAt = 0, prefixAt = 0
        var position = fixedEnd
        // `end - position` is what remains; an aligned step past the end makes it negative and
        // ends the walk (a last attribute's missing padding, or up to 3 trailing bytes, pass).
        while end &- position >= NetlinkAttribute.headerSize {
            let length = Int(base.loadUnaligned(fromByteOffset: position, as: UInt16.self))  // host order
            let type = base.loadUnaligned(fromByteOffset: position &+ 2, as: UInt16.self) & NetlinkAttribute.typeMask
            guard length >= NetlinkAttribute.headerSize, length <= end &- position else {
                refusal = Refusal(reason: .attributeLength, type: type, length: length,
                                  remaining: end &- position, position: position)
                return nil
            }
            let valueLength = length &- NetlinkAttribute.headerSize
            switch type {
            case NflogAttributeType.uid.rawValue: uidAt = position
            case NflogAttributeType.sequence.rawValue: sequenceAt = position
            case NflogAttributeType.gid.rawValue: gidAt = position
            case NflogAttributeType.packetHeader.rawValue: headerAt = position
            case NflogAttributeType.payload.rawValue: payloadAt = position
            case NflogAttributeType.prefix.rawValue: prefixAt = position
            default: break
            }
            guard Self.hasValidSize(type: type, length: valueLength) else {
                refusal = Refusal(reason: .valueSize, type: type, length: valueLength,
                                  remaining: end &- position, position: position)
                return nil
            }
            position &+= (length &+ 3) & ~3  // length ≤ 65535
        }
        func word(at attribute: Int) -> UInt32? {
            attribute == 0 ? nil : UInt32(bigEndian: base.loadUnaligned(
                fromByteOffset: attribute &+ NetlinkAttribute.headerSize, as: UInt32.self))
        }
        /// The value of the attribute at `attribute`, whose header the walk checked.
        func value(at attribute: Int) -> UnsafeRawBufferPointer {
            let length = Int(base.loadUnaligned(fromByteOffset: attribute, as: UInt16.self))
            return UnsafeRawBufferPointer(start: base + (attribute &+ NetlinkAttribute.headerSize),
                                          count: length &- NetlinkAttribute.headerSize)
        }
        self.group = UInt16(bigEndian: base.loadUnaligned(fromByteOffset: NetlinkMessageHeader.size &+ 2, as: UInt16.self))
        self.family = base.load(fromByteOffset: NetlinkMessageHeader.size, as: UInt8.self)
        self.hook = headerAt == 0 ? 0 : base.load(fromByteOffset: headerAt &+ NetlinkAttribute.headerSize &+ 2, as: UInt8.self)
        self.uid = word(at: uidAt)
        self.gid = word(at: gidAt)
        self.sequence = word(at: sequenceAt)
        self.payload = payloadAt == 0 ? UnsafeRawBufferPointer(start: nil, count: 0) : value(at: payloadAt)
        self.attributes = UnsafeRawBufferPointer(start: base + fixedEnd, count: end &- fixedEnd)
        self.message = message
        // The kernel sends the prefix with its NUL; up to the first NUL is what was configured.
        if prefixAt != 0, case let characters = value(at: prefixAt).prefixBeforeFirstZeroByte(), !characters.isEmpty {
            prefixBytes = characters
        } else {
            prefixBytes = nil
        }
    }

    /// What an event needs from a message beyond the hot fields, read in one walk.
    public struct EventFields {
        public var timestamp: NflogTimestamp?
        public var sequence: UInt32?
        public var inputInterface: UInt32?
        public var outputInterface: UInt32?
        public var mark: UInt32?

        public init() {}
    }

    /// The event fields of a message this type already validated (the prefix is the view's
    /// `prefixBytes`): for the packets that become events, one lean walk over raw attribute
    /// numbers instead of validating again and building a whole record. Every read stays
    /// within the message (a malformed attribute ends the walk), but nothing is reported;
    /// nil when the message has no nfgenmsg.
    public static func eventFields(ofValidatedMessage message: UnsafeRawBufferPointer) -> EventFields? {
        var fields = EventFields()
        return readEventFields(ofValidatedMessage: message, into: &fields) ? fields : nil
    }

    /// `eventFields(ofValidatedMessage:)` into the caller's `fields` (set beforehand to what a
    /// message without the attributes gives); false when the message has no nfgenmsg. The
    /// caller's value is written in place: returning an optional struct copied it (−57
    /// instructions an event in the JSON path).
    @inline(__always)
    public static func readEventFields(ofValidatedMessage message: UnsafeRawBufferPointer,
                                       into fields: inout EventFields) -> Bool {
        let fixedEnd = NetlinkMessageHeader.size + NfgenMessage.size
        let end = message.count
        guard end >= fixedEnd, let base = message.baseAddress else { return false }
        var position = fixedEnd
        // The checked cursor with `try?` cost ~38 instructions an attribute here; this loop
        // does the same bounds checks with plain loads.
        while end &- position >= NetlinkAttribute.headerSize {
            let length = Int(base.loadUnaligned(fromByteOffset: position, as: UInt16.self))  // host order
            guard length >= NetlinkAttribute.headerSize, length <= end &- position else { break }
            let type = base.loadUnaligned(fromByteOffset: position &+ 2, as: UInt16.self) & NetlinkAttribute.typeMask
            let value = position &+ NetlinkAttribute.headerSize
            let valueLength = length &- NetlinkAttribute.headerSize
            func word(_ offset: Int = 0) -> UInt32 {
                UInt32(bigEndian: base.loadUnaligned(fromByteOffset: value &+ offset, as: UInt32.self))
            }
            switch type {
            case NflogAttributeType.sequence.rawValue where valueLength == 4: fields.sequence = word()
            case NflogAttributeType.inputInterface.rawValue where valueLength == 4: fields.inputInterface = word()
            case NflogAttributeType.outputInterface.rawValue where valueLength == 4: fields.outputInterface = word()
            case NflogAttributeType.mark.rawValue where valueLength == 4: fields.mark = word()
            case NflogAttributeType.timestamp.rawValue where valueLength == NflogStructSize.timestamp:
                fields.timestamp = NflogTimestamp(seconds: UInt64(word()) << 32 | UInt64(word(4)),
                                                  microseconds: UInt64(word(8)) << 32 | UInt64(word(12)))
            default: break
            }
            position &+= (length &+ 3) & ~3
        }
        return true
    }

    /// Everything the message carries, as a value that outlives the buffer.
    public var record: NflogRecord {
        var record = NflogRecord()
        record.family = family
        record.group = group
        record.hook = hook
        record.uid = uid
        record.gid = gid
        record.sequence = sequence
        record.rawPrefix = prefixBytes.flatMap(LogPrefix.init(bytes:))
        record.capturedLength = payload.count
        var hardwareHeaderLength: Int?
        var hardwareHeaderBytes: Int?
        // Validated by init: the walk cannot fail, and every fixed-size value has its size.
        try? forEachAttribute(in: attributes, baseOffset: 0) { type, value, _ in
            switch NflogAttributeType(rawValue: type) {
            case .packetHeader?: record.hardwareProtocol = value.bigEndianUInt16(at: 0) ?? 0
            case .mark?: record.mark = value.bigEndianUInt32(at: 0)
            case .globalSequence?: record.globalSequence = value.bigEndianUInt32(at: 0)
            case .inputInterface?: record.inputInterface = value.bigEndianUInt32(at: 0)
            case .outputInterface?: record.outputInterface = value.bigEndianUInt32(at: 0)
            case .physicalInputInterface?: record.physicalInputInterface = value.bigEndianUInt32(at: 0)
            case .physicalOutputInterface?: record.physicalOutputInterface = value.bigEndianUInt32(at: 0)
            case .timestamp?:
                record.timestamp = NflogTimestamp(seconds: value.bigEndianUInt64(at: 0) ?? 0,
                                                  microseconds: value.bigEndianUInt64(at: 8) ?? 0)
            case .hardwareAddress?: record.hardwareAddress = Self.hardwareAddress(value)
            case .hardwareType?: record.hardwareType = value.bigEndianUInt16(at: 0)
            case .hardwareHeaderLength?: hardwareHeaderLength = value.bigEndianUInt16(at: 0).map(Int.init)
            case .hardwareHeader?: hardwareHeaderBytes = value.count
            default: break
            }
        }
        // The kernel sends HWTYPE, HWLEN and HWHEADER together; HWLEN is the declared length.
        record.hardwareHeaderLength = hardwareHeaderLength ?? hardwareHeaderBytes
        return record
    }

    /// Whether a known fixed-size attribute has its size; variable-size and unknown ones pass
    /// (so a newer kernel's additions decode). Runs for every attribute of every packet: a
    /// switch over raw numbers (a table lookup). uid, gid, the sequence and the packet header
    /// are read without further checks because of it.
    @inline(__always)
    static func hasValidSize(type: UInt16, length: Int) -> Bool {
        switch type {
        case 2, 4, 5, 6, 7, 11, 12, 13, 14: length == 4   // mark, ifindexes, uid, seq, seq_global, gid
        case 15, 17: length == 2                          // hwtype, hwlen
        case 1: length == NflogStructSize.packetHeader
        case 3: length == NflogStructSize.timestamp
        case 8: length == NflogStructSize.hardwareAddress
        default: true
        }
    }

    /// Kept out of line: only malformed messages get here.
    @inline(never)
    static func wrongSize(_ rawType: UInt16, _ length: Int, _ offset: Int) -> NetlinkWireError {
        let what: String
        switch NflogAttributeType(rawValue: rawType) {
        case .hardwareType?, .hardwareHeaderLength?: what = "a uint16"
        case .packetHeader?: what = "a struct nfulnl_msg_packet_hdr"
        case .timestamp?: what = "a struct nfulnl_msg_packet_timestamp"
        case .hardwareAddress?: what = "a struct nfulnl_msg_packet_hw"
        default: what = "a uint32"
        }
        let name = NflogAttributeType(rawValue: rawType)?.kernelName ?? "\(rawType)"
        return NetlinkWireError(.invalidAttributeValue, "attribute \(name) is not \(what); length: \(length)",
                                offset: offset)
    }

    /// A hw_addrlen above 8 (possible for devices with long addresses) is clamped to the 8
    /// bytes the struct can hold, which are all the kernel copies.
    private static func hardwareAddress(_ value: UnsafeRawBufferPointer) -> HardwareAddress {
        let declared = Int(value.bigEndianUInt16(at: 0) ?? 0)
        let length = min(declared, NflogStructSize.hardwareAddressBytes)
        var bits: UInt64 = 0
        for index in 0..<length {
            bits |= UInt64(value.byte(at: 4 + index) ?? 0) << UInt64(56 - 8 * index)
        }
        return HardwareAddress(bits: bits, length: length)
    }
}
