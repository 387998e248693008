import PacketParsing
import Testing

func parse(_ bytes: [UInt8], family: IPFamily? = nil) -> Result<PacketSummary, PacketParseError> {
    bytes.withUnsafeBytes { buffer in
        do throws(PacketParseError) {
            if let family {
                return .success(try PacketParser.parse(buffer, family: family))
            }
            return .success(try PacketParser.parse(buffer))
        } catch {
            return .failure(error)
        }
    }
}

func errorCode(_ bytes: [UInt8], family: IPFamily? = nil) -> PacketParseError.Code? {
    if case .failure(let error) = parse(bytes, family: family) { error.code } else { nil }
}

/// What the full result becomes when only `available` bytes of the transport header were
/// captured: each field survives only if it lies entirely inside them.
func truncated(_ transport: TransportInfo, available: Int) -> TransportInfo {
    func fit<T>(_ value: T?, end: Int) -> T? { available >= end ? value : nil }
    func fitPorts(_ pair: PortPair) -> PortPair {
        PortPair(source: fit(pair.source, end: 2), destination: fit(pair.destination, end: 4))
    }
    func fitICMP(_ info: ICMPInfo) -> ICMPInfo {
        ICMPInfo(type: fit(info.type, end: 1), code: fit(info.code, end: 2),
                 echoIdentifier: fit(info.echoIdentifier, end: 6))
    }
    switch transport {
    case .tcp(let info): return .tcp(TCPInfo(ports: fitPorts(info.ports), flags: fit(info.flags, end: 14)))
    case .udp(let pair): return .udp(fitPorts(pair))
    case .udpLite(let pair): return .udpLite(fitPorts(pair))
    case .sctp(let pair): return .sctp(fitPorts(pair))
    case .icmp(let info): return .icmp(fitICMP(info))
    case .icmpv6(let info): return .icmpv6(fitICMP(info))
    case .gre(let info): return .gre(GREInfo(protocolType: fit(info.protocolType, end: 4)))
    case .esp(let spi): return .esp(spi: fit(spi, end: 4))
    case .ah(let spi): return .ah(spi: fit(spi, end: 8))
    case .notFirstFragment, .other: return transport
    }
}

@Suite struct ValidPacketTests {
    @Test(arguments: validCases)
    func parsesEveryField(_ packet: PacketCase) throws {
        let summary = try parse(packet.bytes).get()
        #expect(summary == packet.expected)
        let family = packet.expected.family
        #expect(try parse(packet.bytes, family: family).get() == packet.expected)
        #expect(errorCode(packet.bytes, family: family == .ipv4 ? .ipv6 : .ipv4) == .familyMismatch)
    }

    /// Every prefix is a shorter capture of the same packet: it must give an error or a partial
    /// result that claims nothing beyond the prefix, and never trap.
    @Test(arguments: validCases)
    func everyPrefixGivesAnErrorOrAPartialResult(_ packet: PacketCase) throws {
        let ipHeaderLength = packet.expected.family == .ipv4 ? packet.transportOffset : 40
        for length in 0...packet.bytes.count {
            let result = parse(Array(packet.bytes.prefix(length)))
            guard length >= ipHeaderLength else {
                #expect(throws: PacketParseError.self, "prefix \(length)") { try result.get() }
                if case .failure(let error) = result { #expect(error.code == .truncatedIPHeader) }
                continue
            }
            let summary = try result.get()
            #expect(summary.family == packet.expected.family)
            #expect(summary.source == packet.expected.source)
            #expect(summary.destination == packet.expected.destination)
            #expect(summary.totalLength == packet.expected.totalLength)
            if length >= packet.transportOffset {
                var expected = packet.expected
                expected.transport = truncated(expected.transport, available: length - packet.transportOffset)
                #expect(summary == expected, "prefix \(length)")
            } else {
                // Cut inside the IPv6 extension headers: the walk stops at a header type.
                #expect(extensionHeaderTypes.contains(summary.protocolNumber), "prefix \(length)")
                #expect(summary.fragment == nil || summary.fragment == packet.expected.fragment)
                switch summary.transport {
                case .other: break
                case .ah(let spi): #expect(spi == nil || spi == testSPI)
                default: Issue.record("prefix \(length) claims a transport: \(summary.transport)")
                }
            }
        }
    }
}

@Suite struct MalformedPacketTests {
    let tcp = B.tcp(source: 1, destination: 2, flags: 0x02)

    @Test func emptyAndUnknownVersions() {
        #expect(errorCode([]) == .truncatedIPHeader)
        #expect(errorCode([], family: .ipv6) == .truncatedIPHeader)
        for version: UInt8 in [0, 1, 5, 7, 15] {
            var bytes = B.ipv4(protocolNumber: 6, payload: tcp)
            bytes[0] = version << 4 | 5
            #expect(errorCode(bytes) == .unsupportedVersion)
            #expect(errorCode(bytes, family: .ipv4) == .familyMismatch)
        }
    }

    @Test func headerLengthBelowMinimum() throws {
        for ihl: UInt8 in 0...4 {
            var bytes = B.ipv4(protocolNumber: 6, payload: tcp)
            bytes[0] = 0x40 | ihl
            #expect(errorCode(bytes) == .badHeaderLength)
        }
        var bytes = B.ipv4(protocolNumber: 6, payload: tcp)
        bytes[0] = 0x43
        let error = try #require(parse(bytes).failureValue)
        #expect(error.reason == "IPv4 header length 12 is below the minimum of 20")
    }

    @Test func headerLengthBeyondTheCapture() {
        // IHL 15 (60 bytes) but only the 20-byte fixed header captured.
        var bytes = Array(B.ipv4(protocolNumber: 6, payload: [UInt8](repeating: 0, count: 40)).prefix(20))
        bytes[0] = 0x4F
        #expect(errorCode(bytes) == .truncatedIPHeader)
        // The same, but the total length claims the whole datagram is 20 bytes: malformed.
        bytes[2] = 0; bytes[3] = 20
        #expect(errorCode(bytes) == .badTotalLength)
    }

    @Test func totalLengthSmallerThanHeader() {
        for total in [1, 10, 19] {
            let bytes = B.ipv4(protocolNumber: 6, payload: tcp, totalLength: total)
            #expect(errorCode(bytes) == .badTotalLength)
        }
        let withOptions = B.ipv4(protocolNumber: 6, payload: tcp, options: [1, 1, 1, 0], totalLength: 20)
        #expect(errorCode(withOptions) == .badTotalLength)
    }

    @Test func totalLengthBoundsTheTransport() throws {
        // Bytes after the total length (link padding) are not read as the transport header.
        let bytes = B.ipv4(protocolNumber: 6, payload: tcp, totalLength: 22)
        let summary = try parse(bytes).get()
        #expect(summary.totalLength == 22)
        #expect(summary.transport == .tcp(TCPInfo(ports: PortPair(source: 1, destination: nil), flags: nil)))
    }

    @Test func totalLengthZeroIsAGSOPacket() throws {
        let summary = try parse(B.ipv4(protocolNumber: 6, payload: tcp, totalLength: 0)).get()
        #expect(summary.totalLength == 0)
        #expect(summary.transport == .tcp(TCPInfo(ports: PortPair(source: 1, destination: 2), flags: .syn)))
    }

    @Test func ipv6PayloadLengthZeroWalksTheCapture() throws {
        let bytes = B.ipv6(firstNextHeader: 17, rest: B.udp(source: 9, destination: 10), payloadLength: 0)
        let summary = try parse(bytes).get()
        #expect(summary.totalLength == 40)
        #expect(summary.transport == .udp(PortPair(source: 9, destination: 10)))
    }

    @Test func ipv6PayloadLengthCutsAnExtensionHeader() throws {
        let rest = B.optionsHeader(next: 17) + B.udp(source: 9, destination: 10)
        let summary = try parse(B.ipv6(firstNextHeader: 0, rest: rest, payloadLength: 4)).get()
        #expect(summary.totalLength == 44)
        #expect(summary.protocolNumber == 0)
        #expect(summary.transport == .other)
    }

    @Test func ipv6ExtensionHeaderLengthPastTheEnd() throws {
        // Hop-by-hop claiming (200 + 1) × 8 bytes in a 16-byte payload.
        let hop: [UInt8] = [17, 200, 1, 4, 0, 0, 0, 0] + B.udp(source: 1, destination: 2, data: [])
        let summary = try parse(B.ipv6(firstNextHeader: 0, rest: hop)).get()
        #expect(summary.protocolNumber == 0)
        #expect(summary.transport == .other)
        #expect(summary.sourcePort == nil)

        // AH claiming more than is there: still reports the SPI it could read.
        var ah = B.ahHeader(next: 6, spi: testSPI)
        ah[1] = 255
        let ahSummary = try parse(B.ipv6(firstNextHeader: 51, rest: ah)).get()
        #expect(ahSummary.protocolNumber == 51)
        #expect(ahSummary.transport == .ah(spi: testSPI))
    }

    @Test func extensionHeaderChainIsBounded() throws {
        func chain(_ count: Int) -> [UInt8] {
            var rest: [UInt8] = []
            for index in 0..<count {
                rest += B.optionsHeader(next: index == count - 1 ? 17 : 60)
            }
            return B.ipv6(firstNextHeader: 60, rest: rest + B.udp(source: 5, destination: 6))
        }
        let atCap = try parse(chain(PacketParser.maximumExtensionHeaders)).get()
        #expect(atCap.transport == .udp(PortPair(source: 5, destination: 6)))

        let overCap = try parse(chain(PacketParser.maximumExtensionHeaders + 1)).get()
        #expect(overCap.protocolNumber == 60)
        #expect(overCap.transport == .other)

        // A full 64 KiB of headers, payload length 0 so the whole capture is walked.
        var long = chain(8000)
        long[4] = 0; long[5] = 0
        let longSummary = try parse(long).get()
        #expect(longSummary.transport == .other)
    }

    @Test func destinationOptionsLoopToItselfCannotHang() throws {
        // Every header names itself (60) as next; the cap ends the walk.
        let rest = [UInt8]((0..<64).flatMap { _ in B.optionsHeader(next: 60) })
        let summary = try parse(B.ipv6(firstNextHeader: 60, rest: rest)).get()
        #expect(summary.protocolNumber == 60)
        #expect(summary.transport == .other)
    }

    @Test func truncatedTCPKeepsWhatFits() throws {
        let bytes = Array(B.ipv4(protocolNumber: 6, payload: tcp).prefix(22))
        let summary = try parse(bytes).get()
        #expect(summary.sourcePort == 1)
        #expect(summary.destinationPort == nil)
        #expect(summary.tcpFlags == nil)
        #expect(summary.totalLength == 40)
    }
}

extension Result {
    var failureValue: Failure? {
        if case .failure(let error) = self { error } else { nil }
    }
}
