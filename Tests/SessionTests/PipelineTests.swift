import Attribution
import Export
import Foundation
import NetlinkWire
import PacketModel
import PacketParsing
import PacketSources
import Session
import Sinks
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

/// What a sink was handed, kept: events are not copyable (sinks borrow them), so the test sink
/// copies their fields out.
struct RecordedEvent {
    var metadata: PacketMetadata
    var packet: PacketSummary
    var owner: PacketOwner
    var inputInterfaceName: String?
    var outputInterfaceName: String?

    init(_ event: borrowing PacketEvent) {
        metadata = event.metadata
        packet = event.packet
        owner = event.owner
        inputInterfaceName = event.inputInterfaceName
        outputInterfaceName = event.outputInterfaceName
    }

    var userName: String? { owner.userName }
    var cgroupID: UInt64? { owner.cgroupID }
    var cgroupPath: String? { owner.cgroupPath }
    var unit: String? { owner.unit }
    var attribution: OwnerAttribution? { owner.attribution }
    var direction: Direction { metadata.direction }
    var hook: Hook? { metadata.hook }
    var time: EventTime { metadata.time }

    /// The event again, for an encoder.
    var event: PacketEvent {
        PacketEvent(metadata: metadata, packet: packet, owner: owner,
                    inputInterfaceName: inputInterfaceName, outputInterfaceName: outputInterfaceName)
    }
}

/// Collects what the pipeline hands out.
final class CollectingSink: PacketSink {
    var events: [RecordedEvent] = []
    var facts = 0
    let needs: SinkNeeds
    init(needs: SinkNeeds = .events) { self.needs = needs }
    func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) { events.append(RecordedEvent(event)) }
    func consume(_ facts: borrowing PacketFacts) { self.facts += 1 }
}

/// A flow cache in a dictionary: a flow resolved once gets the answer (an identity, shown as the
/// attribution's reason "answer N") from `updateCached` after that; counts both kinds of call.
final class CachingIdentityAttributor: PacketAttributing {
    var cache: [FlowKey: UInt64] = [:]
    var nextAnswer: UInt64 = 1
    var lookups = 0
    var resolved = 0
    func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                   now: UInt64) -> OwnerAttribution {
        OwnerAttribution(confidence: .uid)
    }
    func updateCached(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey,
                      now: UInt64) -> AttributionTally? {
        lookups += 1
        guard let answer = cache[key] else { return nil }
        if identity != answer {
            current = OwnerAttribution(confidence: .uid, reason: "answer \(answer)")
            identity = answer
        }
        return .uid
    }
    func update(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey, packet: PacketSummary,
                direction: Direction, uid: UInt32?, cgroupPath: String?, now: UInt64) -> AttributionTally {
        resolved += 1
        cache[key] = nextAnswer
        current = OwnerAttribution(confidence: .uid, reason: "answer \(nextAnswer)")
        identity = nextAnswer
        nextAnswer += 1
        return .uid
    }
}
/// Keeps what a facts sink is handed: whether each packet repeats the one before, its uid and
/// its attribution's reason.
final class FactsRecorder: PacketSink {
    var repeats: [Bool] = []
    var uids: [UInt32?] = []
    var answers: [String?] = []
    let needs = SinkNeeds.facts
    func consume(_ facts: borrowing PacketFacts) {
        repeats.append(facts.repeatsPrevious)
        uids.append(facts.flow.uid)
        answers.append(facts.attribution?.reason)
    }
}

/// An NFLOG source without a socket, fed recorded or built batches, and the pipeline after it.
struct PipelineHarness {
    let source = NflogSource(subscription: nil)
    let pipeline: PacketPipeline
    let sink: CollectingSink

    init(limit: UInt64? = nil, sink: CollectingSink = CollectingSink(), processes: (any PacketAttributing)? = nil) {
        self.sink = sink
        let engine = AttributionEngine(
            processes: processes,
            names: OwnerNames(lookUpUser: { $0 == 65534 ? "nobody" : nil }, lookUpGroup: { _ in nil }),
            interfaces: InterfaceNames(lookUp: { $0 == 1 ? "lo" : nil }))
        pipeline = PacketPipeline(source: source, engine: engine, sinks: [sink], eventLimit: limit,
                                  clock: { EventTime(seconds: 1000, microseconds: 7) })
    }

    func process(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
        _ = pipeline.endDatagram()
    }

    var events: [RecordedEvent] { sink.events }
    var counters: SessionCounters { SessionCounters(source: source.counters, pipeline: pipeline.counters) }
}

@Suite struct PacketPipelineTests {
    static let fixtures = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("NetlinkWireTests/Fixtures")

    static func fixture(_ name: String) throws -> [UInt8] {
        Array(try Data(contentsOf: fixtures.appendingPathComponent(name)))
    }

    @Test func recordedKernelBatchBecomesFiveEvents() throws {
        let harness = PipelineHarness()
        harness.process(try Self.fixture("batch-5-udp4.bin"))
        let events = harness.events
        #expect(events.count == 5)
        #expect(harness.counters.source.received == 5)
        #expect(harness.counters.source.lost == 0)
        #expect(harness.counters.pipeline.parseErrors == 0)
        #expect(events.allSatisfy { $0.owner.uid == 65534 && $0.userName == "nobody" })
        #expect(events.allSatisfy { $0.time == EventTime(seconds: 1000, microseconds: 7) })
        #expect(events.allSatisfy { $0.outputInterfaceName == "lo" && $0.hook == .output })
    }

    /// A run that only counts resolves every packet's owner without building events; with an
    /// event sink, the attribution is handed out instead. Either way once per packet.
    @Test func ownersAreResolvedWithAndWithoutEvents() throws {
        final class CountingAttributor: PacketAttributing {
            var attributed = 0
            var resolved = 0
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution {
                attributed += 1
                return OwnerAttribution(confidence: .uid)
            }
            func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                         now: UInt64) -> AttributionTally {
                resolved += 1
                return .uid
            }
        }
        let batch = try Self.fixture("batch-5-udp4.bin")
        for buildsEvents in [false, true] {
            let counting = CountingAttributor()
            let harness = PipelineHarness(sink: CollectingSink(needs: buildsEvents ? .events : .counters),
                                          processes: counting)
            harness.process(batch)
            let events = harness.events
            #expect(counting.resolved == (buildsEvents ? 0 : 5))
            #expect(counting.attributed == (buildsEvents ? 5 : 0))
            #expect(events.count == (buildsEvents ? 5 : 0))
            #expect(events.allSatisfy { $0.attribution?.confidence == .uid })
            // Counted per confidence either way.
            #expect(harness.counters.pipeline.attributions?[.uid] == 5)
            #expect(harness.counters.pipeline.attributions?.none == 0)
        }
    }

    /// Frames from a device's egress hook (NFPROTO_NETDEV, a packet socket's): the Ethernet header
    /// comes off before parsing, the sinks get the IP packet, the owner comes from the packet
    /// socket lookup (never the flow path), and a frame without IP is counted apart — no parse
    /// errors. Interface 1 is loopback, whose frames carry an Ethernet header.
    @Test func packetSocketFramesLoseTheirLinkHeaderAndAreAttributedAsFrames() {
        final class FrameAttributor: PacketAttributing {
            var frames: [(uid: UInt32?, interface: UInt32?)] = []
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution {
                OwnerAttribution(confidence: .uid)
            }
            func attributeFrame(packet: PacketSummary, uid: UInt32?, interface: UInt32?, now: UInt64) -> OwnerAttribution {
                frames.append((uid, interface))
                return OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 42, comm: "sender", exe: "/bin/sender")])
            }
        }
        final class PayloadSink: PacketSink {
            var payloads: [[UInt8]] = []
            var hooks: [Hook?] = []
            let needs = SinkNeeds.events
            func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) {
                payloads.append(Array(payload))
                hooks.append(event.metadata.hook)
            }
            func consume(_ facts: borrowing PacketFacts) {}
        }
        let attributor = FrameAttributor()
        let sink = PayloadSink()
        let source = NflogSource(subscription: nil)
        let engine = AttributionEngine(processes: attributor)
        let pipeline = PacketPipeline(source: source, engine: engine, sinks: [sink], countsLinkFrames: true)
        func frame(_ etherType: [UInt8], _ payload: [UInt8]) -> (NflogRecord, [UInt8]) {
            var record = NflogRecord()
            record.family = 5  // NFPROTO_NETDEV
            record.hook = 1    // NF_NETDEV_EGRESS
            record.uid = 0
            record.gid = 0
            record.outputInterface = 1
            return (record, [UInt8](repeating: 0xFF, count: 6) + [2, 0, 0, 0, 0, 1] + etherType + payload)
        }
        let batch = NflogPacketEncoder.encodeBatch([
            frame([0x08, 0x00], Self.udpPacket),
            frame([0x08, 0x06], [UInt8](repeating: 0, count: 28)),
            frame([0x81, 0x00, 0x00, 0x07, 0x08, 0x00], Self.udpPacket),
        ])
        batch.withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
        _ = pipeline.endDatagram()
        #expect(sink.payloads == [Self.udpPacket, Self.udpPacket])
        #expect(sink.hooks == [.egress, .egress])
        #expect(attributor.frames.map(\.interface) == [1, 1] && attributor.frames.allSatisfy { $0.uid == 0 })
        let line = SessionCounters(source: source.counters, pipeline: pipeline.counters)
            .summaryLine(durationSeconds: nil, groups: [5])
        #expect(line.contains(" parse_errors=0 emitted=2 "), "\(line)")
        #expect(line.hasSuffix(" link_frames=3 non_ip_frames=1 exe_from_exit_records=0"), "\(line)")
        #expect(pipeline.counters.attributions?[.exact] == 2)
    }

    /// Facts say when a packet repeats the one before — same flow (uid included), classified
    /// cgroup and attribution — so that a counting sink can skip everything else for it; any
    /// change among them, and an attributor without identities, says it does not.
    @Test func factsSayWhenAPacketRepeatsTheOneBefore() {
        final class IdentifyingAttributor: PacketAttributing {
            /// Every flow's answer; a new value is a new answer for all of them.
            var answer: UInt64 = 1
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution {
                OwnerAttribution(confidence: .uid)
            }
            func update(_ current: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey, packet: PacketSummary,
                        direction: Direction, uid: UInt32?, cgroupPath: String?, now: UInt64) -> AttributionTally {
                if identity != answer {
                    current = OwnerAttribution(confidence: .uid, reason: "answer \(answer)")
                    identity = answer
                }
                return .uid
            }
        }
        final class WithoutIdentities: PacketAttributing {
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution {
                OwnerAttribution(confidence: .uid)
            }
        }
        var otherPorts = Self.udpPacket
        otherPorts[21] = 0x41  // source port 40001
        func run(_ processes: (any PacketAttributing)?, _ batches: [[(NflogRecord, [UInt8])]],
                 between: () -> Void = {}) -> FactsRecorder {
            let recorder = FactsRecorder()
            let source = NflogSource(subscription: nil)
            let pipeline = PacketPipeline(source: source, engine: AttributionEngine(processes: processes), sinks: [recorder])
            for (index, batch) in batches.enumerated() {
                if index > 0 { between() }
                NflogPacketEncoder.encodeBatch(batch).withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
                _ = pipeline.endDatagram()
            }
            return recorder
        }
        let first: [(NflogRecord, [UInt8])] = [
            (Self.classifiedRecord(1000, cgroup: 5), Self.udpPacket),
            (Self.classifiedRecord(1000, cgroup: 5), Self.udpPacket),
            (Self.classifiedRecord(1001, cgroup: 5), Self.udpPacket),  // another uid: another flow
            (Self.classifiedRecord(1001, cgroup: 5), Self.udpPacket),
            (Self.classifiedRecord(1001, cgroup: 6), Self.udpPacket),  // another classification
            (Self.classifiedRecord(1001, cgroup: 6), otherPorts),      // another flow
            (Self.classifiedRecord(1001, cgroup: 6), otherPorts),
        ]
        let second: [(NflogRecord, [UInt8])] = [(Self.classifiedRecord(1001, cgroup: 6), otherPorts), (Self.classifiedRecord(1001, cgroup: 6), otherPorts)]
        let identifying = IdentifyingAttributor()
        let recorded = run(identifying, [first, second]) { identifying.answer += 1 }
        #expect(recorded.repeats == [false, true, false, true, false, false, true, false, true],
                "the second batch starts with a new answer for the same flow")
        #expect(recorded.uids == [1000, 1000, 1001, 1001, 1001, 1001, 1001, 1001, 1001])
        // Without owner resolution the attribution is always nil: the flow and cgroup decide.
        #expect(run(nil, [first]).repeats == [false, true, false, true, false, false, true])
        #expect(run(WithoutIdentities(), [first]).repeats == Array(repeating: false, count: 7))
    }

    /// Counting only (`--format none`): a packet of the same flow and classification as the one
    /// before, in the same datagram, is counted with the answer the flow cache gave that one,
    /// without asking again; a flow just resolved, another flow, another classification and
    /// the next datagram ask again. The counts are what asking every time would give.
    @Test func countingAsksTheCacheOncePerRunOfAFlowInADatagram() {
        final class CachingAttributor: PacketAttributing {
            var cache: [FlowKey: AttributionTally] = [:]
            var lookups = 0
            var resolved = 0
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution {
                OwnerAttribution(confidence: .uid)
            }
            func cachedTally(_ key: FlowKey, now: UInt64) -> AttributionTally? {
                lookups += 1
                return cache[key]
            }
            func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                         now: UInt64) -> AttributionTally {
                resolved += 1
                cache[FlowKey(packet: packet, direction: direction, uid: uid)] = .uid
                return .uid
            }
        }
        let flowA = (Self.classifiedRecord(1000, cgroup: 5), Self.udpPacket)
        let flowB = (Self.classifiedRecord(1001, cgroup: 5), Self.udpPacket)  // another uid: another flow
        let flowAElsewhere = (Self.classifiedRecord(1000, cgroup: 6), Self.udpPacket)  // the same flow, another classification
        let attributor = CachingAttributor()
        let source = NflogSource(subscription: nil)
        let pipeline = PacketPipeline(source: source, engine: AttributionEngine(processes: attributor),
                                      sinks: [CollectingSink(needs: .counters)])
        func process(_ batch: [(NflogRecord, [UInt8])]) {
            NflogPacketEncoder.encodeBatch(batch).withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
            _ = pipeline.endDatagram()
        }
        // A: miss, resolved; A: cached; A: stands in; B: miss, resolved; B: cached; A: asked
        // (B came between); A in cgroup 6: asked; A in cgroup 6: stands in.
        process([flowA, flowA, flowA, flowB, flowB, flowA, flowAElsewhere, flowAElsewhere])
        #expect(attributor.resolved == 2)
        #expect(attributor.lookups == 6)
        #expect(pipeline.counters.attributions?[.uid] == 8)
        // The next datagram asks again, and so sees the cache's new answer.
        for key in attributor.cache.keys { attributor.cache[key] = .exact }
        process([flowA, flowA, flowA])
        #expect(attributor.resolved == 2)
        #expect(attributor.lookups == 7)
        #expect(pipeline.counters.attributions?[.exact] == 3)
        #expect(pipeline.counters.attributions?[.uid] == 8)
    }

    /// The facts path (`run`): a packet of the same flow and classification as the one before,
    /// in the same datagram, keeps the cached answer the facts already hold, without asking
    /// again; the facts and their `repeatsPrevious` are what asking every time would give.
    @Test func factsOfARunOfOneFlowInADatagramAskTheCacheOnce() {
        let flowA = (Self.classifiedRecord(1000, cgroup: 5), Self.udpPacket)
        let flowB = (Self.classifiedRecord(1001, cgroup: 5), Self.udpPacket)
        let attributor = CachingIdentityAttributor()
        let recorder = FactsRecorder()
        let source = NflogSource(subscription: nil)
        let pipeline = PacketPipeline(source: source, engine: AttributionEngine(processes: attributor), sinks: [recorder])
        func process(_ batch: [(NflogRecord, [UInt8])]) {
            NflogPacketEncoder.encodeBatch(batch).withUnsafeBytes { source.process(datagram: $0, into: pipeline) }
            _ = pipeline.endDatagram()
        }
        // A: resolved (answer 1); A: cached; A: stands in; B: resolved (answer 2); B: cached;
        // A: asked (B came between), its answer back in the facts.
        process([flowA, flowA, flowA, flowB, flowB, flowA])
        #expect(attributor.resolved == 2)
        #expect(attributor.lookups == 5)
        #expect(recorder.answers == ["answer 1", "answer 1", "answer 1", "answer 2", "answer 2", "answer 1"])
        #expect(recorder.repeats == [false, true, true, false, true, false])
        // The next datagram asks again and sees the cache's new answer for A.
        for (key, answer) in attributor.cache where answer == 1 { attributor.cache[key] = 7 }
        process([flowA, flowA])
        #expect(attributor.lookups == 6)
        #expect(recorder.answers.suffix(2) == ["answer 7", "answer 7"])
        #expect(recorder.repeats.suffix(2) == [false, true])
        #expect(pipeline.counters.attributions?[.uid] == 8)
    }

    /// The events path (JSON, capture): a packet of the same flow, classification and gid as
    /// the one before, in the same datagram, keeps the event's owner (the cached answer, named)
    /// without asking again; another gid (another group name) asks.
    @Test func eventsOfARunOfOneFlowInADatagramAskTheCacheOnce() {
        let attributor = CachingIdentityAttributor()
        let harness = PipelineHarness(processes: attributor)
        var otherGroup = Self.classifiedRecord(1000, cgroup: 5)
        otherGroup.gid = 65534
        let flowA = (Self.classifiedRecord(1000, cgroup: 5), Self.udpPacket)
        let flowB = (Self.classifiedRecord(1001, cgroup: 5), Self.udpPacket)
        // A: resolved (answer 1); A: cached; A: stands in; A of another gid: asked; B: resolved
        // (answer 2); A: asked.
        harness.process(NflogPacketEncoder.encodeBatch([flowA, flowA, flowA, (otherGroup, Self.udpPacket), flowB, flowA]))
        #expect(attributor.resolved == 2)
        #expect(attributor.lookups == 5)
        #expect(harness.events.map { $0.attribution?.reason }
                == ["answer 1", "answer 1", "answer 1", "answer 1", "answer 2", "answer 1"])
        #expect(harness.events.map { $0.owner.gid } == [1000, 1000, 1000, 65534, 1001, 1000])
        #expect(harness.events.map { $0.owner.uid } == [1000, 1000, 1000, 1000, 1001, 1000])
        #expect(harness.counters.pipeline.attributions?[.uid] == 6)
    }

    /// `cgroup_corrections` is the attributor's count, on the line from the start whenever owners
    /// are resolved, and absent when they are not.
    @Test func cgroupCorrectionsComeFromTheAttributor() throws {
        final class CorrectingAttributor: PacketAttributing {
            var cgroupCorrections = 0
            var namedFromExitRecords = 0
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution {
                cgroupCorrections += 1
                namedFromExitRecords = 2
                return OwnerAttribution(confidence: .uid)
            }
        }
        let attributor = CorrectingAttributor()
        let harness = PipelineHarness(sink: CollectingSink(needs: .events), processes: attributor)
        // The keys per confidence (issue 13) come after it, and the programs named from their
        // exit records (also the attributor's count) last.
        #expect(harness.counters.summaryLine(durationSeconds: nil, groups: [5])
            .hasSuffix(" cgroup_corrections=0" + AttributionTallies().summaryKeys + " exe_from_exit_records=0"))
        harness.process(try Self.fixture("batch-5-udp4.bin"))
        let line = harness.counters.summaryLine(durationSeconds: nil, groups: [5])
        #expect(line.contains(" cgroup_corrections=5 confidence_exact=0 confidence_flow=0 confidence_single=0 confidence_program=0 confidence_candidates=0 confidence_uid=5 confidence_none=0 "))
        #expect(line.hasSuffix(" exe_from_exit_records=2"))
        let unresolved = PipelineHarness()
        unresolved.process(try Self.fixture("batch-5-udp4.bin"))
        let unresolvedLine = unresolved.counters.summaryLine(durationSeconds: nil, groups: [5])
        #expect(!unresolvedLine.contains("cgroup_corrections") && !unresolvedLine.contains("exe_from_exit_records"))
    }

    @Test func recordedKernelPacketWithoutOwner() throws {
        let harness = PipelineHarness()
        harness.process(try Self.fixture("icmp-unreachable-kernel.bin"))
        let event = try #require(harness.events.first)
        #expect(event.owner.uid == nil)
        #expect(event.userName == nil)
        #expect(event.packet.icmp?.type == 3)
        #expect(harness.counters.pipeline.withOwner == 0)
    }

    @Test func sequenceGapsAcrossBatchesCountAsLost() {
        let harness = PipelineHarness()
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
            harness.process(batch(sequences))
        }
        #expect(harness.counters.source.received == 6)
        #expect(harness.counters.source.lost == 2)
        #expect(harness.counters.pipeline.emitted == 6)
        #expect(harness.counters.source.batches == 3)
    }

    @Test func unparsablePayloadsAndMalformedMessagesAreCountedNotFatal() {
        let harness = PipelineHarness()
        var record = NflogRecord()
        record.family = 2
        let good = NflogPacketEncoder.encode(record, payload: Self.udpPacket)
        let garbage = NflogPacketEncoder.encode(record, payload: [0x45, 0x00])
        var bytes = good + garbage
        bytes += [0xFF, 0x00, 0x00, 0x00] // a truncated header: malformed tail
        harness.process(bytes)
        #expect(harness.events.count == 1)
        #expect(harness.counters.source.received == 2)
        #expect(harness.counters.source.malformed == 1)
        #expect(harness.counters.pipeline.parseErrors == 1)
        #expect(harness.counters.summaryLine(durationSeconds: nil, groups: [5]).contains(" parse_errors=2 "))
    }

    @Test func eventLimitStopsEmitting() {
        let harness = PipelineHarness(limit: 2)
        var record = NflogRecord()
        record.family = 2
        harness.process(NflogPacketEncoder.encodeBatch(Array(repeating: (record, Self.udpPacket), count: 5)))
        #expect(harness.events.count == 2)
        #expect(harness.pipeline.isFinished)
        #expect(harness.counters.source.received == 5)
    }

    /// The pipeline updates one event in place: owners that change from packet to packet (and
    /// back) must each come out whole, never with the previous packet's names.
    @Test func changingOwnersComeOutRight() {
        let harness = PipelineHarness()
        func record(_ uid: UInt32?, _ gid: UInt32?, output: UInt32?, prefix: String? = nil) -> NflogRecord {
            var record = NflogRecord()
            record.prefix = prefix
            record.family = 2
            record.hook = 3
            record.uid = uid
            record.gid = gid
            record.outputInterface = output
            return record
        }
        harness.process(NflogPacketEncoder.encodeBatch([
            (record(65534, 65534, output: 1, prefix: "nfowner cg=5"), Self.udpPacket),
            (record(1000, 1000, output: 2, prefix: "nfowner"), Self.udpPacket),
            (record(nil, nil, output: nil), Self.udpPacket),
            (record(65534, 1000, output: 1, prefix: "nfowner cg=5"), Self.udpPacket),
        ]))
        let events = harness.events
        #expect(events.map(\.owner.uid) == [65534, 1000, nil, 65534])
        #expect(events.map(\.owner.gid) == [65534, 1000, nil, 1000])
        #expect(events.map(\.userName) == ["nobody", nil, nil, "nobody"])
        #expect(events.map(\.outputInterfaceName) == ["lo", nil, nil, "lo"])
        #expect(events.map { $0.metadata.prefix?.string } == ["nfowner cg=5", "nfowner", nil, "nfowner cg=5"])
        #expect(events.map(\.cgroupID) == [5, nil, nil, 5])
    }

    /// With inbound logging the directions alternate packet by packet; each direction keeps its
    /// own event, and every event comes out with its own packet's owner and interfaces, also
    /// through the JSON encoder's per-direction texts.
    @Test func alternatingDirectionsComeOutRight() {
        let harness = PipelineHarness()
        func record(inbound: Bool, uid: UInt32?) -> NflogRecord {
            var record = NflogRecord()
            record.family = 2
            record.hook = inbound ? 1 : 3
            // Both directions classified into one cgroup: the inbound event must get it too,
            // although the classification did not change from the packet before.
            record.prefix = "nfowner cg=5"
            record.uid = uid
            record.gid = uid
            if inbound { record.inputInterface = 1 } else { record.outputInterface = 1 }
            return record
        }
        let pattern: [(Bool, UInt32?)] = [(false, 65534), (true, nil), (false, 65534), (true, nil), (false, 1000), (true, 1000)]
        harness.process(NflogPacketEncoder.encodeBatch(pattern.map { (record(inbound: $0.0, uid: $0.1), Self.udpPacket) }))
        let events = harness.events
        #expect(events.map(\.metadata.direction) == pattern.map { $0.0 ? .inbound : .outbound })
        #expect(events.map(\.owner.uid) == pattern.map(\.1))
        #expect(events.map(\.userName) == ["nobody", nil, "nobody", nil, nil, nil])
        #expect(events.map(\.inputInterfaceName) == [nil, "lo", nil, "lo", nil, "lo"])
        #expect(events.map(\.outputInterfaceName) == ["lo", nil, "lo", nil, "lo", nil])
        #expect(events.map(\.cgroupID) == Array(repeating: 5, count: 6))
        var encoder = JSONLines.Encoder()
        var buffer = ByteBuffer(capacity: 4096)
        for event in events { encoder.append(event.event, to: &buffer) }
        var text = ""
        buffer.withBytes { text = String(decoding: $0, as: UTF8.self) }
        let lines = text.split(separator: "\n")
        #expect(lines.count == 6)
        for (line, (inbound, uid)) in zip(lines, pattern) {
            #expect(line.contains(inbound ? #""dir":"in""# : #""dir":"out""#), "\(line)")
            #expect(line.contains(#""uid":\#(uid.map(String.init) ?? "null"),"#), "\(line)")
            #expect(line.contains(inbound ? #""iface_in":"lo","iface_out":null"# : #""iface_in":null,"iface_out":"lo""#), "\(line)")
        }
    }

    /// A queue source asks `decide` (hold mode): the pipeline resolves the packet's owner with
    /// the uid the queue attached, accepts it, and does not count it as an event — the NFLOG
    /// rule logs it right after, and that copy is the event.
    @Test func heldPacketsAreResolvedAndAcceptedButAreNotEvents() {
        final class CountingAttributor: PacketAttributing {
            var resolvedUIDs: [UInt32?] = []
            func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                           now: UInt64) -> OwnerAttribution { OwnerAttribution(confidence: .uid) }
            func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                         now: UInt64) -> AttributionTally {
                resolvedUIDs.append(uid)
                return .uid
            }
        }
        let counting = CountingAttributor()
        let harness = PipelineHarness(processes: counting)
        var record = NflogRecord()
        record.family = 2
        record.hook = 3
        let batch = NflogPacketEncoder.encodeBatch([(record, Self.udpPacket)])
        var verdicts: [PacketVerdict] = []
        batch.withUnsafeBytes { bytes in
            NflogBatchDecoder.forEachPacket(in: bytes, packet: { view in
                verdicts.append(harness.pipeline.decide(UnsafeSourcePacket(
                    origin: PacketOrigin(kind: .nfqueue, number: 7), payload: view.payload, family: view.family,
                    hookNumber: view.hook, uid: 1000, gid: 1000, label: UnsafeRawBufferPointer(start: nil, count: 0),
                    message: view.message)))
            }, other: { _ in })
        }
        #expect(verdicts == [.accept])
        #expect(counting.resolvedUIDs == [1000])
        #expect(harness.pipeline.counters.emitted == 0)
        #expect(harness.events.isEmpty)
    }

    @Test func errorRepliesAreReported() {
        let harness = PipelineHarness()
        let request = NflogConfigRequest.encode(group: 5, sequence: 9, .command(.bind))
        harness.process(NetlinkMessageEncoder.error(errno: 1, answering: request))
        let replies = harness.source.errorReplies
        #expect(replies.count == 1)
        #expect(replies.first?.errno == 1)
        #expect(replies.first?.sequence == 9)
    }

    @Test func summaryLineHasTheContractKeys() {
        var counters = SessionCounters()
        counters.source.received = 3
        let line = counters.summaryLine(durationSeconds: 1.23456, groups: [5, 6])
        #expect(line.hasPrefix("received=3 lost=0 enobufs=0 parse_errors=0 "))
        #expect(line.contains(" groups=5,6 "))
        #expect(line.contains(" duration_s=1.235"))
        #expect(line.hasSuffix(" wakeups=0"))
        counters.follower = FollowerCounters(added: 2)
        let traced = counters.summaryLine(durationSeconds: nil, groups: [30001])
        #expect(!traced.contains("duration_s"))
        #expect(traced.hasSuffix(" wakeups=0 cgroups_added=2 cgroups_removed=0 cgroup_update_failures=0"))
        // With owner resolution: cgroup_corrections after every other key, the command's own too.
        counters.pipeline.cgroupCorrections = 4
        let resolved = counters.summaryLine(durationSeconds: nil, groups: [30001], suffix: " exit_status=0")
        #expect(resolved.hasSuffix(" cgroup_update_failures=0 exit_status=0 cgroup_corrections=4"))
        #expect(resolved.hasPrefix(traced))
    }

    /// IPv4 UDP 127.0.0.1:40000 → 127.0.0.1:9999 with 4 payload bytes.
    /// An outbound IPv4 NFLOG record of `uid` (and the same gid), classified in cgroup `cgroup`.
    static func classifiedRecord(_ uid: UInt32, cgroup: Int) -> NflogRecord {
        var record = NflogRecord()
        record.prefix = "nfowner cg=\(cgroup)"
        record.family = 2
        record.hook = 3
        record.uid = uid
        record.gid = uid
        return record
    }

    static let udpPacket: [UInt8] = [
        0x45, 0x00, 0x00, 0x20, 0x00, 0x01, 0x40, 0x00, 0x40, 0x11, 0x00, 0x00,
        0x7F, 0x00, 0x00, 0x01, 0x7F, 0x00, 0x00, 0x01,
        0x9C, 0x40, 0x27, 0x0F, 0x00, 0x0C, 0x00, 0x00,
        0x01, 0x02, 0x03, 0x04,
    ]
}
