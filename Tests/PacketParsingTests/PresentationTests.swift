import PacketParsing
import Testing

@Suite struct AddressTextTests {
    /// (input, canonical text): RFC 5952 sections 4 and 5, and edge cases of the "::" rule.
    static let ipv6Cases: [(String, String)] = [
        ("2001:db8:0:0:0:0:2:1", "2001:db8::2:1"),                 // 4.2.1 shorten as much as possible
        ("2001:db8:0000:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"),       // 4.2.2 one zero group stays
        ("2001:0:0:1:0:0:0:1", "2001:0:0:1::1"),                   // 4.2.3 the longest run
        ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),             // 4.2.3 the first of equal runs
        ("2001:DB8::AAAA", "2001:db8::aaaa"),                      // 4.3 lowercase
        ("2001:0db8::0001", "2001:db8::1"),                        // 4.1 no leading zeros
        ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),                  // 5 IPv4-mapped
        ("::ffff:c000:0201", "::ffff:192.0.2.1"),
        ("0:0:0:0:0:0:0:1", "::1"),
        ("0:0:0:0:0:0:0:0", "::"),
        ("1:0:0:0:0:0:0:0", "1::"),
        ("::1.2.3.4", "::102:304"),                                // IPv4-compatible: not mixed
        ("fe80::211:22ff:fe33:4455", "fe80::211:22ff:fe33:4455"),
        ("1:0:2:0:3:0:4:0", "1:0:2:0:3:0:4:0"),
        ("0:1:0:0:2:0:0:0", "0:1:0:0:2::"),
        ("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"),
        ("::ffff:0:0", "::ffff:0.0.0.0"),
        ("64:ff9b::192.0.2.33", "64:ff9b::c000:221"),
    ]

    @Test func ipv6Canonical() throws {
        for (input, canonical) in Self.ipv6Cases {
            let address = try #require(IPAddress(parsing: input), "\(input)")
            #expect(address.description == canonical, "\(input)")
            #expect(IPAddress(parsing: canonical) == address)
            var text: [UInt8] = Array("x=".utf8)
            address.appendText(to: &text)
            #expect(text == Array("x=\(canonical)".utf8))
        }
    }

    @Test func ipv4DottedQuad() throws {
        for text in ["0.0.0.0", "10.0.0.1", "192.0.2.1", "255.255.255.255", "100.64.9.99"] {
            let address = try #require(IPAddress(parsing: text))
            #expect(address.description == text)
            var bytes: [UInt8] = []
            address.appendText(to: &bytes)
            #expect(bytes == Array(text.utf8))
        }
        #expect(IPAddress(v4: 192, 0, 2, 1) == .v4(0xC000_0201))
        #expect(IPAddress(bytes: [127, 0, 0, 1])?.description == "127.0.0.1")
        #expect(IPAddress(bytes: [1, 2, 3]) == nil)
    }

    @Test func rejectsMalformedText() {
        for text in ["", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.1.1.1", "1.2.3.-4", "a.b.c.d",
                     "1::2::3", ":::", "1:2:3:4:5:6:7:8:9", "1:2:3:4:5:6:7::8", "12345::", ":1", "1:",
                     "::g", "::ffff:1.2.3", "::1.2.3.4:5", "1.2.3.4::", "fe80::1%eth0", "::/64"] {
            #expect(IPAddress(parsing: text) == nil, "\(text)")
        }
    }
}

@Suite struct PresentationTests {
    @Test func tcpFlagLetters() {
        #expect(TCPFlags([.syn, .ack]).letters == "SA")
        #expect(TCPFlags([.fin, .ack]).letters == "FA")
        #expect(TCPFlags.rst.letters == "R")
        #expect(TCPFlags.syn.letters == "S")
        #expect(TCPFlags([.psh, .ack]).letters == "PA")
        #expect(TCPFlags([]).letters == "")
        #expect(TCPFlags(rawValue: 0xFF).letters == "FSRPAUEC")
        #expect(TCPFlags([.syn, .ece, .cwr]).letters == "SEC")
    }

    @Test func protocolNames() {
        let expected: [UInt8: String] = [6: "tcp", 17: "udp", 136: "udplite", 1: "icmp", 58: "icmpv6",
                                         132: "sctp", 47: "gre", 50: "esp", 51: "ah"]
        for number in UInt8.min...UInt8.max {
            #expect(IPProtocolNames.name(for: number) == expected[number])
        }
    }

    @Test func convenienceAccessors() throws {
        let tcp = try parse(B.ipv4(protocolNumber: 6, payload: B.tcp(source: 1, destination: 2, flags: 0x12))).get()
        #expect(tcp.sourcePort == 1 && tcp.destinationPort == 2)
        #expect(tcp.tcpFlags == [.syn, .ack])
        #expect(tcp.icmp == nil)

        let sctp = try parse(B.ipv6(firstNextHeader: 132, rest: B.sctp(source: 3, destination: 4))).get()
        #expect(sctp.ports == PortPair(source: 3, destination: 4))
        #expect(sctp.tcpFlags == nil)

        let ping = try parse(B.ipv6(firstNextHeader: 58, rest: B.icmp(type: 128, code: 0, identifier: 5))).get()
        #expect(ping.icmp == ICMPInfo(type: 128, code: 0, echoIdentifier: 5))
        #expect(ping.sourcePort == nil)
    }
}
