import PacketParsing
import Testing

/// The exact text of every error, on both entry points: the texts are built out of line (only
/// when an error is thrown), so this pins them to what users and logs have always seen.
@Suite struct ErrorReasonTests {
    let tcp = B.tcp(source: 1, destination: 2, flags: 0x02)

    func reason(_ bytes: [UInt8], family: IPFamily? = nil) -> String? {
        parse(bytes, family: family).failureValue?.reason
    }

    @Test func versionAndFamily() {
        #expect(reason([]) == "no bytes were captured; an IP header needs at least 20")
        #expect(reason([], family: .ipv4) == "no bytes were captured; an IP header needs at least 20")
        var bytes = B.ipv4(protocolNumber: 6, payload: tcp)
        bytes[0] = 0x75
        #expect(reason(bytes) == "IP version 7 is neither 4 nor 6")
        #expect(reason(bytes, family: .ipv4) == "expected an IPv4 packet, but the IP version is 7")
        #expect(reason(B.ipv4(protocolNumber: 6, payload: tcp), family: .ipv6)
                == "expected an IPv6 packet, but the IP version is 4")
        #expect(reason([0x60], family: .ipv4) == "expected an IPv4 packet, but the IP version is 6")
    }

    @Test func ipv4Header() {
        for family in [nil, IPFamily.ipv4] {
            let packet = B.ipv4(protocolNumber: 6, payload: tcp)
            #expect(reason(Array(packet.prefix(19)), family: family)
                    == "IPv4 header needs 20 bytes, but only 19 were captured")
            #expect(reason([0x45], family: family) == "IPv4 header needs 20 bytes, but only 1 were captured")

            var shortIHL = packet
            shortIHL[0] = 0x44
            #expect(reason(shortIHL, family: family) == "IPv4 header length 16 is below the minimum of 20")

            // IHL 5 (the common header shape) and IHL 6, both with a total length below it.
            #expect(reason(B.ipv4(protocolNumber: 6, payload: tcp, totalLength: 19), family: family)
                    == "IPv4 total length 19 is smaller than its header length 20")
            #expect(reason(B.ipv4(protocolNumber: 6, payload: tcp, options: [1, 1, 1, 0], totalLength: 21),
                           family: family)
                    == "IPv4 total length 21 is smaller than its header length 24")

            // IHL 15 (60 bytes) and a total length of 60, but only the fixed 20 bytes captured.
            var options = Array(B.ipv4(protocolNumber: 6, payload: [], totalLength: 60).prefix(20))
            options[0] = 0x4F
            #expect(reason(options, family: family) == "IPv4 header length 60 is beyond the 20 captured bytes")
        }
    }

    @Test func ipv6Header() {
        let packet = B.ipv6(firstNextHeader: 17, rest: B.udp(source: 1, destination: 2))
        for family in [nil, IPFamily.ipv6] {
            #expect(reason(Array(packet.prefix(39)), family: family)
                    == "IPv6 header needs 40 bytes, but only 39 were captured")
            #expect(reason([0x60], family: family) == "IPv6 header needs 40 bytes, but only 1 were captured")
        }
    }
}
