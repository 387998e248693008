// NFLOG configuration requests (NFULNL_MSG_CONFIG), userspace to kernel:
//
//   +----------------------------------------------------------------------+
//   | nlmsghdr: len | type 0x0401 | flags REQUEST|ACK (0x0005) | seq | pid 0 |  host order
//   +----------------------------------------------------------------------+
//   | nfgenmsg: family AF_UNSPEC (0) | version 0 | res_id = group (be16)     |
//   +----------------------------------------------------------------------+
//   | NFULA_CFG_CMD     len 5  | u8 command                 + 3 pad        |
//   | NFULA_CFG_MODE    len 10 | be32 copy_range, u8 mode, u8 pad + 2 pad   |
//   | NFULA_CFG_NLBUFSIZ / TIMEOUT / QTHRESH  len 8 | be32                  |
//   | NFULA_CFG_FLAGS   len 6  | be16 flags                 + 2 pad        |
//   +----------------------------------------------------------------------+
//
// The kernel answers each request with NLMSG_ERROR (error 0 = ACK) because of NLM_F_ACK.
// Attribute values are big-endian (nfnetlink_log.c reads them with ntohl/ntohs).

/// NFLOG group commands (enum nfulnl_msg_config_cmds).
public enum NflogConfigCommand: UInt8, Sendable {
    /// Start receiving the group's packets on this socket. NFULNL_CFG_CMD_BIND.
    case bind = 1
    /// Stop receiving them. NFULNL_CFG_CMD_UNBIND.
    case unbind = 2
}

/// How much of each packet the kernel copies (NFULNL_COPY_*).
public enum NflogCopyMode: UInt8, Sendable {
    /// No metadata, no payload. NFULNL_COPY_NONE.
    case none = 0
    /// Metadata only. NFULNL_COPY_META.
    case meta = 1
    /// Metadata and up to copy_range payload bytes. NFULNL_COPY_PACKET.
    case packet = 2
}

/// NFULA_CFG_FLAGS bits.
public struct NflogConfigFlags: OptionSet, Sendable, Hashable {
    public var rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    /// Attach a per-group sequence number (NFULA_SEQ). NFULNL_CFG_F_SEQ.
    public static let sequence = NflogConfigFlags(rawValue: 0x0001)
    /// Attach a per-namespace sequence number (NFULA_SEQ_GLOBAL). NFULNL_CFG_F_SEQ_GLOBAL.
    public static let globalSequence = NflogConfigFlags(rawValue: 0x0002)
    /// Attach conntrack info. NFULNL_CFG_F_CONNTRACK (EOPNOTSUPP on the target kernel).
    public static let conntrack = NflogConfigFlags(rawValue: 0x0004)
}

/// One setting of an NFLOG group.
public enum NflogConfigAttribute: Sendable, Equatable {
    /// NFULA_CFG_CMD.
    case command(NflogConfigCommand)
    /// NFULA_CFG_MODE; `range` is the most payload bytes copied per packet.
    case copyMode(NflogCopyMode, range: UInt32)
    /// NFULA_CFG_NLBUFSIZ: size of the kernel's batch buffer, in bytes.
    case bufferSize(UInt32)
    /// NFULA_CFG_TIMEOUT: flush a partial batch after this long, in 1/100 s.
    case flushTimeout(UInt32)
    /// NFULA_CFG_QTHRESH: send a batch when it holds this many packets.
    case queueThreshold(UInt32)
    /// NFULA_CFG_FLAGS.
    case flags(NflogConfigFlags)
}

public enum NflogConfigRequest {
    /// The nfgenmsg family of config requests. The kernel constant is AF_UNSPEC.
    public static let familyUnspecified: UInt8 = 0

    /// A config request for `group` carrying one attribute, with NLM_F_REQUEST | NLM_F_ACK.
    public static func encode(group: UInt16, sequence: UInt32, _ attribute: NflogConfigAttribute) -> [UInt8] {
        encode(group: group, sequence: sequence, [attribute])
    }

    /// A config request carrying several attributes in one message. The kernel applies the
    /// command first, then the other settings, so `[.command(.bind), .copyMode(...)]` works
    /// in a single request.
    public static func encode(group: UInt16, sequence: UInt32, _ attributes: [NflogConfigAttribute]) -> [UInt8] {
        var writer = NetlinkMessageWriter(
            type: NetlinkMessageType.nflogConfig, flags: [.request, .ack], sequence: sequence)
        writer.appendNfgenmsg(family: familyUnspecified, group: group)
        for attribute in attributes {
            switch attribute {
            case .command(let command):
                writer.appendAttribute(type: NflogConfigAttributeType.command.rawValue, [command.rawValue])
            case .copyMode(let mode, let range):
                writer.appendAttribute(
                    type: NflogConfigAttributeType.mode.rawValue, range.bigEndianBytes + [mode.rawValue, 0])
            case .bufferSize(let bytes):
                writer.appendAttribute(type: NflogConfigAttributeType.bufferSize.rawValue, bigEndian: bytes)
            case .flushTimeout(let hundredths):
                writer.appendAttribute(type: NflogConfigAttributeType.timeout.rawValue, bigEndian: hundredths)
            case .queueThreshold(let packets):
                writer.appendAttribute(type: NflogConfigAttributeType.queueThreshold.rawValue, bigEndian: packets)
            case .flags(let flags):
                writer.appendAttribute(type: NflogConfigAttributeType.flags.rawValue, bigEndian: flags.rawValue)
            }
        }
        return writer.finish()
    }
}
