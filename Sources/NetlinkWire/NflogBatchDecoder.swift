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
        try forEachPacket(in: batch, packet: { packet in try body(.packet(packet.record, payload: packet.payload)) },
                          other: body)
    }

    /// The same walk as `forEachItem`, but each valid packet message goes to `packet` as a view,
    /// read on demand (the monitor's per-packet path: most packets are counted and attributed,
    /// and only the ones shown need a whole `NflogRecord`). Everything else, including
    /// malformed packets, goes to `other`.
    public static func forEachPacket(
        in batch: UnsafeRawBufferPointer,
        packet: (_ packet: NflogPacketView) throws -> Void,
        other: (NetlinkBatchItem) throws -> Void
    ) rethrows {
        var messages = MessageCursor(buffer: batch)
        while case let next? = messages.next() {
            guard case .success(let message) = next else {
                if case .failure(let error) = next { try other(.malformed(error)) }
                return
            }
            guard message.header.type == NetlinkMessageType.nflogPacket else {
                try other(item(for: message.header, message: message.bytes, offset: message.offset))
                continue
            }
            var refusal = NflogPacketView.Refusal()
            if let view = NflogPacketView(validating: message.bytes, refusal: &refusal) {
                try packet(view)
            } else {
                try other(.malformed(refusal.error(messageBytes: message.bytes.count, messageOffset: message.offset)))
            }
        }
    }

    /// Decodes one whole message other than an NFLOG packet (`message` starts at its nlmsghdr
    /// and is exactly nlmsg_len long).
    private static func item(
        for header: NetlinkMessageHeader, message: UnsafeRawBufferPointer, offset: Int
    ) -> NetlinkBatchItem {
        switch header.type {
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
    /// only in error offsets. Errors as `NflogPacketView.init(message:offset:)`.
    public static func decodePacket(
        message: UnsafeRawBufferPointer, offset: Int = 0
    ) throws(NetlinkWireError) -> (NflogRecord, UnsafeRawBufferPointer) {
        let view = try NflogPacketView(message: message, offset: offset)
        return (view.record, view.payload)
    }
}
