import PacketParsing
import Testing

/// An ICMP error quotes the packet that caused it; nfowner reads that quote to find the socket
/// the error is for.
@Suite struct ICMPErrorQuoteTests {
    static let sentDatagram = PacketBuilder.ipv4(protocolNumber: 17,
                                                 payload: PacketBuilder.udp(source: 40000, destination: 9661))

    static func quote(_ bytes: [UInt8]) -> PacketSummary? {
        bytes.withUnsafeBytes { PacketParser.icmpErrorQuote(of: $0) }
    }

    @Test func aPortUnreachableQuotesTheDatagramItAnswers() throws {
        let error = PacketBuilder.ipv4(protocolNumber: 1, payload: [3, 3, 0, 0, 0, 0, 0, 0] + Self.sentDatagram)
        let quoted = try #require(Self.quote(error))
        #expect(quoted.sourcePort == 40000 && quoted.destinationPort == 9661 && quoted.protocolNumber == 17)
        #expect(error.withUnsafeBytes { try! PacketParser.parse($0) }.isICMPError)
        // Only the first 8 bytes of the transport header quoted: the ports are there.
        let short = PacketBuilder.ipv4(protocolNumber: 1, payload: [11, 0, 0, 0, 0, 0, 0, 0] + Self.sentDatagram.prefix(28))
        #expect(Self.quote(Array(short))?.destinationPort == 9661)
    }

    @Test func anICMPv6ErrorQuotesTheIPv6Packet() throws {
        let sent = PacketBuilder.ipv6(firstNextHeader: 17, rest: PacketBuilder.udp(source: 40001, destination: 9662))
        let error = PacketBuilder.ipv6(firstNextHeader: 58, rest: [1, 4, 0, 0, 0, 0, 0, 0] + sent)
        #expect(Self.quote(error)?.destinationPort == 9662)
        let echoReply = PacketBuilder.ipv6(firstNextHeader: 58, rest: [129, 0, 0, 0, 0, 1, 0, 1])
        #expect(Self.quote(echoReply) == nil)
    }

    @Test func otherPacketsQuoteNothing() {
        let echoReply = PacketBuilder.ipv4(protocolNumber: 1, payload: [0, 0, 0, 0, 0, 1, 0, 1] + Self.sentDatagram)
        #expect(Self.quote(echoReply) == nil)
        #expect(echoReply.withUnsafeBytes { try! PacketParser.parse($0) }.isICMPError == false)
        #expect(Self.quote(Self.sentDatagram) == nil)
        // A quote that is not the error's family, or no IP packet at all.
        let mixed = PacketBuilder.ipv4(protocolNumber: 1, payload: [3, 3, 0, 0, 0, 0, 0, 0]
            + PacketBuilder.ipv6(firstNextHeader: 17, rest: PacketBuilder.udp(source: 1, destination: 2)))
        #expect(Self.quote(mixed) == nil)
        #expect(Self.quote(PacketBuilder.ipv4(protocolNumber: 1, payload: [3, 3, 0, 0, 0, 0, 0, 0, 0x45])) == nil)
        // A later fragment of an error is no error's start.
        #expect(Self.quote(PacketBuilder.ipv4(protocolNumber: 1, payload: [3, 3, 0, 0, 0, 0, 0, 0] + Self.sentDatagram,
                                              fragmentOffset: 8)) == nil)
        #expect(Self.quote([]) == nil)
    }

    /// Mutated and cut errors: never a read outside the bytes; the quotes that parse are IPv4.
    @Test func mutatedErrorsStayInBounds() {
        var random = SplitMix64(state: 0x1C3B)
        let seed = PacketBuilder.ipv4(protocolNumber: 1, payload: [3, 3, 0, 0, 0, 0, 0, 0] + Self.sentDatagram)
        var quoted = 0
        for _ in 0..<50_000 {
            var bytes = seed
            for _ in 0..<Int(random.next() % 4) {
                bytes[Int(random.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 3 == 0 { bytes.removeLast(Int(random.next() % UInt64(bytes.count + 1))) }
            if let summary = Self.quote(bytes) {
                quoted += 1
                #expect(summary.family == .ipv4)
            }
        }
        #expect(quoted > 5_000)
    }
}
