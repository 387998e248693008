// Transport header fields nfowner reports. Offsets are from the start of the transport header;
// every field is read only if it lies entirely inside the captured datagram.
//
//   TCP (RFC 9293)      | Src Port 0 | Dst Port 2 | Seq 4 | Ack 8 | Off 12 | Flags 13 | ...
//   UDP / UDP-Lite      | Src Port 0 | Dst Port 2 | Length or Coverage 4 | Checksum 6 |
//   SCTP common header  | Src Port 0 | Dst Port 2 | Verification Tag 4 | Checksum 8 |
//   ICMP / ICMPv6       | Type 0 | Code 1 | Checksum 2 | Identifier 4 (echo only) | Seq 6 |
//   GRE (RFC 2784)      | C, Reserved0, Ver 0 | Protocol Type 2 | ...
//   ESP (RFC 4303)      | SPI 0 | Sequence 4 | ...
//   AH (RFC 4302)       | Next Header 0 | Payload Len 1 | Reserved 2 | SPI 4 | ...

import BinaryParsing

enum TransportDecoder {
    /// ICMP echo reply (0) and echo request (8) carry an identifier; other types do not.
    private static let icmpEchoReply: UInt8 = 0
    private static let icmpEchoRequest: UInt8 = 8
    /// ICMPv6 echo request (128) and echo reply (129).
    private static let icmpv6EchoRequest: UInt8 = 128
    private static let icmpv6EchoReply: UInt8 = 129

    /// Decodes the header of `protocolNumber` at the start of `header`, which ends where the
    /// captured datagram ends. Never fails: missing fields are nil.
    ///
    /// Inlined into the IP parsers: for TCP, UDP, ICMP and ICMPv6 headers captured whole (almost
    /// every packet), one length check covers every field. Other protocols and short captures
    /// go to `decodeAnyLength`, which checks each field on its own.
    @inline(always)
    static func decode(protocolNumber: UInt8, header: UnsafeRawBufferPointer) -> TransportInfo {
        switch protocolNumber {
        case IPProtocolNumber.tcp:
            if let fixed = UnsafeFixedBytes<14>(header) {
                return .tcp(TCPInfo(ports: ports(fixed), flags: TCPFlags(rawValue: fixed.byte(at: 13))))
            }
        case IPProtocolNumber.udp:
            if let fixed = UnsafeFixedBytes<4>(header) {
                return .udp(ports(fixed))
            }
        case IPProtocolNumber.icmp:
            if let fixed = UnsafeFixedBytes<6>(header) {
                return .icmp(icmp(fixed, isEcho: fixed.byte(at: 0) == icmpEchoRequest || fixed.byte(at: 0) == icmpEchoReply))
            }
        case IPProtocolNumber.icmpv6:
            if let fixed = UnsafeFixedBytes<6>(header) {
                return .icmpv6(icmp(fixed, isEcho: fixed.byte(at: 0) == icmpv6EchoRequest || fixed.byte(at: 0) == icmpv6EchoReply))
            }
        default:
            break
        }
        return decodeAnyLength(protocolNumber: protocolNumber, header: header)
    }

    @inline(always)
    private static func ports<let size: Int>(_ header: UnsafeFixedBytes<size>) -> PortPair {
        PortPair(source: header.bigEndianUInt16(at: 0), destination: header.bigEndianUInt16(at: 2))
    }

    @inline(always)
    private static func icmp(_ header: UnsafeFixedBytes<6>, isEcho: Bool) -> ICMPInfo {
        ICMPInfo(type: header.byte(at: 0), code: header.byte(at: 1),
                 echoIdentifier: isEcho ? header.bigEndianUInt16(at: 4) : nil)
    }

    /// `decode` for every protocol and any captured length: each field is read only if it lies
    /// entirely inside `header`.
    @inline(never)
    private static func decodeAnyLength(protocolNumber: UInt8, header: UnsafeRawBufferPointer) -> TransportInfo {
        switch protocolNumber {
        case IPProtocolNumber.tcp:
            return .tcp(TCPInfo(ports: ports(header),
                                flags: header.byte(at: 13).map { TCPFlags(rawValue: $0) }))
        case IPProtocolNumber.udp:
            return .udp(ports(header))
        case IPProtocolNumber.udpLite:
            return .udpLite(ports(header))
        case IPProtocolNumber.sctp:
            return .sctp(ports(header))
        case IPProtocolNumber.icmp:
            return .icmp(icmp(header) { $0 == icmpEchoRequest || $0 == icmpEchoReply })
        case IPProtocolNumber.icmpv6:
            return .icmpv6(icmp(header) { $0 == icmpv6EchoRequest || $0 == icmpv6EchoReply })
        case IPProtocolNumber.gre:
            return .gre(GREInfo(protocolType: header.bigEndianUInt16(at: 2)))
        case IPProtocolNumber.esp:
            return .esp(spi: header.bigEndianUInt32(at: 0))
        case IPProtocolNumber.ah:
            return .ah(spi: header.bigEndianUInt32(at: 4))
        default:
            return .other
        }
    }

    private static func ports(_ header: UnsafeRawBufferPointer) -> PortPair {
        PortPair(source: header.bigEndianUInt16(at: 0), destination: header.bigEndianUInt16(at: 2))
    }

    private static func icmp(_ header: UnsafeRawBufferPointer, isEcho: (UInt8) -> Bool) -> ICMPInfo {
        let type = header.byte(at: 0)
        let identifier = type.map(isEcho) == true ? header.bigEndianUInt16(at: 4) : nil
        return ICMPInfo(type: type, code: header.byte(at: 1), echoIdentifier: identifier)
    }
}
