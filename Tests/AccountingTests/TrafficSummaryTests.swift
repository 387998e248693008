@testable import Accounting
import PacketModel
import PacketParsing
import Testing

@Suite struct TrafficSummaryTests {
    static func event(hook: UInt8 = 3, uid: UInt32? = 1000, transport: TransportInfo, proto: UInt8, length: Int) -> PacketEvent {
        var metadata = PacketMetadata()
        metadata.family = 2
        metadata.hookNumber = hook
        let packet = PacketSummary(family: .ipv4, source: .v4(0x7F00_0001), destination: .v4(0x0A00_0002),
                                   protocolNumber: proto, totalLength: length, fragment: nil, transport: transport)
        return PacketEvent(metadata: metadata, packet: packet, owner: PacketOwner(uid: uid, userName: "alice"))
    }

    @Test func groupsByEndpointAndOwner() {
        var summary = TrafficSummary()
        let udp = TransportInfo.udp(PortPair(source: 4000, destination: 53))
        summary.add(Self.event(transport: udp, proto: 17, length: 60), owner: "dig[12]")
        summary.add(Self.event(transport: udp, proto: 17, length: 70), owner: "dig[12]")
        summary.add(Self.event(transport: .icmp(ICMPInfo(type: 8, code: 0, echoIdentifier: 1)), proto: 1, length: 84))
        summary.add(Self.event(hook: 1, uid: nil, transport: .udp(PortPair(source: 53, destination: 4000)), proto: 17, length: 90))
        #expect(summary.total.packetsOut == 3)
        #expect(summary.total.bytesOut == 214)
        #expect(summary.total.packetsIn == 1)
        let dns = summary.byEndpoint[TrafficSummary.Endpoint(protocolName: "udp", address: "10.0.0.2", port: "53")]
        #expect(dns?.packetsOut == 2)
        #expect(dns?.bytesOut == 130)
        let ping = summary.byEndpoint[TrafficSummary.Endpoint(protocolName: "icmp", address: "10.0.0.2", port: "type 8")]
        #expect(ping?.packetsOut == 1)
        #expect(summary.byOwner["dig[12]"]?.packetsOut == 2)
        #expect(summary.byOwner["uid 1000 (alice)"]?.packetsOut == 1)
        #expect(summary.byOwner["no owner"]?.packetsIn == 1)
        let text = summary.render()
        #expect(text.contains("udp 10.0.0.2 53"))
        #expect(text.contains("dig[12]"))
    }

    /// Issue 13: the share of bytes per confidence, each direction apart.
    @Test func reportsTheShareOfBytesPerConfidence() {
        var summary = TrafficSummary()
        let udp = TransportInfo.udp(PortPair(source: 4000, destination: 53))
        func add(_ confidence: OwnerAttribution.Confidence?, hook: UInt8, length: Int) {
            var event = Self.event(hook: hook, transport: udp, proto: 17, length: length)
            event.attribution = confidence.map { OwnerAttribution(confidence: $0) }
            summary.add(event)
        }
        add(.exact, hook: 3, length: 900)
        add(.flow, hook: 3, length: 100)
        add(.exact, hook: 1, length: 998)
        add(OwnerAttribution.Confidence.none, hook: 1, length: 2)
        add(nil, hook: 1, length: 1000)
        #expect(summary.byConfidence["exact"]?.bytesOut == 900 && summary.byConfidence["exact"]?.bytesIn == 998)
        #expect(summary.byConfidence["off"]?.packetsIn == 1)
        #expect(TrafficSummary.share(998, of: 2000) == "49.9")
        #expect(TrafficSummary.share(0, of: 0) == "-")
        let lines = summary.render().split(separator: "\n").map { $0.split(separator: " ").joined(separator: " ") }
        #expect(lines.contains("CONFIDENCE PKTS OUT BYTES OUT PKTS IN BYTES IN % B OUT % B IN"))
        #expect(lines.contains("exact 1 900 1 998 90.0 49.9"))
        #expect(lines.contains("flow 1 100 0 0 10.0 0.0"))
        #expect(lines.contains("none 0 0 1 2 0.0 0.1"))
        #expect(lines.contains("off 0 0 1 1000 0.0 50.0"))
    }

    @Test func emptySummarySaysSo() {
        #expect(TrafficSummary().render().contains("0 packets (0 bytes) out"))
    }
}
