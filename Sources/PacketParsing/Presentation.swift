// Small helpers the text and JSON output use to show a PacketSummary.

extension PacketSummary {
    /// The port pair of TCP, UDP, UDP-Lite and SCTP; nil for other transports.
    // These accessors are inlinable: the flow key, the encoders and the accounting read them for
    // every packet from other modules, where a call per accessor cost more than the switch.
    @inlinable
    public var ports: PortPair? {
        switch transport {
        case .tcp(let info): info.ports
        case .udp(let ports), .udpLite(let ports), .sctp(let ports): ports
        default: nil
        }
    }

    /// The source port, when the transport has ports and it was captured.
    @inlinable
    public var sourcePort: UInt16? { ports?.source }

    /// The destination port, when the transport has ports and it was captured.
    @inlinable
    public var destinationPort: UInt16? { ports?.destination }

    /// ICMP or ICMPv6 fields; nil for other transports.
    @inlinable
    public var icmp: ICMPInfo? {
        switch transport {
        case .icmp(let info), .icmpv6(let info): info
        default: nil
        }
    }

    /// The TCP flags, when the transport is TCP and byte 13 was captured.
    @inlinable
    public var tcpFlags: TCPFlags? {
        if case .tcp(let info) = transport { info.flags } else { nil }
    }
}

extension TCPFlags {
    /// One letter per set flag in the order F S R P A U E C (tcpdump's letters, with E for ECE
    /// and C for CWR): SYN+ACK is "SA", FIN+ACK "FA". Empty when no flag is set.
    ///
    /// At most 8 ASCII characters, which Swift stores inline: no allocation.
    public var letters: String {
        // The letters follow the bit order, FIN (0x01) first, CWR (0x80) last.
        var text = ""
        var bit: UInt8 = 0x01
        for letter in "FSRPAUEC".unicodeScalars {
            if rawValue & bit != 0 { text.unicodeScalars.append(letter) }
            bit = bit &<< 1
        }
        return text
    }
}

/// Short lowercase names of the protocols nfowner decodes, as nft and /etc/protocols spell them.
public enum IPProtocolNames {
    /// "tcp", "udp", "udplite", "icmp", "icmpv6", "sctp", "gre", "esp" or "ah"; nil for any
    /// other number (callers print the number instead).
    public static func name(for number: UInt8) -> String? {
        switch number {
        case IPProtocolNumber.tcp: "tcp"
        case IPProtocolNumber.udp: "udp"
        case IPProtocolNumber.udpLite: "udplite"
        case IPProtocolNumber.icmp: "icmp"
        case IPProtocolNumber.icmpv6: "icmpv6"
        case IPProtocolNumber.sctp: "sctp"
        case IPProtocolNumber.gre: "gre"
        case IPProtocolNumber.esp: "esp"
        case IPProtocolNumber.ah: "ah"
        default: nil
        }
    }
}
