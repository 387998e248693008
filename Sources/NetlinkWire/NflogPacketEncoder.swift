// Encoding NFLOG packet messages and batches, the way the kernel lays them out
// (net/netfilter/nfnetlink_log.c, __build_packet_message):
//
//   [nlmsghdr type 0x0400][nfgenmsg family|0|be16 group]
//   [PACKET_HDR][PREFIX "...\0"][IFINDEX_INDEV][IFINDEX_PHYSINDEV][IFINDEX_OUTDEV]
//   [IFINDEX_PHYSOUTDEV][MARK][HWADDR][HWTYPE][HWLEN][TIMESTAMP][UID][GID][SEQ][SEQ_GLOBAL]
//   [PAYLOAD]
//   ... more messages ... [NLMSG_DONE + nfgenmsg AF_UNSPEC|0|be16 group]
//   (this kernel sets no NLM_F_MULTI on batch messages, nor on the NLMSG_DONE: flags are 0)
//
// Nothing in the product sends these: they are for tests (other modules synthesize batches with it) and
// for the decode → encode → decode fuzz round trip.

import BinaryParsing

public enum NflogPacketEncoder {
    /// One NFULNL_MSG_PACKET message carrying `record`'s fields and `payload` as NFULA_PAYLOAD.
    ///
    /// Optional fields that are nil are left out. `record.capturedLength` is ignored: the
    /// payload's length is what a decoder reports. `record.hardwareHeaderLength` is sent as
    /// NFULA_HWLEN only (no NFULA_HWHEADER bytes). A prefix is sent with its NUL terminator, as
    /// the kernel's nla_put_string does; a nil prefix sends no attribute.
    public static func encode(
        _ record: NflogRecord, payload: [UInt8], sequence: UInt32 = 0,
        flags: NetlinkMessageFlags = []
    ) -> [UInt8] {
        var writer = NetlinkMessageWriter(
            type: NetlinkMessageType.nflogPacket, flags: flags, sequence: sequence)
        writer.appendNfgenmsg(family: record.family, group: record.group)

        writer.appendAttribute(
            type: NflogAttributeType.packetHeader.rawValue,
            record.hardwareProtocol.bigEndianBytes + [record.hook, 0])
        if let prefix = record.rawPrefix {
            // The bytes as decoded (invalid UTF-8 included), so decode → encode → decode is exact.
            writer.appendAttribute(type: NflogAttributeType.prefix.rawValue, prefix.withBytes { Array($0) } + [0])
        }
        func put(_ type: NflogAttributeType, _ value: UInt32?) {
            if let value { writer.appendAttribute(type: type.rawValue, bigEndian: value) }
        }
        put(.inputInterface, record.inputInterface)
        put(.physicalInputInterface, record.physicalInputInterface)
        put(.outputInterface, record.outputInterface)
        put(.physicalOutputInterface, record.physicalOutputInterface)
        put(.mark, record.mark)
        if let address = record.hardwareAddress {
            let length = max(0, min(address.length, NflogStructSize.hardwareAddressBytes))
            var value = UInt16(length).bigEndianBytes + [0, 0]
            for index in 0..<NflogStructSize.hardwareAddressBytes {
                let byte = UInt8(truncatingIfNeeded: address.bits >> UInt64(56 - 8 * index))
                value.append(index < length ? byte : 0)
            }
            writer.appendAttribute(type: NflogAttributeType.hardwareAddress.rawValue, value)
        }
        if let hardwareType = record.hardwareType {
            writer.appendAttribute(type: NflogAttributeType.hardwareType.rawValue, bigEndian: hardwareType)
        }
        if let headerLength = record.hardwareHeaderLength {
            writer.appendAttribute(
                type: NflogAttributeType.hardwareHeaderLength.rawValue,
                bigEndian: UInt16(clamping: headerLength))
        }
        if let timestamp = record.timestamp {
            writer.appendAttribute(
                type: NflogAttributeType.timestamp.rawValue,
                timestamp.seconds.bigEndianBytes + timestamp.microseconds.bigEndianBytes)
        }
        put(.uid, record.uid)
        put(.gid, record.gid)
        put(.sequence, record.sequence)
        put(.globalSequence, record.globalSequence)
        if !payload.isEmpty {
            writer.appendAttribute(type: NflogAttributeType.payload.rawValue, payload)
        }
        return writer.finish()
    }

    /// A multi-message batch as the kernel sends it: the packet messages, then NLMSG_DONE for
    /// `group`. Like the recorded kernel batches, every message has flags 0 and nlmsg_seq 0.
    public static func encodeBatch(
        _ packets: [(record: NflogRecord, payload: [UInt8])], group: UInt16 = 0
    ) -> [UInt8] {
        var batch: [UInt8] = []
        for packet in packets {
            batch += encode(packet.record, payload: packet.payload)
        }
        batch += NetlinkMessageEncoder.done(group: group)
        return batch
    }
}

/// The generic netlink messages NFLOG sockets receive besides packets.
public enum NetlinkMessageEncoder {
    /// NLMSG_DONE carrying an nfgenmsg (AF_UNSPEC, version 0, res_id = `group`) and flags 0,
    /// byte for byte how nfnetlink_log ends a batch (see Fixtures/batch-5-udp4.bin).
    public static func done(group: UInt16 = 0, sequence: UInt32 = 0) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: NetlinkMessageType.done, flags: [], sequence: sequence)
        writer.appendNfgenmsg(family: NflogConfigRequest.familyUnspecified, group: group)
        return writer.finish()
    }

    /// NLMSG_ERROR answering the request `original`, echoing only its 16-byte header (what the
    /// kernel sends for an ACK; for errors it echoes the whole request unless NETLINK_CAP_ACK is
    /// set, which decoders ignore anyway). `errno` is positive (0 = ACK); it is sent negated.
    public static func error(errno: Int32, answering original: [UInt8], portID: UInt32 = 0) -> [UInt8] {
        var header = Array(original.prefix(NetlinkMessageHeader.size))
        header += [UInt8](repeating: 0, count: NetlinkMessageHeader.size - header.count)
        let sequence = header.withUnsafeBytes { $0.hostUInt32(at: 8) } ?? 0
        var writer = NetlinkMessageWriter(type: NetlinkMessageType.error, flags: [], sequence: sequence, portID: portID)
        writer.appendHost(Int32(0) &- errno)
        for byte in header { writer.appendHost(byte) }
        return writer.finish()
    }
}
