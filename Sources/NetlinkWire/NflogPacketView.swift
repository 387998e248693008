// One NFULNL_MSG_PACKET message, validated in one pass and read on demand.
//
//   [nlmsghdr][nfgenmsg: family, version, res_id = group][attributes ...]
//                                                        └ AttributeTable: where each type lies
//
// Every known attribute's size is checked while the table is built, so a malformed message is
// rejected the same way whatever is read from it later; the reads themselves cannot fail.

import BinaryParsing

/// A decoded NFLOG packet message, as views into the receive buffer: valid only inside the
/// callback that received it. The monitor reads the few fields every packet needs (uid,
/// sequence, prefix, payload) straight from the message, and builds the full `NflogRecord`
/// only for packets it shows.
public struct NflogPacketView {
    /// The NFLOG group (`nfgenmsg.res_id`).
    public let group: UInt16
    /// The packet's protocol family (`nfgenmsg.nfgen_family`): 2 = IPv4, 10 = IPv6.
    public let family: UInt8
    /// The NFULA_PAYLOAD bytes (the packet from its network header), empty when absent.
    public let payload: UnsafeRawBufferPointer
    @usableFromInline let table: AttributeTable

    /// Validates `message` (it starts at its nlmsghdr and is exactly nlmsg_len long); `offset`
    /// is its position in the batch, used only in error offsets.
    ///
    /// Throws `.truncatedMessage` when nfgenmsg is missing, `.invalidAttributeLength` for a bad
    /// nla_len, and `.invalidAttributeValue` for a known attribute of the wrong size (the first
    /// such attribute in message order).
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
        self.family = family
        self.group = group
        table = try AttributeTable(area: attributes, baseOffset: offset + fixedEnd) {
            (type, length, attributeOffset) throws(NetlinkWireError) in
            try Self.checkSize(type: type, length: length, offset: attributeOffset)
        }
        payload = table.value(NflogAttributeType.payload.rawValue) ?? UnsafeRawBufferPointer(start: nil, count: 0)
    }

    /// Netfilter hook number (NFULA_PACKET_HDR), 0 when absent.
    @inlinable @inline(__always)
    public var hook: UInt8 { table.value(NflogAttributeType.packetHeader.rawValue)?.byte(at: 2) ?? 0 }
    /// Socket owner's fsuid (NFULA_UID).
    @inlinable @inline(__always)
    public var uid: UInt32? { uint32(.uid) }
    /// Socket owner's fsgid (NFULA_GID).
    @inlinable @inline(__always)
    public var gid: UInt32? { uint32(.gid) }
    /// Per-group sequence number (NFULA_SEQ).
    @inlinable @inline(__always)
    public var sequence: UInt32? { uint32(.sequence) }

    /// The log prefix's bytes up to its first NUL, nil when absent or empty (nft's "no prefix").
    /// A view: nothing is copied.
    @inlinable @inline(__always)
    public var prefixBytes: UnsafeRawBufferPointer? {
        guard let value = table.value(NflogAttributeType.prefix.rawValue) else { return nil }
        var end = 0
        while end < value.count, value[end] != 0 { end += 1 }  // index checked by the loop condition
        guard end > 0 else { return nil }
        return UnsafeRawBufferPointer(rebasing: value[0..<end])
    }

    /// Everything the message carries, as a value that outlives the buffer.
    public var record: NflogRecord {
        var record = NflogRecord()
        record.family = family
        record.group = group
        if let value = table.value(NflogAttributeType.packetHeader.rawValue) {
            record.hardwareProtocol = value.bigEndianUInt16(at: 0) ?? 0
            record.hook = value.byte(at: 2) ?? 0
        }
        record.rawPrefix = prefixBytes.flatMap(NflogPrefix.init(bytes:))
        record.uid = uid
        record.gid = gid
        record.sequence = sequence
        record.globalSequence = uint32(.globalSequence)
        record.mark = uint32(.mark)
        record.inputInterface = uint32(.inputInterface)
        record.outputInterface = uint32(.outputInterface)
        record.physicalInputInterface = uint32(.physicalInputInterface)
        record.physicalOutputInterface = uint32(.physicalOutputInterface)
        if let value = table.value(NflogAttributeType.timestamp.rawValue) {
            record.timestamp = NflogTimestamp(
                seconds: value.bigEndianUInt64(at: 0) ?? 0, microseconds: value.bigEndianUInt64(at: 8) ?? 0)
        }
        if let value = table.value(NflogAttributeType.hardwareAddress.rawValue) {
            record.hardwareAddress = Self.hardwareAddress(value)
        }
        record.hardwareType = uint16(.hardwareType)
        // The kernel sends HWTYPE, HWLEN and HWHEADER together; HWLEN is the declared length.
        record.hardwareHeaderLength = uint16(.hardwareHeaderLength).map(Int.init)
            ?? table.value(NflogAttributeType.hardwareHeader.rawValue)?.count
        record.capturedLength = payload.count
        return record
    }

    /// Sizes were checked when the table was built: absent or of the right size.
    @inlinable @inline(__always)
    func uint32(_ type: NflogAttributeType) -> UInt32? {
        table.value(type.rawValue)?.bigEndianUInt32(at: 0)
    }

    @inlinable @inline(__always)
    func uint16(_ type: NflogAttributeType) -> UInt16? {
        table.value(type.rawValue)?.bigEndianUInt16(at: 0)
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
