// NFLOG attribute numbers (enum nfulnl_attr_type, enum nfulnl_attr_config) and the fixed sizes
// of the structs they carry. All NFLOG attribute values are big-endian.

/// Attribute types of an NFULNL_MSG_PACKET message.
public enum NflogAttributeType: UInt16, Sendable, CaseIterable {
    /// be16 hw_protocol, u8 hook, u8 pad (struct nfulnl_msg_packet_hdr). NFULA_PACKET_HDR.
    case packetHeader = 1
    /// be32 nfmark. NFULA_MARK.
    case mark = 2
    /// be64 sec, be64 usec (struct nfulnl_msg_packet_timestamp). NFULA_TIMESTAMP.
    case timestamp = 3
    /// be32 ifindex. NFULA_IFINDEX_INDEV.
    case inputInterface = 4
    /// be32 ifindex. NFULA_IFINDEX_OUTDEV.
    case outputInterface = 5
    /// be32 ifindex. NFULA_IFINDEX_PHYSINDEV.
    case physicalInputInterface = 6
    /// be32 ifindex. NFULA_IFINDEX_PHYSOUTDEV.
    case physicalOutputInterface = 7
    /// be16 hw_addrlen, u16 pad, u8 hw_addr[8] (struct nfulnl_msg_packet_hw). NFULA_HWADDR.
    case hardwareAddress = 8
    /// The packet bytes, starting at the network header. NFULA_PAYLOAD.
    case payload = 9
    /// NUL-terminated log prefix. NFULA_PREFIX.
    case prefix = 10
    /// be32 fsuid of the socket owner. NFULA_UID.
    case uid = 11
    /// be32 per-group sequence number. NFULA_SEQ.
    case sequence = 12
    /// be32 per-namespace sequence number. NFULA_SEQ_GLOBAL.
    case globalSequence = 13
    /// be32 fsgid of the socket owner. NFULA_GID.
    case gid = 14
    /// be16 ARPHRD_* type. NFULA_HWTYPE.
    case hardwareType = 15
    /// The link-layer header bytes. NFULA_HWHEADER.
    case hardwareHeader = 16
    /// be16 length of the link-layer header. NFULA_HWLEN.
    case hardwareHeaderLength = 17
    /// Nested conntrack attributes. NFULA_CT (not decoded).
    case conntrack = 18
    /// be32 enum ip_conntrack_info. NFULA_CT_INFO (not decoded).
    case conntrackInfo = 19
    /// Nested VLAN attributes. NFULA_VLAN (not decoded).
    case vlan = 20
    /// The full layer-2 header. NFULA_L2HDR (not decoded).
    case layer2Header = 21

    /// The kernel's name for the attribute, used in error reasons.
    public var kernelName: String {
        switch self {
        case .packetHeader: "NFULA_PACKET_HDR"
        case .mark: "NFULA_MARK"
        case .timestamp: "NFULA_TIMESTAMP"
        case .inputInterface: "NFULA_IFINDEX_INDEV"
        case .outputInterface: "NFULA_IFINDEX_OUTDEV"
        case .physicalInputInterface: "NFULA_IFINDEX_PHYSINDEV"
        case .physicalOutputInterface: "NFULA_IFINDEX_PHYSOUTDEV"
        case .hardwareAddress: "NFULA_HWADDR"
        case .payload: "NFULA_PAYLOAD"
        case .prefix: "NFULA_PREFIX"
        case .uid: "NFULA_UID"
        case .sequence: "NFULA_SEQ"
        case .globalSequence: "NFULA_SEQ_GLOBAL"
        case .gid: "NFULA_GID"
        case .hardwareType: "NFULA_HWTYPE"
        case .hardwareHeader: "NFULA_HWHEADER"
        case .hardwareHeaderLength: "NFULA_HWLEN"
        case .conntrack: "NFULA_CT"
        case .conntrackInfo: "NFULA_CT_INFO"
        case .vlan: "NFULA_VLAN"
        case .layer2Header: "NFULA_L2HDR"
        }
    }
}

/// Attribute types of an NFULNL_MSG_CONFIG request.
public enum NflogConfigAttributeType: UInt16, Sendable, CaseIterable {
    /// u8 command (struct nfulnl_msg_config_cmd). NFULA_CFG_CMD.
    case command = 1
    /// be32 copy_range, u8 copy_mode, u8 pad (struct nfulnl_msg_config_mode, packed: 6 bytes).
    /// NFULA_CFG_MODE.
    case mode = 2
    /// be32 kernel buffer size in bytes. NFULA_CFG_NLBUFSIZ.
    case bufferSize = 3
    /// be32 flush timeout in 1/100 s. NFULA_CFG_TIMEOUT.
    case timeout = 4
    /// be32 queue threshold in packets. NFULA_CFG_QTHRESH.
    case queueThreshold = 5
    /// be16 flags (NFULNL_CFG_F_*). NFULA_CFG_FLAGS.
    case flags = 6
}

/// Sizes of the structs NFLOG attributes carry, from linux/netfilter/nfnetlink_log.h.
enum NflogStructSize {
    /// struct nfulnl_msg_packet_hdr.
    static let packetHeader = 4
    /// struct nfulnl_msg_packet_hw.
    static let hardwareAddress = 12
    /// Bytes of hw_addr in struct nfulnl_msg_packet_hw.
    static let hardwareAddressBytes = 8
    /// struct nfulnl_msg_packet_timestamp.
    static let timestamp = 16
    /// struct nfulnl_msg_config_cmd (packed).
    static let configCommand = 1
    /// struct nfulnl_msg_config_mode (packed).
    static let configMode = 6
}
