// Decoding of an NFLOG recv() buffer.
//
// What the kernel sends to a socket bound to an NFLOG group:
//
//   single packet:  [nlmsghdr type 0x0400][nfgenmsg][attrs...]
//   batch:          [0x0400 msg] ... [0x0400 msg][NLMSG_DONE]   (flags 0, no NLM_F_MULTI)
//   config reply:   [nlmsghdr type NLMSG_ERROR][int32 error][original nlmsghdr ...]
//
//   NFULNL_MSG_PACKET payload:
//   +--------+---------+-------------+-------------------------------------------------+
//   | family | version | res_id be16 | NFULA_PACKET_HDR | NFULA_PREFIX | NFULA_UID ...  |
//   | u8     | u8      | = group     | (TLVs, values big-endian)                        |
//   +--------+---------+-------------+-------------------------------------------------+
//
// Known attributes are checked against the size of their value; unknown ones are skipped so
// a newer kernel's additions do not break decoding.

import BinaryParsing

/// One thing found in a netlink receive buffer.
public enum NetlinkBatchItem {
    /// An NFLOG packet. `payload` is a view into the batch buffer (the NFULA_PAYLOAD bytes,
    /// empty when the message had none), valid only inside the callback: copy what you keep.
    case packet(NflogRecord, payload: UnsafeRawBufferPointer)
    /// NLMSG_DONE, the end of a multi-message batch.
    case done
    /// NLMSG_ERROR: `errno` is positive (e.g. 1 = EPERM), 0 means ACK. `sequence` is the
    /// nlmsg_seq of the request it answers.
    case error(errno: Int32, sequence: UInt32)
    /// A message that could not be decoded. After a bad nlmsg_len there is no way to find the
    /// next message, so this is the last item; after a bad attribute, decoding continues
    /// with the next message.
    case malformed(NetlinkWireError)
    /// A well-framed message of another type (e.g. NLMSG_NOOP), not decoded.
    case other(type: UInt16)
}

public enum NflogBatchDecoder {
    /// Calls `body` once per message in `batch`, in order, without allocating per packet.
    ///
    /// Never traps and never reads outside `batch`: any malformation becomes a `.malformed`
    /// item. A trailing 1…15 bytes that cannot hold a message header count as a bad length.
    public static func forEachItem(
        in batch: UnsafeRawBufferPointer,
        _ body: (NetlinkBatchItem) throws -> Void
    ) rethrows {
        try forEachPacket(in: batch, packet: { record, payload in try body(.packet(record, payload: payload)) },
                          other: body)
    }

    /// The same walk as `forEachItem`, but packets go to `packet` directly: each record is decoded
    /// into one reused value and lent to the callback instead of being copied into an item
    /// (the monitor's per-packet path; a record is a few hundred bytes). Everything else,
    /// including malformed packets, goes to `other`.
    public static func forEachPacket(
        in batch: UnsafeRawBufferPointer,
        packet: (_ record: borrowing NflogRecord, _ payload: UnsafeRawBufferPointer) throws -> Void,
        other: (NetlinkBatchItem) throws -> Void
    ) rethrows {
        var record = NflogRecord()
        var position = 0
        var remaining = batch.count
        while remaining > 0 {
            guard let header = NetlinkMessageHeader(in: batch, at: position) else {
                try other(.malformed(NetlinkWireError(
                    .invalidMessageLength,
                    "\(remaining) bytes left, too few for a \(NetlinkMessageHeader.size)-byte netlink header",
                    offset: position)))
                return
            }
            let length = Int(header.length)
            guard length >= NetlinkMessageHeader.size, length <= remaining,
                  let message = batch.subrange(at: position, count: length)
            else {
                try other(.malformed(NetlinkWireError(
                    .invalidMessageLength,
                    "nlmsg_len \(length) of message type \(header.type) is outside \(NetlinkMessageHeader.size)…\(remaining)",
                    offset: position)))
                return
            }
            if header.type == NetlinkMessageType.nflogPacket {
                let payload: UnsafeRawBufferPointer?
                var failure: NetlinkWireError?
                do {
                    payload = try decodePacket(message: message, offset: position, into: &record)
                } catch {
                    payload = nil
                    failure = error
                }
                if let payload {
                    try packet(record, payload)
                } else if let failure {
                    try other(.malformed(failure))
                }
            } else {
                try other(item(for: header, message: message, offset: position))
            }
            guard let step = netlinkAligned(length) else { return }
            position += step
            remaining -= step  // negative when the last message's padding is missing: loop ends
        }
    }

    /// Decodes one whole message (`message` starts at its nlmsghdr and is exactly nlmsg_len long).
    private static func item(
        for header: NetlinkMessageHeader, message: UnsafeRawBufferPointer, offset: Int
    ) -> NetlinkBatchItem {
        switch header.type {
        case NetlinkMessageType.nflogPacket:
            do {
                let (record, payload) = try decodePacket(message: message, offset: offset)
                return .packet(record, payload: payload)
            } catch {
                return .malformed(error)
            }
        case NetlinkMessageType.done:
            return .done
        case NetlinkMessageType.error:
            guard let code = message.hostInt32(at: NetlinkMessageHeader.size) else {
                return .malformed(NetlinkWireError(
                    .truncatedMessage,
                    "NLMSG_ERROR of \(message.count) bytes has no error code",
                    offset: offset))
            }
            // Int32.min cannot be negated; a positive value is not an errno the kernel sends.
            guard code <= 0, code != Int32.min else {
                return .malformed(NetlinkWireError(
                    .invalidErrorCode, "NLMSG_ERROR carries error \(code), not a negative errno",
                    offset: offset))
            }
            return .error(errno: -code, sequence: header.sequence)
        default:
            return .other(type: header.type)
        }
    }

    /// Decodes an NFULNL_MSG_PACKET message (`message` starts at its nlmsghdr and is exactly
    /// nlmsg_len long). Returns the record and a view of the NFULA_PAYLOAD bytes inside
    /// `message` (empty when absent). `offset` is the message's position in its batch, used
    /// only in error offsets.
    ///
    /// Throws `.truncatedMessage` when nfgenmsg is missing, `.invalidAttributeLength` for a bad
    /// nla_len, and `.invalidAttributeValue` for a known attribute of the wrong size.
    public static func decodePacket(
        message: UnsafeRawBufferPointer, offset: Int = 0
    ) throws(NetlinkWireError) -> (NflogRecord, UnsafeRawBufferPointer) {
        var record = NflogRecord()
        let payload = try decodePacket(message: message, offset: offset, into: &record)
        return (record, payload)
    }

    /// `decodePacket(message:offset:)` into an existing record (overwritten entirely), so the
    /// batch walk reuses one value.
    static func decodePacket(
        message: UnsafeRawBufferPointer, offset: Int, into record: inout NflogRecord
    ) throws(NetlinkWireError) -> UnsafeRawBufferPointer {
        let fixedEnd = NetlinkMessageHeader.size + NfgenMessage.size
        guard let family = message.byte(at: NetlinkMessageHeader.size),
              let group = message.bigEndianUInt16(at: NetlinkMessageHeader.size + 2),
              let attributes = message.suffix(from: fixedEnd)
        else {
            throw NetlinkWireError(
                .truncatedMessage,
                "NFLOG packet message of \(message.count) bytes has no nfgenmsg", offset: offset)
        }
        record = NflogRecord()
        record.family = family
        record.group = group
        // Index first, then read what we know: one tight pass over the attributes, instead of a
        // switch over every attribute (which cost ~90 instructions per attribute, for every
        // logged packet).
        let table = try AttributeTable(area: attributes, baseOffset: offset + fixedEnd)

        if let value = table.value(NflogAttributeType.packetHeader.rawValue) {
            try requireLength(value, NflogStructSize.packetHeader, .packetHeader, "a struct nfulnl_msg_packet_hdr", table)
            record.hardwareProtocol = value.bigEndianUInt16(at: 0) ?? 0
            record.hook = value.byte(at: 2) ?? 0
        }
        if let value = table.value(NflogAttributeType.prefix.rawValue) { record.rawPrefix = prefix(value) }
        record.uid = try uint32(.uid, table)
        record.gid = try uint32(.gid, table)
        record.sequence = try uint32(.sequence, table)
        record.globalSequence = try uint32(.globalSequence, table)
        record.mark = try uint32(.mark, table)
        record.inputInterface = try uint32(.inputInterface, table)
        record.outputInterface = try uint32(.outputInterface, table)
        record.physicalInputInterface = try uint32(.physicalInputInterface, table)
        record.physicalOutputInterface = try uint32(.physicalOutputInterface, table)
        if let value = table.value(NflogAttributeType.timestamp.rawValue) {
            try requireLength(value, NflogStructSize.timestamp, .timestamp, "a struct nfulnl_msg_packet_timestamp", table)
            record.timestamp = NflogTimestamp(
                seconds: value.bigEndianUInt64(at: 0) ?? 0,
                microseconds: value.bigEndianUInt64(at: 8) ?? 0)
        }
        if let value = table.value(NflogAttributeType.hardwareAddress.rawValue) {
            try requireLength(value, NflogStructSize.hardwareAddress, .hardwareAddress, "a struct nfulnl_msg_packet_hw", table)
            record.hardwareAddress = hardwareAddress(value)
        }
        record.hardwareType = try uint16(.hardwareType, table)
        // The kernel sends HWTYPE, HWLEN and HWHEADER together; HWLEN is the declared length.
        if let declared = try uint16(.hardwareHeaderLength, table) {
            record.hardwareHeaderLength = Int(declared)
        } else {
            record.hardwareHeaderLength = table.value(NflogAttributeType.hardwareHeader.rawValue)?.count
        }
        let payload = table.value(NflogAttributeType.payload.rawValue) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        record.capturedLength = payload.count
        return payload
    }

    @inline(__always)
    private static func requireLength(
        _ value: UnsafeRawBufferPointer, _ expected: Int, _ type: NflogAttributeType,
        _ what: StaticString, _ table: borrowing AttributeTable
    ) throws(NetlinkWireError) {
        guard value.count == expected else { throw wrongSize(type, what, value, table) }
    }

    /// Kept out of line: only malformed messages get here.
    @inline(never)
    private static func wrongSize(
        _ type: NflogAttributeType, _ what: StaticString, _ value: UnsafeRawBufferPointer,
        _ table: borrowing AttributeTable
    ) -> NetlinkWireError {
        NetlinkWireError(
            .invalidAttributeValue, "attribute \(type.kernelName) is not \(what); length: \(value.count)",
            offset: table.offset(of: type.rawValue))
    }

    /// The attribute's big-endian uint32, nil when absent; throws when it is not 4 bytes.
    @inline(__always)
    private static func uint32(
        _ type: NflogAttributeType, _ table: borrowing AttributeTable
    ) throws(NetlinkWireError) -> UInt32? {
        guard let value = table.value(type.rawValue) else { return nil }
        guard value.count == 4, let number = value.bigEndianUInt32(at: 0) else {
            throw wrongSize(type, "a uint32", value, table)
        }
        return number
    }

    /// The attribute's big-endian uint16, nil when absent; throws when it is not 2 bytes.
    @inline(__always)
    private static func uint16(
        _ type: NflogAttributeType, _ table: borrowing AttributeTable
    ) throws(NetlinkWireError) -> UInt16? {
        guard let value = table.value(type.rawValue) else { return nil }
        guard value.count == 2, let number = value.bigEndianUInt16(at: 0) else {
            throw wrongSize(type, "a uint16", value, table)
        }
        return number
    }

    /// The prefix up to its first NUL; nil when that leaves nothing (nft's "no prefix").
    /// Invalid UTF-8 is kept as bytes and repaired with U+FFFD only when shown: it is a label.
    private static func prefix(_ value: UnsafeRawBufferPointer) -> NflogPrefix? {
        var end = 0
        while end < value.count, value[end] != 0 { end += 1 }  // index checked by the loop condition
        guard end > 0 else { return nil }
        return NflogPrefix(bytes: UnsafeRawBufferPointer(rebasing: value[0..<end]))
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
