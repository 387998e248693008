/// What nfowner knows about one IP packet: every header field that fit in the captured bytes.
///
/// A fixed-size value (no heap storage), so parsing allocates nothing per packet.
public struct PacketSummary: Sendable, Equatable {
    public var family: IPFamily
    public var source: IPAddress
    public var destination: IPAddress
    /// The upper-layer protocol number after any IPv6 extension headers (IPPROTO_*).
    public var protocolNumber: UInt8
    /// The IP datagram length from the header (IPv4 total length; IPv6 payload length + 40),
    /// not the captured length.
    public var totalLength: Int
    /// Set when this packet is a fragment (IPv4 MF/offset, or an IPv6 Fragment header).
    public var fragment: FragmentInfo?
    /// The transport header fields that could be read.
    public var transport: TransportInfo

    public init(family: IPFamily, source: IPAddress, destination: IPAddress, protocolNumber: UInt8,
                totalLength: Int, fragment: FragmentInfo?, transport: TransportInfo) {
        self.family = family
        self.source = source
        self.destination = destination
        self.protocolNumber = protocolNumber
        self.totalLength = totalLength
        self.fragment = fragment
        self.transport = transport
    }
}

public enum IPFamily: Sendable, Equatable {
    case ipv4, ipv6
}

/// Fragmentation state of a packet.
public struct FragmentInfo: Sendable, Equatable {
    /// Offset of this fragment's data in bytes (the header field × 8).
    public var offset: Int
    /// The More Fragments flag.
    public var moreFragments: Bool
    /// The fragment identification (16 bits for IPv4, 32 for IPv6).
    public var identification: UInt32
    /// Later fragments (offset > 0) carry no transport header, so no ports.
    public var isFirst: Bool { offset == 0 }

    public init(offset: Int, moreFragments: Bool, identification: UInt32) {
        self.offset = offset
        self.moreFragments = moreFragments
        self.identification = identification
    }
}

/// Transport-layer fields, by protocol. Fields that did not fit in the captured bytes are nil.
public enum TransportInfo: Sendable, Equatable {
    case tcp(TCPInfo)
    case udp(PortPair)
    case udpLite(PortPair)
    case sctp(PortPair)
    case icmp(ICMPInfo)
    case icmpv6(ICMPInfo)
    case gre(GREInfo)
    /// ESP: the Security Parameters Index, when captured.
    case esp(spi: UInt32?)
    /// AH as the final header (IPv4 AH, or IPv6 AH whose next header could not be followed).
    case ah(spi: UInt32?)
    /// A later fragment: its transport header is in the first fragment.
    case notFirstFragment
    /// A protocol nfowner does not decode further (identified by `PacketSummary.protocolNumber`).
    case other
}

public struct PortPair: Sendable, Equatable {
    public var source: UInt16?
    public var destination: UInt16?
    public init(source: UInt16?, destination: UInt16?) {
        self.source = source
        self.destination = destination
    }
}

public struct TCPInfo: Sendable, Equatable {
    public var ports: PortPair
    /// The 8 flag bits of byte 13 (CWR ECE URG ACK PSH RST SYN FIN), nil when not captured.
    public var flags: TCPFlags?
    public init(ports: PortPair, flags: TCPFlags?) {
        self.ports = ports
        self.flags = flags
    }
}

public struct TCPFlags: OptionSet, Sendable, Equatable {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }
    public static let fin = TCPFlags(rawValue: 0x01)
    public static let syn = TCPFlags(rawValue: 0x02)
    public static let rst = TCPFlags(rawValue: 0x04)
    public static let psh = TCPFlags(rawValue: 0x08)
    public static let ack = TCPFlags(rawValue: 0x10)
    public static let urg = TCPFlags(rawValue: 0x20)
    public static let ece = TCPFlags(rawValue: 0x40)
    public static let cwr = TCPFlags(rawValue: 0x80)
}

public struct ICMPInfo: Sendable, Equatable {
    public var type: UInt8?
    public var code: UInt8?
    /// The echo identifier, for echo request/reply only (ICMP 8/0, ICMPv6 128/129).
    public var echoIdentifier: UInt16?
    public init(type: UInt8?, code: UInt8?, echoIdentifier: UInt16?) {
        self.type = type
        self.code = code
        self.echoIdentifier = echoIdentifier
    }
}

public struct GREInfo: Sendable, Equatable {
    /// The encapsulated protocol (an EtherType), when captured.
    public var protocolType: UInt16?
    public init(protocolType: UInt16?) { self.protocolType = protocolType }
}

/// An IPv4 or IPv6 address held inline.
public enum IPAddress: Sendable, Hashable {
    /// IPv4, in host integer form (first octet most significant).
    case v4(UInt32)
    /// IPv6 as two big-endian halves (high = first 8 bytes).
    case v6(high: UInt64, low: UInt64)
}
