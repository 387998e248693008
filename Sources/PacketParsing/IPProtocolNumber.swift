/// IP protocol numbers and IPv6 extension header types nfowner decodes (IANA "Assigned Internet
/// Protocol Numbers"; the C names are the IPPROTO_* constants of <netinet/in.h>).
public enum IPProtocolNumber {
    /// IPv6 Hop-by-Hop Options header. The C name is IPPROTO_HOPOPTS.
    public static let hopByHopOptions: UInt8 = 0
    /// The C name is IPPROTO_ICMP.
    public static let icmp: UInt8 = 1
    /// The C name is IPPROTO_TCP.
    public static let tcp: UInt8 = 6
    /// The C name is IPPROTO_UDP.
    public static let udp: UInt8 = 17
    /// IPv6 Routing header. The C name is IPPROTO_ROUTING.
    public static let routing: UInt8 = 43
    /// IPv6 Fragment header. The C name is IPPROTO_FRAGMENT.
    public static let fragment: UInt8 = 44
    /// The C name is IPPROTO_GRE.
    public static let gre: UInt8 = 47
    /// Encapsulating Security Payload. The C name is IPPROTO_ESP.
    public static let esp: UInt8 = 50
    /// Authentication Header. The C name is IPPROTO_AH.
    public static let ah: UInt8 = 51
    /// The C name is IPPROTO_ICMPV6.
    public static let icmpv6: UInt8 = 58
    /// IPv6 "No Next Header". The C name is IPPROTO_NONE.
    public static let noNextHeader: UInt8 = 59
    /// IPv6 Destination Options header. The C name is IPPROTO_DSTOPTS.
    public static let destinationOptions: UInt8 = 60
    /// The C name is IPPROTO_SCTP.
    public static let sctp: UInt8 = 132
    /// The C name is IPPROTO_UDPLITE.
    public static let udpLite: UInt8 = 136
}
