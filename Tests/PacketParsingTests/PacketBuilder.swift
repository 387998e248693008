import PacketParsing

/// Builds packets byte by byte for the tests. Every packet is a valid datagram unless a test
/// edits it afterwards; lengths in the IP headers match the bytes built.
enum PacketBuilder {
    static let v4Source: [UInt8] = [192, 0, 2, 1]
    static let v4Destination: [UInt8] = [198, 51, 100, 7]
    static let v6Source: [UInt8] = [0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x01]
    static let v6Destination: [UInt8] = [0xfe, 0x80, 0, 0, 0, 0, 0, 0, 0x02, 0x11, 0x22, 0xff, 0xfe, 0x33, 0x44, 0x55]

    static func be16(_ value: UInt16) -> [UInt8] { [UInt8(value >> 8), UInt8(value & 0xff)] }
    static func be32(_ value: UInt32) -> [UInt8] { be16(UInt16(value >> 16)) + be16(UInt16(value & 0xffff)) }

    /// An IPv4 header (with `options`, padded by the caller to a multiple of 4) plus `payload`.
    static func ipv4(protocolNumber: UInt8, payload: [UInt8], options: [UInt8] = [],
                     identification: UInt16 = 0x1234, moreFragments: Bool = false,
                     fragmentOffset: Int = 0, totalLength: Int? = nil) -> [UInt8] {
        precondition(options.count % 4 == 0 && options.count <= 40)
        let headerLength = 20 + options.count
        let total = totalLength ?? headerLength + payload.count
        let flagsAndOffset = UInt16(fragmentOffset / 8) | (moreFragments ? 0x2000 : 0)
        var bytes: [UInt8] = [0x40 | UInt8(headerLength / 4), 0]
        bytes += be16(UInt16(total)) + be16(identification) + be16(flagsAndOffset)
        bytes += [64, protocolNumber, 0, 0]  // TTL, protocol, checksum (unchecked)
        bytes += v4Source + v4Destination + options
        return bytes + payload
    }

    /// An IPv6 header plus already-built extension headers and payload; `firstNextHeader`
    /// names the first of them.
    static func ipv6(firstNextHeader: UInt8, rest: [UInt8], payloadLength: Int? = nil) -> [UInt8] {
        var bytes: [UInt8] = [0x60, 0, 0, 0]
        bytes += be16(UInt16(payloadLength ?? rest.count)) + [firstNextHeader, 64]
        return bytes + v6Source + v6Destination + rest
    }

    // MARK: IPv6 extension headers

    /// Hop-by-hop, routing or destination options: (hdrExtLen + 1) × 8 bytes, PadN filled.
    static func optionsHeader(next: UInt8, hdrExtLen: UInt8 = 0) -> [UInt8] {
        let length = (Int(hdrExtLen) + 1) * 8
        return [next, hdrExtLen, 1, UInt8(length - 4)] + [UInt8](repeating: 0, count: length - 4)
    }

    static func routingHeader(next: UInt8) -> [UInt8] {
        // Type 4 (segment routing), segments left 0, 24 bytes: exercises a length > 8.
        [next, 2, 4, 0] + [UInt8](repeating: 0, count: 20)
    }

    static func fragmentHeader(next: UInt8, offset: Int, more: Bool, identification: UInt32) -> [UInt8] {
        [next, 0] + be16(UInt16(offset & 0xfff8) | (more ? 1 : 0)) + be32(identification)
    }

    /// AH with a 12-byte ICV: payload length field 4, (4 + 2) × 4 = 24 bytes.
    static func ahHeader(next: UInt8, spi: UInt32) -> [UInt8] {
        [next, 4, 0, 0] + be32(spi) + be32(1) + [UInt8](repeating: 0xaa, count: 12)
    }

    // MARK: Transports

    static func tcp(source: UInt16, destination: UInt16, flags: UInt8) -> [UInt8] {
        be16(source) + be16(destination) + be32(1000) + be32(2000) + [0x50, flags] + be16(65535) + [0, 0, 0, 0]
    }

    static func udp(source: UInt16, destination: UInt16, data: [UInt8] = [1, 2, 3, 4]) -> [UInt8] {
        be16(source) + be16(destination) + be16(UInt16(8 + data.count)) + [0, 0] + data
    }

    static func sctp(source: UInt16, destination: UInt16) -> [UInt8] {
        be16(source) + be16(destination) + be32(0xdeadbeef) + be32(0)
    }

    static func icmp(type: UInt8, code: UInt8, identifier: UInt16 = 0x4242) -> [UInt8] {
        [type, code, 0, 0] + be16(identifier) + be16(7) + [0x61, 0x62, 0x63, 0x64]
    }

    static func gre(protocolType: UInt16) -> [UInt8] { [0, 0] + be16(protocolType) }

    static func esp(spi: UInt32) -> [UInt8] { be32(spi) + be32(1) + [UInt8](repeating: 0x55, count: 16) }
}
