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
        case 4: return try parseInlined(bytes, family: .ipv4)
        case 6: return try parseInlined(bytes, family: .ipv6)
        case let other: throw .unsupportedVersion(other)
        }
    }

    /// Parses a packet that must be of `family` (NFLOG tells us the family separately).
    ///
    /// Throws `.familyMismatch` when the version nibble disagrees, plus everything `parse(_:)` throws.
    public static func parse(_ bytes: UnsafeRawBufferPointer, family: IPFamily) throws(PacketParseError) -> PacketSummary {
        try parseInlined(bytes, family: family)
    }

    /// The body of both parse functions.
    ///
    /// The receive thread calls parse(_:family:) once per packet, and almost every packet is an
    /// IPv4 header without options (first byte 0x45) or an IPv6 fixed header: for those one
    /// length check and one byte compare stand in for the version, IHL and length checks, and
    /// the parsers run with the header length as a constant. Anything else (options, short
    /// captures, errors) takes `parseChecked`, which checks in the documented order.
    ///
    /// Everything down to the common transports is inlined into this one function; an
    /// out-of-line call here would return the summary (96 bytes) through a stack copy. What is rare
    /// (error texts, IPv4 fragments, IPv6 extension headers, other transports, transport headers
    /// cut short) stays out of line.
    @inline(always)
    private static func parseInlined(_ bytes: UnsafeRawBufferPointer, family: IPFamily) throws(PacketParseError) -> PacketSummary {
        switch family {
        case .ipv4:
            if let header = UnsafeFixedBytes<20>(bytes), header.byte(at: 0) == 0x45 {
                return try parseIPv4(bytes, header: header, headerLength: ipv4MinimumHeaderLength)
            }
        case .ipv6:
            if let header = UnsafeFixedBytes<40>(bytes), header.byte(at: 0) >> 4 == 6 {
                return parseIPv6(bytes, header: header)
            }
        }
        return try parseChecked(bytes, family: family)
    }

    /// Any input: every check, in the order the errors are documented.
    @inline(always)
    private static func parseChecked(_ bytes: UnsafeRawBufferPointer,
                                     family: IPFamily) throws(PacketParseError) -> PacketSummary {
        let version = try version(of: bytes)
        switch (family, version) {
        case (.ipv4, 4): return try parseIPv4(bytes)
        case (.ipv6, 6): return try parseIPv6(bytes)
        case (.ipv4, _): throw .familyMismatch(expected: "IPv4", version: version)
        case (.ipv6, _): throw .familyMismatch(expected: "IPv6", version: version)
        }
    }

    @inline(always)
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

    @inline(always)
    private static func parseIPv4(_ bytes: UnsafeRawBufferPointer) throws(PacketParseError) -> PacketSummary {
        guard let header = UnsafeFixedBytes<20>(bytes) else {
            throw .truncatedIPv4Header(captured: bytes.count)
        }
        let headerLength = Int(header.byte(at: 0) & 0x0F) * 4
        guard headerLength >= ipv4MinimumHeaderLength else {
            throw .badIPv4HeaderLength(headerLength)
        }
        return try parseIPv4(bytes, header: header, headerLength: headerLength)
    }

    /// The rest of IPv4 parsing once the IHL is known to be valid (20 ≤ headerLength ≤ 60).
    @inline(always)
    private static func parseIPv4(_ bytes: UnsafeRawBufferPointer, header: UnsafeFixedBytes<20>,
                                  headerLength: Int) throws(PacketParseError) -> PacketSummary {
        // Total length 0 is what the kernel puts in locally built GSO packets above 64 KiB
        // (BIG TCP), which the OUTPUT hook can see: the length is simply not in the header.
        let totalLength = Int(header.bigEndianUInt16(at: 2))
        // totalLength == 0 || totalLength >= headerLength, in one unsigned compare (0 wraps
        // to the largest value; headerLength is at least 20).
        guard UInt(bitPattern: totalLength &- 1) >= UInt(bitPattern: headerLength &- 1) else {
            throw .badIPv4TotalLength(totalLength, headerLength: headerLength)
        }
        guard headerLength <= bytes.count else {
            throw .truncatedIPv4Options(headerLength: headerLength, captured: bytes.count)
        }

        let flagsAndOffset = header.bigEndianUInt16(at: 6)
        let protocolNumber = header.byte(at: 9)
        // Bytes past the total length (link padding) are not part of the datagram. The checks
        // above make end ≥ headerLength; max() states it so the compiler drops the nil case.
        let end = max(headerLength, totalLength == 0 ? bytes.count : min(bytes.count, totalLength))
        let payload = bytes.subrange(from: headerLength, upTo: end) ?? UnsafeRawBufferPointer(start: nil, count: 0)
        let fragment: FragmentInfo?
        let transport: TransportInfo
        if flagsAndOffset & (ipv4MoreFragments | ipv4FragmentOffsetMask) == 0 {
            fragment = nil
            transport = TransportDecoder.decode(protocolNumber: protocolNumber, header: payload)
        } else {
            (fragment, transport) = ipv4Fragment(flagsAndOffset: flagsAndOffset,
                                                 identification: header.bigEndianUInt16(at: 4),
                                                 protocolNumber: protocolNumber, payload: payload)
        }
        return PacketSummary(family: .ipv4, source: .v4(header.bigEndianUInt32(at: 12)),
                             destination: .v4(header.bigEndianUInt32(at: 16)),
                             protocolNumber: protocolNumber, totalLength: totalLength,
                             fragment: fragment, transport: transport)
    }

    /// The fragment fields of an IPv4 fragment (MF set or offset > 0), and its transport: only
    /// the first fragment (offset 0) carries the transport header.
    @inline(never)
    private static func ipv4Fragment(flagsAndOffset: UInt16, identification: UInt16, protocolNumber: UInt8,
                                     payload: UnsafeRawBufferPointer) -> (FragmentInfo, TransportInfo) {
        let info = FragmentInfo(offset: Int(flagsAndOffset & ipv4FragmentOffsetMask) * 8,
                                moreFragments: flagsAndOffset & ipv4MoreFragments != 0,
                                identification: UInt32(identification))
        guard info.isFirst else { return (info, .notFirstFragment) }
        return (info, TransportDecoder.decode(protocolNumber: protocolNumber, header: payload))
    }

    // MARK: IPv6

    private static let ipv6HeaderLength = 40

    @inline(always)
    private static func parseIPv6(_ bytes: UnsafeRawBufferPointer) throws(PacketParseError) -> PacketSummary {
        guard let header = UnsafeFixedBytes<40>(bytes) else {
            throw .truncatedIPv6Header(captured: bytes.count)
        }
        return parseIPv6(bytes, header: header)
    }

    /// The rest of IPv6 parsing: once the fixed header is there, nothing can fail.
    @inline(always)
    private static func parseIPv6(_ bytes: UnsafeRawBufferPointer, header: UnsafeFixedBytes<40>) -> PacketSummary {
        let payloadLength = header.bigEndianUInt16(at: 4)
        let firstNextHeader = header.byte(at: 6)
        // Payload length 0 means a jumbogram (or a GSO packet above 64 KiB): the real length is
        // elsewhere, so totalLength reports 40 and the walk is bounded by the capture alone.
        let totalLength = ipv6HeaderLength + Int(payloadLength)
        let end = payloadLength == 0 ? bytes.count : min(bytes.count, totalLength)
        let protocolNumber: UInt8
        let fragment: FragmentInfo?
        let transport: TransportInfo
        if isExtensionHeader(firstNextHeader) {
            let datagram = bytes.subrange(from: 0, upTo: end) ?? UnsafeRawBufferPointer(start: nil, count: 0)
            let walk = walkExtensionHeaders(datagram, firstNextHeader: firstNextHeader)
            (protocolNumber, fragment, transport) = (walk.protocolNumber, walk.fragment, walk.transport)
        } else {
            // No extension header (most packets): what the walk would do at its first step.
            let payload = bytes.subrange(from: ipv6HeaderLength, upTo: end) ?? UnsafeRawBufferPointer(start: nil, count: 0)
            protocolNumber = firstNextHeader
            fragment = nil
            transport = TransportDecoder.decode(protocolNumber: firstNextHeader, header: payload)
        }
        return PacketSummary(family: .ipv6,
                             source: .v6(high: header.bigEndianUInt64(at: 8), low: header.bigEndianUInt64(at: 16)),
                             destination: .v6(high: header.bigEndianUInt64(at: 24), low: header.bigEndianUInt64(at: 32)),
                             protocolNumber: protocolNumber, totalLength: totalLength,
                             fragment: fragment, transport: transport)
    }

    /// True for the header types `walkExtensionHeaders` follows (or stops at, for AH).
    @inline(always)
    private static func isExtensionHeader(_ type: UInt8) -> Bool {
        switch type {
        case IPProtocolNumber.hopByHopOptions, IPProtocolNumber.routing, IPProtocolNumber.fragment,
             IPProtocolNumber.ah, IPProtocolNumber.destinationOptions:
            true
        default:
            false
        }
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
    @inline(never)
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

// The error texts, built only when an error is thrown: out of line, so the string
// interpolation code stays out of the parse functions.
extension PacketParseError {
    @inline(never)
    fileprivate static func unsupportedVersion(_ version: UInt8) -> PacketParseError {
        PacketParseError(.unsupportedVersion, "IP version \(version) is neither 4 nor 6")
    }

    @inline(never)
    fileprivate static func familyMismatch(expected: String, version: UInt8) -> PacketParseError {
        PacketParseError(.familyMismatch, "expected an \(expected) packet, but the IP version is \(version)")
    }

    @inline(never)
    fileprivate static func truncatedIPv4Header(captured: Int) -> PacketParseError {
        PacketParseError(.truncatedIPHeader, "IPv4 header needs 20 bytes, but only \(captured) were captured")
    }

    @inline(never)
    fileprivate static func badIPv4HeaderLength(_ headerLength: Int) -> PacketParseError {
        PacketParseError(.badHeaderLength, "IPv4 header length \(headerLength) is below the minimum of 20")
    }

    @inline(never)
    fileprivate static func badIPv4TotalLength(_ totalLength: Int, headerLength: Int) -> PacketParseError {
        PacketParseError(.badTotalLength,
                         "IPv4 total length \(totalLength) is smaller than its header length \(headerLength)")
    }

    @inline(never)
    fileprivate static func truncatedIPv4Options(headerLength: Int, captured: Int) -> PacketParseError {
        PacketParseError(.truncatedIPHeader,
                         "IPv4 header length \(headerLength) is beyond the \(captured) captured bytes")
    }

    @inline(never)
    fileprivate static func truncatedIPv6Header(captured: Int) -> PacketParseError {
        PacketParseError(.truncatedIPHeader, "IPv6 header needs 40 bytes, but only \(captured) were captured")
    }
}
