import PacketModel
import PacketParsing
import Sinks
import Testing

/// `SinkFanOut` keeps its first sink apart from the rest: every sink must still get every
/// packet, once, in the order the sinks were given.
@Suite struct SinkFanOutTests {
    final class Recorder: PacketSink {
        let name: Int
        let log: Log
        init(_ name: Int, _ log: Log) { self.name = name; self.log = log }
        var needs: SinkNeeds { .events }
        func consume(_ facts: borrowing PacketFacts) { log.calls.append("\(name) facts \(facts.packet.totalLength)") }
        func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) {
            log.calls.append("\(name) event \(event.packet.totalLength) \(payload.count)")
        }
    }
    final class Log { var calls: [String] = [] }

    static func packet(length: Int) -> PacketSummary {
        PacketSummary(family: .ipv4, source: .v4(1), destination: .v4(2), protocolNumber: 17, totalLength: length,
                      fragment: nil, transport: .udp(PortPair(source: 1, destination: 2)))
    }

    @Test(arguments: [0, 1, 2, 3])
    func everySinkGetsEveryPacketInOrder(sinkCount: Int) {
        let log = Log()
        let fanOut = SinkFanOut((0..<sinkCount).map { Recorder($0, log) })
        #expect(fanOut.isEmpty == (sinkCount == 0))
        let payload: [UInt8] = [1, 2, 3]
        for length in [40, 41] {
            fanOut.consume(PacketFacts(packet: Self.packet(length: length), direction: .outbound, uid: nil, gid: nil,
                                       cgroupID: nil, attribution: nil))
            let event = PacketEvent(metadata: PacketMetadata(), packet: Self.packet(length: length))
            payload.withUnsafeBytes { fanOut.consume(event, payload: $0) }
        }
        let expected = [40, 41].flatMap { length in
            (0..<sinkCount).map { "\($0) facts \(length)" } + (0..<sinkCount).map { "\($0) event \(length) 3" }
        }
        #expect(log.calls == expected)
    }
}
