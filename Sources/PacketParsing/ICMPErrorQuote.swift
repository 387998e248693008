// An ICMP error quotes the packet that caused it: after the 8-byte ICMP header come that
// packet's IP header and at least the first 8 bytes of its transport header (RFC 792; RFC 4443
// for ICMPv6, "as much as fits"). For an error arriving here, that quoted packet is one this
// host sent: its source is the local socket the kernel hands the error to (the error queue of a
// UDP socket, a TCP connection's soft error, a ping socket's reply).
//
//   | IP header | ICMP type 3/4/5/11/12, code | checksum | unused (4) | quoted IP header | 8+ bytes |
//   | IPv6 header (no extension headers) | ICMPv6 type 1-4 | code | checksum | 4 | quoted IPv6 | …
import BinaryParsing

extension PacketParser {
    /// The packet an ICMP or ICMPv6 error in `bytes` quotes, parsed; nil when `bytes` is no such
    /// error (or a later fragment, or an IPv6 error behind extension headers, which is not
    /// followed), or the quote does not parse. Reads only inside `bytes`.
    public static func icmpErrorQuote(of bytes: UnsafeRawBufferPointer) -> PacketSummary? {
        guard let first = bytes.byte(at: 0) else { return nil }
        let quoteStart: Int
        switch first >> 4 {
        case 4:
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20, bytes.byte(at: 9) == IPProtocolNumber.icmp,
                  let flagsAndOffset = bytes.bigEndianUInt16(at: 6), flagsAndOffset & 0x1FFF == 0,
                  let type = bytes.byte(at: headerLength), isICMPError(type)
            else { return nil }
            quoteStart = headerLength + 8
        case 6:
            guard bytes.byte(at: 6) == IPProtocolNumber.icmpv6, let type = bytes.byte(at: 40), isICMPv6Error(type)
            else { return nil }
            quoteStart = 40 + 8
        default:
            return nil
        }
        guard let quote = bytes.suffix(from: quoteStart), let quoted = try? parse(quote),
              quoted.family == (first >> 4 == 4 ? .ipv4 : .ipv6)
        else { return nil }
        return quoted
    }

    /// Destination unreachable (3), source quench (4), redirect (5), time exceeded (11),
    /// parameter problem (12).
    public static func isICMPError(_ type: UInt8) -> Bool { [3, 4, 5, 11, 12].contains(type) }

    /// Destination unreachable (1), packet too big (2), time exceeded (3), parameter problem (4).
    public static func isICMPv6Error(_ type: UInt8) -> Bool { (1...4).contains(type) }
}

extension PacketSummary {
    /// True for an ICMP or ICMPv6 error message (which quotes the packet that caused it).
    @inlinable
    public var isICMPError: Bool {
        switch transport {
        case .icmp(let info): info.type.map { PacketParser.isICMPError($0) } ?? false
        case .icmpv6(let info): info.type.map { PacketParser.isICMPv6Error($0) } ?? false
        default: false
        }
    }
}
