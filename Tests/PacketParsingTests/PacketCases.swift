import PacketParsing
import Testing

/// One valid hand-built packet and what parsing it must give.
struct PacketCase: Sendable, CustomTestStringConvertible {
    var name: String
    var bytes: [UInt8]
    /// Where the transport header starts (after IPv4 options / IPv6 extension headers).
    var transportOffset: Int
    var expected: PacketSummary
    var testDescription: String { name }
}

typealias B = PacketBuilder

let v4Source = IPAddress(v4: 192, 0, 2, 1)
let v4Destination = IPAddress(v4: 198, 51, 100, 7)
let v6Source = IPAddress(bytes: B.v6Source) ?? .v6(high: 0, low: 0)
let v6Destination = IPAddress(bytes: B.v6Destination) ?? .v6(high: 0, low: 0)
let testSPI: UInt32 = 0x0102_0304

/// IPv6 extension header types, for checking where a walk may stop.
let extensionHeaderTypes: Set<UInt8> = [0, 43, 44, 51, 60]

func v4Case(_ name: String, protocolNumber: UInt8, payload: [UInt8], options: [UInt8] = [],
            moreFragments: Bool = false, fragmentOffset: Int = 0,
            transport: TransportInfo) -> PacketCase {
    let bytes = B.ipv4(protocolNumber: protocolNumber, payload: payload, options: options,
                       moreFragments: moreFragments, fragmentOffset: fragmentOffset)
    let fragment = moreFragments || fragmentOffset > 0
        ? FragmentInfo(offset: fragmentOffset, moreFragments: moreFragments, identification: 0x1234) : nil
    return PacketCase(name: name, bytes: bytes, transportOffset: 20 + options.count,
                      expected: PacketSummary(family: .ipv4, source: v4Source, destination: v4Destination,
                                              protocolNumber: protocolNumber, totalLength: bytes.count,
                                              fragment: fragment, transport: transport))
}

func v6Case(_ name: String, firstNextHeader: UInt8, extensionHeaders: [UInt8] = [], payload: [UInt8],
            protocolNumber: UInt8, fragment: FragmentInfo? = nil, transport: TransportInfo) -> PacketCase {
    let bytes = B.ipv6(firstNextHeader: firstNextHeader, rest: extensionHeaders + payload)
    return PacketCase(name: name, bytes: bytes, transportOffset: 40 + extensionHeaders.count,
                      expected: PacketSummary(family: .ipv6, source: v6Source, destination: v6Destination,
                                              protocolNumber: protocolNumber, totalLength: bytes.count,
                                              fragment: fragment, transport: transport))
}

func ports(_ source: UInt16, _ destination: UInt16) -> PortPair {
    PortPair(source: source, destination: destination)
}

let validCases: [PacketCase] = [
    // IPv4, one per protocol
    v4Case("v4 tcp syn", protocolNumber: 6, payload: B.tcp(source: 40000, destination: 443, flags: 0x02),
           transport: .tcp(TCPInfo(ports: ports(40000, 443), flags: .syn))),
    v4Case("v4 udp", protocolNumber: 17, payload: B.udp(source: 5353, destination: 53),
           transport: .udp(ports(5353, 53))),
    v4Case("v4 udplite", protocolNumber: 136, payload: B.udp(source: 1111, destination: 2222),
           transport: .udpLite(ports(1111, 2222))),
    v4Case("v4 sctp", protocolNumber: 132, payload: B.sctp(source: 36412, destination: 38412),
           transport: .sctp(ports(36412, 38412))),
    v4Case("v4 icmp echo request", protocolNumber: 1, payload: B.icmp(type: 8, code: 0),
           transport: .icmp(ICMPInfo(type: 8, code: 0, echoIdentifier: 0x4242))),
    v4Case("v4 icmp echo reply", protocolNumber: 1, payload: B.icmp(type: 0, code: 0),
           transport: .icmp(ICMPInfo(type: 0, code: 0, echoIdentifier: 0x4242))),
    v4Case("v4 icmp port unreachable", protocolNumber: 1, payload: B.icmp(type: 3, code: 3),
           transport: .icmp(ICMPInfo(type: 3, code: 3, echoIdentifier: nil))),
    v4Case("v4 gre", protocolNumber: 47, payload: B.gre(protocolType: 0x0800),
           transport: .gre(GREInfo(protocolType: 0x0800))),
    v4Case("v4 esp", protocolNumber: 50, payload: B.esp(spi: testSPI), transport: .esp(spi: testSPI)),
    v4Case("v4 ah", protocolNumber: 51, payload: B.ahHeader(next: 6, spi: testSPI) + B.tcp(source: 1, destination: 2, flags: 0x10),
           transport: .ah(spi: testSPI)),
    v4Case("v4 ipip is other", protocolNumber: 4, payload: [UInt8](repeating: 0x45, count: 20), transport: .other),
    v4Case("v4 with options", protocolNumber: 6,
           payload: B.tcp(source: 22, destination: 50000, flags: 0x12),
           options: [0x94, 0x04, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00],  // router alert, NOP×3, EOL
           transport: .tcp(TCPInfo(ports: ports(22, 50000), flags: [.syn, .ack]))),
    v4Case("v4 with 40 bytes of options", protocolNumber: 17,
           payload: B.udp(source: 7, destination: 9),
           options: [UInt8](repeating: 0x01, count: 40),
           transport: .udp(ports(7, 9))),
    v4Case("v4 first fragment", protocolNumber: 17, payload: B.udp(source: 123, destination: 4567, data: [UInt8](repeating: 9, count: 32)),
           moreFragments: true, transport: .udp(ports(123, 4567))),
    v4Case("v4 later fragment", protocolNumber: 17, payload: [UInt8](repeating: 0x11, count: 24),
           moreFragments: true, fragmentOffset: 1480, transport: .notFirstFragment),
    v4Case("v4 last fragment", protocolNumber: 6, payload: [UInt8](repeating: 0x22, count: 16),
           fragmentOffset: 2960, transport: .notFirstFragment),

    // IPv6, one per protocol
    v6Case("v6 tcp fin ack", firstNextHeader: 6, payload: B.tcp(source: 443, destination: 51000, flags: 0x11),
           protocolNumber: 6, transport: .tcp(TCPInfo(ports: ports(443, 51000), flags: [.fin, .ack]))),
    v6Case("v6 udp", firstNextHeader: 17, payload: B.udp(source: 546, destination: 547),
           protocolNumber: 17, transport: .udp(ports(546, 547))),
    v6Case("v6 udplite", firstNextHeader: 136, payload: B.udp(source: 3, destination: 4),
           protocolNumber: 136, transport: .udpLite(ports(3, 4))),
    v6Case("v6 sctp", firstNextHeader: 132, payload: B.sctp(source: 2905, destination: 2906),
           protocolNumber: 132, transport: .sctp(ports(2905, 2906))),
    v6Case("v6 icmpv6 echo request", firstNextHeader: 58, payload: B.icmp(type: 128, code: 0, identifier: 77),
           protocolNumber: 58, transport: .icmpv6(ICMPInfo(type: 128, code: 0, echoIdentifier: 77))),
    v6Case("v6 icmpv6 echo reply", firstNextHeader: 58, payload: B.icmp(type: 129, code: 0, identifier: 78),
           protocolNumber: 58, transport: .icmpv6(ICMPInfo(type: 129, code: 0, echoIdentifier: 78))),
    v6Case("v6 icmpv6 neighbor solicitation", firstNextHeader: 58, payload: B.icmp(type: 135, code: 0),
           protocolNumber: 58, transport: .icmpv6(ICMPInfo(type: 135, code: 0, echoIdentifier: nil))),
    v6Case("v6 gre", firstNextHeader: 47, payload: B.gre(protocolType: 0x86dd),
           protocolNumber: 47, transport: .gre(GREInfo(protocolType: 0x86dd))),
    v6Case("v6 esp", firstNextHeader: 50, payload: B.esp(spi: testSPI), protocolNumber: 50, transport: .esp(spi: testSPI)),
    v6Case("v6 no next header", firstNextHeader: 59, payload: [], protocolNumber: 59, transport: .other),
    v6Case("v6 unknown protocol", firstNextHeader: 253, payload: [1, 2, 3, 4], protocolNumber: 253, transport: .other),

    // IPv6 extension header chains
    v6Case("v6 hop-by-hop routing fragment dest-opts udp", firstNextHeader: 0,
           extensionHeaders: B.optionsHeader(next: 43) + B.routingHeader(next: 44)
               + B.fragmentHeader(next: 60, offset: 0, more: true, identification: 0xabcd_ef01)
               + B.optionsHeader(next: 17, hdrExtLen: 1),
           payload: B.udp(source: 4789, destination: 4790), protocolNumber: 17,
           fragment: FragmentInfo(offset: 0, moreFragments: true, identification: 0xabcd_ef01),
           transport: .udp(ports(4789, 4790))),
    v6Case("v6 ah then tcp", firstNextHeader: 51, extensionHeaders: B.ahHeader(next: 6, spi: testSPI),
           payload: B.tcp(source: 179, destination: 33000, flags: 0x18), protocolNumber: 6,
           transport: .tcp(TCPInfo(ports: ports(179, 33000), flags: [.psh, .ack]))),
    v6Case("v6 hop-by-hop then no next header", firstNextHeader: 0, extensionHeaders: B.optionsHeader(next: 59),
           payload: [], protocolNumber: 59, transport: .other),
    v6Case("v6 atomic fragment", firstNextHeader: 44,
           extensionHeaders: B.fragmentHeader(next: 58, offset: 0, more: false, identification: 5),
           payload: B.icmp(type: 128, code: 0, identifier: 9), protocolNumber: 58,
           fragment: FragmentInfo(offset: 0, moreFragments: false, identification: 5),
           transport: .icmpv6(ICMPInfo(type: 128, code: 0, echoIdentifier: 9))),
    v6Case("v6 later fragment", firstNextHeader: 0,
           extensionHeaders: B.optionsHeader(next: 44) + B.fragmentHeader(next: 17, offset: 1448, more: true, identification: 42),
           payload: [UInt8](repeating: 0x33, count: 24), protocolNumber: 17,
           fragment: FragmentInfo(offset: 1448, moreFragments: true, identification: 42),
           transport: .notFirstFragment),
]
