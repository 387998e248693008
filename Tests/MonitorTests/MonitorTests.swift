import Export
import Foundation
import Monitor
import NetlinkWire
import PacketParsing
import ProcessResolution
import Testing

@Suite struct SequenceGapTrackerTests {
    @Test func countsGapsPerGroup() {
        var tracker = SequenceGapTracker()
        #expect(tracker.record(group: 1, sequence: 0) == 0)
        #expect(tracker.record(group: 1, sequence: 1) == 0)
        #expect(tracker.record(group: 1, sequence: 5) == 3)
        #expect(tracker.record(group: 2, sequence: 100) == 0)
        #expect(tracker.record(group: 2, sequence: 101) == 0)
        #expect(tracker.record(group: 1, sequence: 6) == 0)
    }

    @Test func wrapsAroundAndIgnoresRestarts() {
        var tracker = SequenceGapTracker()
        _ = tracker.record(group: 1, sequence: UInt32.max - 1)
        #expect(tracker.record(group: 1, sequence: 1) == 2) // max, 0 missing
        #expect(tracker.record(group: 1, sequence: 0) == 0)   // went backwards: a restart
        #expect(tracker.record(group: 1, sequence: 1) == 0)
    }
}

@Suite struct BatchProcessorTests {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("NetlinkWireTests/Fixtures")

    static func processor(limit: UInt64? = nil) -> BatchProcessor {
        BatchProcessor(
            eventLimit: limit,
            owners: OwnerNames(lookUpUser: { $0 == 65534 ? "nobody" : nil }, lookUpGroup: { _ in nil }),
            interfaces: InterfaceNames(lookUp: { $0 == 1 ? "lo" : nil }),
            clock: { EventTime(seconds: 1000, microseconds: 7) })
    }

    static func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    @Test func recordedKernelBatchBecomesFiveEvents() throws {
        var processor = Self.processor()
        var events: [PacketEvent] = []
        let batch = try Self.fixture("batch-5-udp4.bin")
        batch.withUnsafeBytes { _ = processor.process(batch: $0) { events.append($0) } }
        #expect(events.count == 5)
        #expect(processor.counters.received == 5)
        #expect(processor.counters.lost == 0)
        #expect(processor.counters.parseErrors == 0)
        #expect(events.allSatisfy { $0.record.uid == 65534 && $0.userName == "nobody" })
        #expect(events.allSatisfy { $0.time == EventTime(seconds: 1000, microseconds: 7) })
        #expect(events.allSatisfy { $0.outputInterfaceName == "lo" && $0.hook == .output })
    }

    /// `--format none` resolves every packet's owner without building events; with events, the
    /// attribution is handed out instead. Either way once per packet.
    @Test func ownersAreResolvedWithAndWithoutEvents() throws {
        final class CountingAttributor: PacketAttributing {
            var attributed = 0
            var resolved = 0
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution {
                attributed += 1
                return OwnerAttribution(confidence: .uid)
            }
            func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?, now: UInt64) {
                resolved += 1
            }
        }
        let batch = try Self.fixture("batch-5-udp4.bin")
        for buildsEvents in [false, true] {
            let counting = CountingAttributor()
            var processor = BatchProcessor(buildsEvents: buildsEvents, attributor: counting,
                                           clock: { EventTime(seconds: 1000, microseconds: 7) })
            var events: [PacketEvent] = []
            batch.withUnsafeBytes { _ = processor.process(batch: $0) { events.append($0) } }
            #expect(counting.resolved == (buildsEvents ? 0 : 5))
            #expect(counting.attributed == (buildsEvents ? 5 : 0))
            #expect(events.count == (buildsEvents ? 5 : 0))
            #expect(events.allSatisfy { $0.attribution?.confidence == .uid })
        }
    }

    @Test func recordedKernelPacketWithoutOwner() throws {
        var processor = Self.processor()
        var events: [PacketEvent] = []
        let batch = try Self.fixture("icmp-unreachable-kernel.bin")
        batch.withUnsafeBytes { _ = processor.process(batch: $0) { events.append($0) } }
        let event = try #require(events.first)
        #expect(event.record.uid == nil)
        #expect(event.userName == nil)
        #expect(event.packet.icmp?.type == 3)
        #expect(processor.counters.withOwner == 0)
    }

    @Test func sequenceGapsAcrossBatchesCountAsLost() {
        var processor = Self.processor()
        func batch(_ sequences: [UInt32]) -> [UInt8] {
            NflogPacketEncoder.encodeBatch(sequences.map { sequence in
                var record = NflogRecord()
                record.group = 5
                record.family = 2
                record.hook = 3
                record.sequence = sequence
                return (record, Self.udpPacket)
            }, group: 5)
        }
        for sequences in [[0, 1, 2], [5, 6], [7]] as [[UInt32]] {
            batch(sequences).withUnsafeBytes { _ = processor.process(batch: $0) { _ in } }
        }
        #expect(processor.counters.received == 6)
        #expect(processor.counters.lost == 2)
        #expect(processor.counters.emitted == 6)
        #expect(processor.counters.batches == 3)
    }

    @Test func unparsablePayloadsAndMalformedMessagesAreCountedNotFatal() {
        var processor = Self.processor()
        var record = NflogRecord()
        record.family = 2
        let good = NflogPacketEncoder.encode(record, payload: Self.udpPacket)
        let garbage = NflogPacketEncoder.encode(record, payload: [0x45, 0x00])
        var bytes = good + garbage
        bytes += [0xFF, 0x00, 0x00, 0x00] // a truncated header: malformed tail
        var events = 0
        bytes.withUnsafeBytes { _ = processor.process(batch: $0) { _ in events += 1 } }
        #expect(events == 1)
        #expect(processor.counters.received == 2)
        #expect(processor.counters.parseErrors == 2)
    }

    @Test func eventLimitStopsEmitting() {
        var processor = Self.processor(limit: 2)
        var record = NflogRecord()
        record.family = 2
        let batch = NflogPacketEncoder.encodeBatch(Array(repeating: (record, Self.udpPacket), count: 5))
        var events = 0
        batch.withUnsafeBytes { _ = processor.process(batch: $0) { _ in events += 1 } }
        #expect(events == 2)
        #expect(processor.isFinished)
        #expect(processor.counters.received == 5)
    }

    @Test func errorRepliesAreReported() {
        var processor = Self.processor()
        let request = NflogConfigRequest.encode(group: 5, sequence: 9, .command(.bind))
        let reply = NetlinkMessageEncoder.error(errno: 1, answering: request)
        let replies = reply.withUnsafeBytes { processor.process(batch: $0) { _ in } }
        #expect(replies.errors.count == 1)
        #expect(replies.errors.first?.errno == 1)
        #expect(replies.errors.first?.sequence == 9)
    }

    @Test func summaryLineHasTheContractKeys() {
        var counters = MonitorCounters()
        counters.received = 3
        let line = counters.summaryLine(durationSeconds: 1.23456, groups: [5, 6])
        #expect(line.hasPrefix("received=3 lost=0 enobufs=0 parse_errors=0 "))
        #expect(line.contains(" groups=5,6 "))
        #expect(line.contains(" duration_s=1.235"))
        #expect(line.hasSuffix(" wakeups=0"))
    }

    /// IPv4 UDP 127.0.0.1:40000 → 127.0.0.1:9999 with 4 payload bytes.
    static let udpPacket: [UInt8] = [
        0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
        0x7F, 0x00, 0x00, 0x01, 0x7F, 0x00, 0x00, 0x01,
        0x9C, 0x40, 0x27, 0x0F, 0x00, 0x0C, 0x00, 0x00,
        0x01, 0x02, 0x03, 0x04,
    ]
}
