import Attribution
import Foundation
import NetlinkWire
import PacketModel
import PacketParsing
import PacketSources
import Session
import Testing

/// Hold mode's source and the pipeline's answer, fed built messages: a held packet's owner is
/// resolved (with the uid NFQUEUE attached), it is accepted by id and counted as held, and it is
/// not an event; NFLOG datagrams through the same source still become events.
@Suite struct HoldingSourceTests {
    /// Every queue nfowner binds asks for the owner's uid/gid and for GSO packets unsegmented
    /// (NFQA_CFG_F_GSO, bit 2), fail-open only when asked.
    @Test func queuesTakeGSOPacketsWhole() {
        #expect(NfqueueSource.configFlags(failOpen: true).rawValue == 0b1101)
        #expect(NfqueueSource.configFlags(failOpen: false).rawValue == 0b1100)
    }

    final class RecordingAttributor: PacketAttributing {
        var resolved: [(uid: UInt32?, destinationPort: UInt16?)] = []
        func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                       now: UInt64) -> OwnerAttribution {
            OwnerAttribution(confidence: .uid)
        }
        func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                     now: UInt64) -> AttributionTally {
            if case .tcp(let tcp) = packet.transport { resolved.append((uid, tcp.ports.destination)) } else { resolved.append((uid, nil)) }
            return .uid
        }
    }

    /// An NFQUEUE packet message: id, output hook, the packet's mark when given, uid, the payload.
    static func heldMessage(id: UInt32, uid: UInt32, payload: [UInt8], mark: UInt32? = nil, queue: UInt8 = 5) -> [UInt8] {
        func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
            var bytes = withUnsafeBytes(of: UInt16(4 + value.count).littleEndian, Array.init)
                + withUnsafeBytes(of: type.littleEndian, Array.init) + value
            while bytes.count % 4 != 0 { bytes.append(0) }
            return bytes
        }
        let body: [UInt8] = [2, 0, 0, queue]
            + attribute(1, withUnsafeBytes(of: id.bigEndian, Array.init) + [0x08, 0x00, 3])
            + (mark.map { attribute(3, withUnsafeBytes(of: $0.bigEndian, Array.init)) } ?? [])
            + attribute(16, withUnsafeBytes(of: uid.bigEndian, Array.init))
            + attribute(10, payload)
        return withUnsafeBytes(of: UInt32(16 + body.count).littleEndian, Array.init)
            + [0x00, 0x03, 0, 0] + [UInt8](repeating: 0, count: 8) + body
    }

    /// 127.0.0.1:40000 → 127.0.0.1:8080, a SYN.
    static let syn: [UInt8] = [0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]
        + [0x9c, 0x40, 0x1f, 0x90, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]

    @Test func aHeldPacketIsResolvedAcceptedAndCountedButIsNotAnEvent() throws {
        let attributor = RecordingAttributor()
        let log = NflogSource(subscription: nil)
        let queue = NfqueueSource(decodingOnly: NfqueueSettings())
        let source = HoldingSource(log: log, queue: queue)
        let sink = CollectingSink()
        let engine = AttributionEngine(processes: attributor, names: OwnerNames(lookUpUser: { _ in nil }, lookUpGroup: { _ in nil }),
                                       interfaces: InterfaceNames(lookUp: { _ in nil }))
        let pipeline = PacketPipeline(source: source, engine: engine, sinks: [sink])
        Self.heldMessage(id: 77, uid: 1000, payload: Self.syn).withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
        _ = pipeline.endDatagram()
        #expect(attributor.resolved.count == 1)
        #expect(attributor.resolved.first?.uid == 1000)
        #expect(attributor.resolved.first?.destinationPort == 8080)
        #expect(queue.sentVerdicts.map(\.id) == [77])
        #expect(queue.sentVerdicts.first?.code == .accept)
        #expect(sink.events.isEmpty)
        #expect(source.counters.held == 1)
        #expect(source.counters.heldVerdictFailures == 0)
        #expect(source.counters.received == 0)

        // A packet that does not parse is accepted all the same: hold mode never blocks.
        Self.heldMessage(id: 78, uid: 1000, payload: [0x45, 0, 0]).withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
        #expect(queue.sentVerdicts.map(\.id) == [77, 78])
        #expect(queue.sentVerdicts.allSatisfy { $0.code == .accept })

        // A malformed queue message is counted with the source's malformed messages.
        var damaged = Self.heldMessage(id: 79, uid: 1000, payload: Self.syn)
        damaged[21] = 0  // PACKET_HDR's nla_len: 0x0b00 → 0x0000 below the header size
        damaged[20] = 2
        damaged.withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
        #expect(source.counters.malformed == 1)
        #expect(queue.sentVerdicts.count == 2)
    }

    @Test func nflogDatagramsThroughTheSameSourceAreEvents() throws {
        let log = NflogSource(subscription: nil)
        let source = HoldingSource(log: log, queue: NfqueueSource(decodingOnly: NfqueueSettings()))
        let sink = CollectingSink()
        let pipeline = PacketPipeline(source: source, engine: AttributionEngine(), sinks: [sink])
        var record = NflogRecord()
        record.group = 6
        record.family = 2
        record.hook = 3
        record.uid = 1000
        NflogPacketEncoder.encode(record, payload: Self.syn).withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
        _ = pipeline.endDatagram()
        #expect(sink.events.count == 1)
        #expect(sink.events.first?.metadata.origin == PacketOrigin(kind: .nflog, number: 6))
        #expect(source.counters.received == 1)
        #expect(source.counters.held == 0)
        let line = SessionCounters(source: source.counters, pipeline: pipeline.counters).summaryLine(durationSeconds: nil, groups: [5])
        #expect(line.hasSuffix(" held=0 held_verdict_failures=0"))
    }
}
