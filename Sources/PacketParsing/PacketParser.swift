// IPv4 and IPv6 header parsing (RFC 791, RFC 8200). All offsets are in bytes, all fields are
// big-endian.
//
// IPv4:
//    0       4       8              16      19                     31
//   +-------+-------+---------------+-------------------------------+
//   |Version|  IHL  |   DSCP/ECN    |          Total Length         |  0
//   +-------+-------+---------------+-----+-------------------------+
//   |        Identification         |Flags|  Fragment Offset (×8)   |  4   flags: 0 DF MF
//   +---------------+---------------+-----+-------------------------+
//   |      TTL      |   Protocol    |        Header Checksum        |  8
//   +---------------+---------------+-------------------------------+
//   |                        Source Address                         | 12
//   |                      Destination Address                      | 16
//   |                  Options (IHL×4 − 20 bytes)                   | 20
//   +---------------------------------------------------------------+
//
// IPv6, then a chain of extension headers, each naming the next:
//   +-------+---------------+---------------------------------------+
//   |Version| Traffic Class |              Flow Label               |  0
//   +-------+-------+-------+-------+---------------+---------------+
//   |         Payload Length        |  Next Header  |   Hop Limit   |  4
//   +-------------------------------+---------------+---------------+
//   |                 Source Address (16 bytes)                     |  8
//   |              Destination Address (16 bytes)                   | 24
//   +---------------------------------------------------------------+ 40
//
//   Hop-by-Hop (0), Routing (43), Destination Options (60):
//   | Next Header | Hdr Ext Len | ...                  length (Hdr Ext Len + 1) × 8
//   Authentication Header (51):
//   | Next Header | Payload Len | Reserved (2) | SPI (4) | ...   length (Payload Len + 2) × 4
//   Fragment (44), always 8 bytes:
//   | Next Header | Reserved | Fragment Offset (13 bits, ×8) | Res | M | Identification (4) |

import BinaryParsing

/// Decodes the IP and transport headers of one captured packet, without allocating.
///
/// A short capture (small snaplen) is not an error: every field that lies entirely inside the
/// captured bytes is reported and every other field is nil. Parsing throws only when the IP
/// header itself is missing or invalid.
public enum PacketParser {
    /// The most IPv6 extension headers followed before parsing stops. Real traffic uses a few;
    /// the cap keeps a hostile chain from costing more than a fixed amount of work.
    public static let maximumExtensionHeaders = 8

    /// Parses a packet whose bytes start at the IP header; the version nibble selects IPv4/IPv6.
    ///
    /// Throws when the buffer is empty, the version is neither 4 nor 6, or the IP header is
    /// truncated or invalid (see `PacketParseError.Code`).
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(PacketParseError) -> PacketSummary {
        switch try version(of: bytes) {
        case 4: return try parseIPv4(bytes)
        case 6: return try parseIPv6(bytes)
        case let other:
            throw PacketParseError(.unsupportedVersion, "IP version \(other) is neither 4 nor 6")
        }
    }

    /// Parses a packet that must be of `family` (NFLOG tells us the family separately).
    ///
    /// Throws `.familyMismatch` when the version nibble disagrees, plus everything `parse(_:)` throws.
    public static func parse(_ bytes: UnsafeRawBufferPointer, family: IPFamily) throws(PacketParseError) -> PacketSummary {
        let version = try version(of: bytes)
        switch (family, version) {
        case (.ipv4, 4): return try parseIPv4(bytes)
        case (.ipv6, 6): return try parseIPv6(bytes)
        case (.ipv4, _):
            throw PacketParseError(.familyMismatch, "expected an IPv4 packet, but the IP version is \(version)")
        case (.ipv6, _):
            throw PacketParseError(.familyMismatch, "expected an IPv6 packet, but the IP version is \(version)")
        }
    }

    private static func version(of bytes: UnsafeRawBufferPointer) throws(PacketParseError) -> UInt8 {
        guard let first = bytes.byte(at: 0) else {
            throw PacketParseError(.truncatedIPHeader, "no bytes were captured; an IP header needs at least 20")
        }
        return first >> 4
    }

    // MARK: IPv4

    private static let ipv4MinimumHeaderLength = 20
    private static let ipv4MoreFragments: UInt16 = 0x2000
    private static let ipv4FragmentOffsetMask: UInt16 = 0x1FFF

    private static func parseIPv4(_ bytes: UnsafeRawBufferPointer) throws(PacketParseError) -> PacketSummary {
        guard let versionAndIHL = bytes.byte(at: 0),
              let totalLengthField = bytes.bigEndianUInt16(at: 2),
              let identification = bytes.bigEndianUInt16(at: 4),
              let flagsAndOffset = bytes.bigEndianUInt16(at: 6),
              let protocolNumber = bytes.byte(at: 9),
              let source = bytes.bigEndianUInt32(at: 12),
              let destination = bytes.bigEndianUInt32(at: 16)
        else {
            throw PacketParseError(.truncatedIPHeader,
                                   "IPv4 header needs 20 bytes, but only \(bytes.count) were captured")
        }
        let headerLength = Int(versionAndIHL & 0x0F) * 4
        guard headerLength >= ipv4MinimumHeaderLength else {
            throw PacketParseError(.badHeaderLength,
                                   "IPv4 header length \(headerLength) is below the minimum of 20")
        }
        // Total length 0 is what the kernel puts in locally built GSO packets above 64 KiB
        // (BIG TCP), which the OUTPUT hook can see: the length is simply not in the header.
        let totalLength = Int(totalLengthField)
        guard totalLength == 0 || totalLength >= headerLength else {
            throw PacketParseError(.badTotalLength,
                                   "IPv4 total length \(totalLength) is smaller than its header length \(headerLength)")
        }
        guard headerLength <= bytes.count else {
            throw PacketParseError(.truncatedIPHeader,
                                   "IPv4 header length \(headerLength) is beyond the \(bytes.count) captured bytes")
        }

        let fragmentOffset = Int(flagsAndOffset & ipv4FragmentOffsetMask) * 8
        let moreFragments = flagsAndOffset & ipv4MoreFragments != 0
        let fragment: FragmentInfo? = fragmentOffset > 0 || moreFragments
            ? FragmentInfo(offset: fragmentOffset, moreFragments: moreFragments,
                           identification: UInt32(identification))
            : nil

        let transport: TransportInfo
        if fragmentOffset > 0 {
            transport = .notFirstFragment
        } else {
            // Bytes past the total length (link padding) are not part of the datagram.
            let end = totalLength == 0 ? bytes.count : min(bytes.count, totalLength)
            let payload = bytes.subrange(at: headerLength, count: end - headerLength) ?? UnsafeRawBufferPointer(start: nil, count: 0)
            transport = TransportDecoder.decode(protocolNumber: protocolNumber, header: payload)
        }
        return PacketSummary(family: .ipv4, source: .v4(source), destination: .v4(destination),
                             protocolNumber: protocolNumber, totalLength: totalLength,
                             fragment: fragment, transport: transport)
    }

    // MARK: IPv6

    private static let ipv6HeaderLength = 40

    private static func parseIPv6(_ bytes: UnsafeRawBufferPointer) throws(PacketParseError) -> PacketSummary {
        guard let payloadLength = bytes.bigEndianUInt16(at: 4),
              let firstNextHeader = bytes.byte(at: 6),
              let sourceHigh = bytes.bigEndianUInt64(at: 8),
              let sourceLow = bytes.bigEndianUInt64(at: 16),
              let destinationHigh = bytes.bigEndianUInt64(at: 24),
              let destinationLow = bytes.bigEndianUInt64(at: 32)
        else {
            throw PacketParseError(.truncatedIPHeader,
                                   "IPv6 header needs 40 bytes, but only \(bytes.count) were captured")
        }
        // Payload length 0 means a jumbogram (or a GSO packet above 64 KiB): the real length is
        // elsewhere, so totalLength reports 40 and the walk is bounded by the capture alone.
        let totalLength = ipv6HeaderLength + Int(payloadLength)
        let end = payloadLength == 0 ? bytes.count : min(bytes.count, totalLength)
        let datagram = bytes.subrange(at: 0, count: end) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let walk = walkExtensionHeaders(datagram, firstNextHeader: firstNextHeader)
        return PacketSummary(family: .ipv6,
                             source: .v6(high: sourceHigh, low: sourceLow),
                             destination: .v6(high: destinationHigh, low: destinationLow),
                             protocolNumber: walk.protocolNumber, totalLength: totalLength,
                             fragment: walk.fragment, transport: walk.transport)
    }

    private struct ExtensionWalk {
        var protocolNumber: UInt8
        var fragment: FragmentInfo?
        var transport: TransportInfo
    }

    /// Follows extension headers from offset 40 until an upper-layer header.
    ///
    /// An extension header is followed only when all of it lies in `datagram`. When one does not
    /// (short capture, or a length pointing past the end), or more than `maximumExtensionHeaders`
    /// are chained, the walk stops there: `protocolNumber` is that header's type and the
    /// transport is `.other` (`.ah(spi:)` for AH, with the SPI when it was captured).
    private static func walkExtensionHeaders(_ datagram: UnsafeRawBufferPointer,
                                             firstNextHeader: UInt8) -> ExtensionWalk {
        var next = firstNextHeader
        var offset = ipv6HeaderLength
        var fragment: FragmentInfo?
        var followed = 0

        while true {
            let length: Int?
            switch next {
            case IPProtocolNumber.hopByHopOptions, IPProtocolNumber.routing, IPProtocolNumber.destinationOptions:
                length = datagram.byte(at: offset + 1).map { (Int($0) + 1) * 8 }
            case IPProtocolNumber.ah:
                length = datagram.byte(at: offset + 1).map { (Int($0) + 2) * 4 }
            case IPProtocolNumber.fragment:
                length = 8
            default:
                let header = datagram.suffix(from: offset) ?? UnsafeRawBufferPointer(start: nil, count: 0)
                return ExtensionWalk(protocolNumber: next, fragment: fragment,
                                     transport: TransportDecoder.decode(protocolNumber: next, header: header))
            }

            guard followed < maximumExtensionHeaders,
                  let length, datagram.contains(offset: offset, count: length),
                  let following = datagram.byte(at: offset)
            else {
                let stopped: TransportInfo = next == IPProtocolNumber.ah
                    ? .ah(spi: datagram.bigEndianUInt32(at: offset + 4))
                    : .other
                return ExtensionWalk(protocolNumber: next, fragment: fragment, transport: stopped)
            }

            if next == IPProtocolNumber.fragment,
               let offsetAndFlags = datagram.bigEndianUInt16(at: offset + 2),
               let identification = datagram.bigEndianUInt32(at: offset + 4) {
                // The 13-bit offset counts 8-byte units and sits above 3 bits (2 reserved, M).
                let info = FragmentInfo(offset: Int(offsetAndFlags & 0xFFF8),
                                        moreFragments: offsetAndFlags & 0x0001 != 0,
                                        identification: identification)
                fragment = info
                if !info.isFirst {
                    return ExtensionWalk(protocolNumber: following, fragment: info, transport: .notFirstFragment)
                }
            }
            followed += 1
            offset += length
            next = following
        }
    }
}
