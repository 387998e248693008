import PacketParsing
import Testing

/// Frames a packet socket sends, as the egress hook logs them: the link-layer header comes off
/// by the device's kind, and what is left is the IP packet or a frame without one.
@Suite struct LinkLayerTests {
    static let macs: [UInt8] = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 0x01]
    static let udp = B.ipv4(protocolNumber: 17, payload: B.udp(source: 40000, destination: 9651))

    /// The IP payload's offset in `frame`, or what came instead.
    static func decode(_ frame: [UInt8], _ header: LinkHeader) -> (offset: Int?, other: UInt16??) {
        frame.withUnsafeBytes { bytes in
            switch LinkLayer.payload(of: bytes, header: header) {
            case .ip(let payload):
                let offset = payload.baseAddress.map { $0 - bytes.baseAddress! } ?? bytes.count
                #expect(offset + payload.count == bytes.count)
                return (offset, nil)
            case .other(let etherType):
                return (nil, .some(etherType))
            }
        }
    }

    @Test func ethernetIPv4AndIPv6() throws {
        #expect(Self.decode(Self.macs + [0x08, 0x00] + Self.udp, .ethernet).offset == 14)
        let v6 = B.ipv6(firstNextHeader: 17, rest: B.udp(source: 1, destination: 2))
        #expect(Self.decode(Self.macs + [0x86, 0xDD] + v6, .ethernet).offset == 14)
        let frame = Self.macs + [0x08, 0x00] + Self.udp
        let summary = try frame.withUnsafeBytes { bytes in
            guard case .ip(let payload) = LinkLayer.payload(of: bytes, header: .ethernet) else { throw Failure() }
            return try PacketParser.parse(payload)
        }
        #expect(summary.destinationPort == 9651 && summary.totalLength == Self.udp.count)
    }

    @Test func vlanTagsAreFollowed() {
        #expect(Self.decode(Self.macs + [0x81, 0x00, 0x00, 0x0d, 0x08, 0x00] + Self.udp, .ethernet).offset == 18)
        #expect(Self.decode(Self.macs + [0x88, 0xA8, 0, 1, 0x81, 0x00, 0, 2, 0x08, 0x00] + Self.udp, .ethernet).offset == 22)
        // Three tags: more than Linux sends; not decoded, not trapped on.
        let three = Self.macs + [0x88, 0xA8, 0, 1, 0x81, 0x00, 0, 2, 0x81, 0x00, 0, 3, 0x08, 0x00] + Self.udp
        #expect(Self.decode(three, .ethernet).other == .some(0x8100))
    }

    @Test func framesWithoutIPAreNotIP() {
        #expect(Self.decode(Self.macs + [0x08, 0x06] + [UInt8](repeating: 0, count: 28), .ethernet).other == .some(0x0806))
        #expect(Self.decode(Array(Self.macs.prefix(13)), .ethernet).other == .some(nil))
        #expect(Self.decode([], .ethernet).other == .some(nil))
        #expect(Self.decode(Self.macs + [0x81, 0x00, 0x00], .ethernet).other == .some(nil))
    }

    @Test func devicesWithoutAHeaderCarryIPAlone() {
        #expect(Self.decode(Self.udp, .none).offset == 0)
        #expect(LinkHeader(hardwareType: 1) == .ethernet && LinkHeader(hardwareType: 772) == .ethernet)
        #expect(LinkHeader(hardwareType: 0xFFFE) == LinkHeader.none && LinkHeader(hardwareType: 519) == LinkHeader.none)
        #expect(LinkHeader(hardwareType: 32) == nil)  // InfiniBand: counted, not decoded
    }

    /// Random and mutated frames: never a read outside the frame, and an IP payload is always
    /// its tail.
    @Test func mutatedFramesStayInBounds() {
        var random = SplitMix64(state: 0x13_1337)
        let seeds = [Self.macs + [0x08, 0x00] + Self.udp, Self.macs + [0x81, 0x00, 0, 13, 0x86, 0xDD] + Self.udp,
                     Self.macs + [0x08, 0x06, 0, 1]]
        var decoded = 0
        for _ in 0..<50_000 {
            var frame = seeds[Int(random.next() % UInt64(seeds.count))]
            for _ in 0..<Int(random.next() % 4) {
                frame[Int(random.next() % UInt64(frame.count))] = UInt8(truncatingIfNeeded: random.next())
            }
            if random.next() % 3 == 0 { frame.removeLast(Int(random.next() % UInt64(frame.count + 1))) }
            if Self.decode(frame, .ethernet).offset != nil { decoded += 1 }
        }
        #expect(decoded > 10_000)
    }

    struct Failure: Error {}
}
