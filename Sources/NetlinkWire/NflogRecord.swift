import PacketModel

/// One packet delivered by NFLOG, decoded from an `NFULNL_MSG_PACKET` message.
///
/// Holds only values: the payload itself is handed to the caller separately as a view into the
/// receive buffer, valid only during the callback, so decoding allocates nothing per packet
/// (the prefix too is held inline: see `LogPrefix`).
public struct NflogRecord: Sendable, Equatable {
    /// The NFLOG group (`nfgenmsg.res_id`, big-endian on the wire).
    public var group: UInt16 = 0
    /// The packet's protocol family (`nfgenmsg.nfgen_family`): 2 = IPv4, 10 = IPv6, 7 = bridge, 5 = netdev.
    public var family: UInt8 = 0
    /// Link-layer protocol (EtherType) from NFULA_PACKET_HDR, e.g. 0x0800 for IPv4.
    public var hardwareProtocol: UInt16 = 0
    /// Netfilter hook number from NFULA_PACKET_HDR (NF_INET_PRE_ROUTING = 0 … NF_INET_POST_ROUTING = 4).
    public var hook: UInt8 = 0
    /// Packet mark (NFULA_MARK); the kernel omits it when zero.
    public var mark: UInt32?
    /// Socket owner's fsuid (NFULA_UID); present only when the packet holds a full socket with a file.
    public var uid: UInt32?
    /// Socket owner's fsgid (NFULA_GID); present under the same condition as `uid`.
    public var gid: UInt32?
    /// Per-group sequence number (NFULA_SEQ); present when NFULNL_CFG_F_SEQ is configured.
    public var sequence: UInt32?
    /// Per-namespace sequence number across groups (NFULA_SEQ_GLOBAL).
    public var globalSequence: UInt32?
    /// Kernel timestamp (NFULA_TIMESTAMP); never present at output/postrouting.
    public var timestamp: NflogTimestamp?
    /// Input interface index (NFULA_IFINDEX_INDEV).
    public var inputInterface: UInt32?
    /// Output interface index (NFULA_IFINDEX_OUTDEV).
    public var outputInterface: UInt32?
    /// Physical input interface index for bridged packets (NFULA_IFINDEX_PHYSINDEV).
    public var physicalInputInterface: UInt32?
    /// Physical output interface index for bridged packets (NFULA_IFINDEX_PHYSOUTDEV).
    public var physicalOutputInterface: UInt32?
    /// Source hardware address (NFULA_HWADDR); inbound packets only.
    public var hardwareAddress: HardwareAddress?
    /// ARPHRD_* type of the device (NFULA_HWTYPE).
    public var hardwareType: UInt16?
    /// Length in bytes of the link-layer header the kernel attached (NFULA_HWHEADER / NFULA_HWLEN).
    public var hardwareHeaderLength: Int?
    /// The rule's log prefix (NFULA_PREFIX) without the trailing NUL, held inline; nil when
    /// absent or empty (nft sends an empty prefix when the rule sets none).
    public var rawPrefix: LogPrefix?

    /// `rawPrefix` as text. Building it may allocate: the per-packet path reads `rawPrefix`.
    public var prefix: String? {
        get { rawPrefix?.string }
        set { rawPrefix = newValue.flatMap { LogPrefix($0) } }
    }
    /// Number of payload bytes captured (NFULA_PAYLOAD length); 0 when the message had none.
    public var capturedLength: Int = 0

    public init() {}
}

/// A kernel timestamp as carried by NFULA_TIMESTAMP (two big-endian 64-bit fields).
public struct NflogTimestamp: Sendable, Equatable {
    public var seconds: UInt64
    public var microseconds: UInt64
    public init(seconds: UInt64, microseconds: UInt64) {
        self.seconds = seconds
        self.microseconds = microseconds
    }
}

/// A link-layer address of up to 8 bytes (struct nfulnl_msg_packet_hw), stored inline.
public struct HardwareAddress: Sendable, Equatable {
    /// The address bytes, first byte in the most significant position of a left-aligned 64-bit word.
    public var bits: UInt64
    /// How many of the 8 bytes are meaningful (0...8).
    public var length: Int
    public init(bits: UInt64, length: Int) {
        self.bits = bits
        self.length = length
    }
}
