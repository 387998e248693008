import Accounting
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

    @Test func emptySummarySaysSo() {
        #expect(TrafficSummary().render().contains("0 packets (0 bytes) out"))
    }
}
