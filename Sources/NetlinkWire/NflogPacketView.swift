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
        let fixedEnd = NetlinkMessageHeader.size + NfgenMessage.size
        guard let family = message.byte(at: NetlinkMessageHeader.size),
              let group = message.bigEndianUInt16(at: NetlinkMessageHeader.size + 2),
              let attributes = message.suffix(from: fixedEnd)
        else {
            throw NetlinkWireError(
                .truncatedMessage,
                "NFLOG packet message of \(message.count) bytes has no nfgenmsg", offset: offset)
        }
        var hook: UInt8 = 0
        var uid: UInt32?
        var gid: UInt32?
        var sequence: UInt32?
        var payload = UnsafeRawBufferPointer(start: nil, count: 0)
        var prefix: UnsafeRawBufferPointer?
        var cursor = AttributeCursor(area: attributes, baseOffset: offset + fixedEnd)
        while let attribute = try cursor.next() {
            // The hot fields' sizes are checked where they are read (which lets the reads go
            // unchecked); every other known attribute's in checkSize.
            let value = attribute.value
            switch attribute.type {
            case NflogAttributeType.uid.rawValue:
                guard value.count == 4 else { throw Self.wrongSize(attribute.type, value.count, attribute.offset) }
                uid = value.bigEndianUInt32(at: 0)
            case NflogAttributeType.sequence.rawValue:
                guard value.count == 4 else { throw Self.wrongSize(attribute.type, value.count, attribute.offset) }
                sequence = value.bigEndianUInt32(at: 0)
            case NflogAttributeType.gid.rawValue:
                guard value.count == 4 else { throw Self.wrongSize(attribute.type, value.count, attribute.offset) }
                gid = value.bigEndianUInt32(at: 0)
            case NflogAttributeType.packetHeader.rawValue:
                guard value.count == NflogStructSize.packetHeader else {
                    throw Self.wrongSize(attribute.type, value.count, attribute.offset)
                }
                hook = value.byte(at: 2) ?? 0
            case NflogAttributeType.payload.rawValue:
                payload = value
            case NflogAttributeType.prefix.rawValue:
                prefix = value
            default:
                try Self.checkSize(type: attribute.type, length: value.count, offset: attribute.offset)
            }
        }
        self.group = group
        self.family = family
        self.hook = hook
        self.uid = uid
        self.gid = gid
        self.sequence = sequence
        self.payload = payload
        self.attributes = attributes
        self.message = message
        // The kernel sends the prefix with its NUL; up to the first NUL is what was configured.
        if let characters = prefix?.prefixBeforeFirstZeroByte(), !characters.isEmpty {
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

    /// Rejects a known fixed-size attribute of the wrong size; variable-size and unknown ones
    /// pass (so a newer kernel's additions decode). Runs for every attribute of every packet:
    /// a switch over raw numbers (a table lookup), the error text only when it fails.
    @inline(__always)
    static func checkSize(type: UInt16, length: Int, offset: Int) throws(NetlinkWireError) {
        let expected: Int
        switch type {
        case 2, 4, 5, 6, 7, 11, 12, 13, 14: expected = 4   // mark, ifindexes, uid, seq, seq_global, gid
        case 15, 17: expected = 2                          // hwtype, hwlen
        case 1: expected = NflogStructSize.packetHeader
        case 3: expected = NflogStructSize.timestamp
        case 8: expected = NflogStructSize.hardwareAddress
        default: return
        }
        guard length == expected else { throw wrongSize(type, length, offset) }
    }

    /// Kept out of line: only malformed messages get here.
    @inline(never)
    private static func wrongSize(_ rawType: UInt16, _ length: Int, _ offset: Int) -> NetlinkWireError {
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
