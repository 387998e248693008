import Attribution
import NetfilterSystem
import PacketModel
import PacketParsing
import PacketSources
import Sinks
import Synchronization

/// The stages after the source, for every packet: parse (decode), classify and attribute
/// (`AttributionEngine`), count, and fan out to the sinks — building for them only what the
/// most demanding one needs (nothing, `PacketFacts`, or whole `PacketEvent`s).
///
/// Runs on the receive thread. No I/O of its own except name lookups (cached) and the sinks'
/// writes at the end of each datagram, so tests feed it recorded or built batches.
public final class PacketPipeline: PacketConsumer, @unchecked Sendable {
    // Every stored var is touched per packet by the receive thread alone: no runtime
    // exclusivity checks (they cost more than the work they guard).
    @exclusivity(unchecked) public private(set) var counters = PipelineCounters()
    private let source: any PacketSource
    private let engine: AttributionEngine
    private let sinks: [any PacketSink]
    /// The sinks by what they read, split once so the per-packet loop asks nothing.
    private let eventSinks: SinkFanOut
    private let factSinks: SinkFanOut
    private let needs: SinkNeeds
    /// Stop handing out packets after this many (nil: no limit).
    public let eventLimit: UInt64?
    private let clock: () -> EventTime
    /// One receive time per datagram: NFLOG has no timestamp at output, and every message in a
    /// batch was queued within the flush timeout of the first.
    /// The event handed to the sinks, updated in place packet after packet: an owner that does
    /// not change is not copied, retained or released again.
    /// One per direction: with inbound logging a connection's packets alternate out and in, and
    /// each direction keeps its owner (an inbound packet often has no uid) and interfaces.
    @exclusivity(unchecked) private var event = PacketPipeline.emptyEvent()
    @exclusivity(unchecked) private var inboundEvent = PacketPipeline.emptyEvent()
    @exclusivity(unchecked) private var receiveTime: EventTime?
    @exclusivity(unchecked) private var monotonicTime: UInt64?
    /// Set from another thread (SIGHUP) to drop cached names before the next datagram.
    private let namesStale = Atomic<Bool>(false)
    /// A copy of the counters for other threads (a metrics endpoint), updated per datagram.
    private let published = Mutex(SessionCounters())

    /// `countsLinkFrames`: the run logs packet sockets' frames, so the summary counts them (also
    /// when none came).
    public init(source: any PacketSource, engine: AttributionEngine, sinks: [any PacketSink],
                eventLimit: UInt64? = nil, countsLinkFrames: Bool = false,
                clock: @escaping () -> EventTime = PacketPipeline.wallClock) {
        self.source = source
        self.engine = engine
        self.sinks = sinks
        self.needs = sinks.map(\.needs).max() ?? .counters
        eventSinks = SinkFanOut(sinks.filter { $0.needs == .events })
        factSinks = SinkFanOut(sinks.filter { $0.needs == .facts })
        self.eventLimit = eventLimit
        self.clock = clock
        // The summary line has `cgroup_corrections` whenever owners are resolved, from the start;
        // so do the packets per confidence.
        if engine.processes != nil {
            counters.cgroupCorrections = 0
            counters.attributions = AttributionTallies()
            counters.namedFromExitRecords = 0
        }
        if countsLinkFrames {
            counters.linkFrames = 0
            counters.nonIPFrames = 0
        }
    }

    public static func wallClock() -> EventTime {
        let now = WallClock.now()
        return EventTime(seconds: now.seconds, microseconds: now.microseconds)
    }

    public var isFinished: Bool {
        guard let eventLimit else { return false }
        return counters.emitted >= eventLimit
    }

    /// The counters as of the last datagram, from any thread.
    public var snapshot: SessionCounters { published.withLock { $0 } }

    /// Asks for cached user, group and interface names to be looked up again (any thread).
    public func forgetNames() { namesStale.store(true, ordering: .releasing) }

    public func consume(_ source: UnsafeSourcePacket) {
        let uid = source.uid
        if uid != nil { counters.withOwner += 1 }
        let packet: PacketSummary
        do {
            // The source's family (NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10) must agree with the header.
            switch source.family {
            case 2: packet = try PacketParser.parse(source.payload, family: .ipv4)
            case 10: packet = try PacketParser.parse(source.payload, family: .ipv6)
            case 5:
                // NFPROTO_NETDEV: a frame a packet socket sent, link-layer header first.
                lastCachedCount = nil
                consumeFrame(source)
                return
            default: packet = try PacketParser.parse(source.payload)
            }
        } catch {
            counters.parseErrors += 1
            return
        }
        counters.bytes += UInt64(max(0, packet.totalLength))
        guard !isFinished else { return }
        counters.emitted += 1
        // The ruleset logs a classified packet with the prefix "nfowner cg=<id>".
        let cgroupID = ClassificationPrefix.cgroupID(fromPrefixBytes: source.label)
        let direction = source.direction
        // An ICMP error arriving for a packet this host sent goes to that packet's socket: its
        // owner is found from the quoted packet, not from the error's own addresses.
        if uid == nil, direction == .inbound, packet.isICMPError, engine.processes != nil,
           let quoted = PacketParser.icmpErrorQuote(of: source.payload) {
            lastCachedCount = nil
            let attribution = engine.icmpErrorAttribution(quoting: quoted, now: batchMonotonicTime())
            handOut(packet, direction: direction, uid: uid, gid: source.gid, cgroupID: cgroupID,
                    attribution: attribution, source: source, payload: source.payload)
            return
        }
        switch needs {
        case .counters:
            countOwner(of: packet, direction: direction, uid: uid, cgroupID: cgroupID)
        case .facts:
            consumeFacts(packet, direction: direction, uid: uid, gid: source.gid, cgroupID: cgroupID)
        case .events:
            emitEvent(source, packet: packet, direction: direction, cgroupID: cgroupID)
        }
    }

    /// The counters path of `consume`: owners are resolved all the same (`--format none`
    /// measures the whole pipeline but formatting and printing), only not handed out.
    @inline(__always)
    private func countOwner(of packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupID: UInt64?) {
        guard engine.processes != nil else { return }
        let flow = FlowKey(packet: packet, direction: direction, uid: uid)
        if let last = lastCachedCount, last.standsIn(for: flow, cgroupID: cgroupID) {
            counters.attributions?.add(last.tally)
            return
        }
        guard let (tally, cached) = engine.resolve(packet, key: flow, direction: direction, uid: uid,
                                                   cgroupID: cgroupID, now: batchMonotonicTime())
        else { return }
        counters.attributions?.add(tally)
        lastCachedCount = cached ? CachedCount(flow: flow, cgroupID: cgroupID, gid: nil, tally: tally) : nil
    }

    /// The flow cache's answer for the packet counted before, which stands for the next
    /// packet of the same flow and classification in the same datagram: nothing touched the
    /// cache in between, and the datagram's clock, the one the cache ages entries by, has not
    /// moved, so asking again would give the same answer (the 8-log-rule load, a bulk flow's
    /// run of packets in one batch). Only a cached answer stands in: a flow just resolved is
    /// looked up again, as the engine would. The counters, facts and events paths use it (the
    /// facts, or the event's owner, then still hold that answer, named; a user or cgroup name
    /// not known yet is looked for again from the next datagram on, not at every packet).
    /// Cleared at the end of every datagram and by every other path that may resolve a flow
    /// (and so evict one).
    private struct CachedCount {
        var flow: FlowKey
        var cgroupID: UInt64?
        /// Not in the flow key, but in an event's owner (its group name).
        var gid: UInt32?
        var tally: AttributionTally

        /// Whether this answer stands for a packet of `flow` classified as `cgroupID`.
        @inline(__always)
        func standsIn(for flow: FlowKey, cgroupID: UInt64?) -> Bool {
            cgroupID == self.cgroupID && flow.isSame(as: self.flow)
        }
    }
    @exclusivity(unchecked) private var lastCachedCount: CachedCount?

    /// The facts path of `consume`. Out of line: inlined, its registers and stack slots made the
    /// other paths' code worse (+32 instructions per packet for `--format none`, callgrind).
    @inline(never)
    private func consumeFacts(_ packet: PacketSummary, direction: Direction, uid: UInt32?, gid: UInt32?,
                              cgroupID: UInt64?) {
        // One PacketFacts for the run, updated in place: the attribution is replaced only when
        // the flow's answer changes (by identity), so a packet copies no strings.
        let flow = FlowKey(packet: packet, direction: direction, uid: uid)
        let identityBefore = factsIdentity
        // The packet before, whose facts these are, was of this flow and classification.
        var sameAsBefore = false
        if let last = lastCachedCount, last.standsIn(for: flow, cgroupID: cgroupID) {
            // The attribution held is this flow's cached answer (see `CachedCount`).
            counters.attributions?.add(last.tally)
            sameAsBefore = true
        } else if let (tally, cached) = engine.updateAttribution(
            &facts.attribution, identity: &factsIdentity, key: flow, packet: packet, direction: direction, uid: uid,
            cgroupID: cgroupID, now: batchMonotonicTime()) {
            counters.attributions?.add(tally)
            lastCachedCount = cached ? CachedCount(flow: flow, cgroupID: cgroupID, gid: gid, tally: tally) : nil
        } else {
            lastCachedCount = nil
        }
        // The uid is part of the flow. An identity of .max says nothing (an attributor without
        // identities); without owner resolution the attribution is always nil.
        facts.repeatsPrevious = factsRepeatable
            && (sameAsBefore || flow.isSame(as: facts.flow) && cgroupID == facts.cgroupID && factsIdentity == identityBefore)
            && (factsIdentity != .max || engine.processes == nil)
        factsRepeatable = true
        facts.flow = flow
        facts.packet = packet
        facts.direction = direction
        facts.uid = uid
        facts.gid = gid
        facts.cgroupID = cgroupID
        factSinks.consume(facts)
    }

    /// A held packet (hold mode): its owner is resolved now, while the sender still waits for
    /// an answer, and cached for the flow; then it is accepted. It is not an event here: it
    /// goes on to nfowner's NFLOG rule, which logs it at once, and that copy finds its owner in
    /// the cache. A packet that does not parse is accepted all the same (hold mode never blocks).
    public func decide(_ source: UnsafeSourcePacket) -> PacketVerdict {
        // The IP version nibble says the family: the verdict is accept whatever the source says.
        guard let packet = try? PacketParser.parse(source.payload) else { return .accept }
        lastCachedCount = nil
        engine.resolve(packet, direction: source.direction, uid: source.uid, cgroupID: nil,
                       now: WallClock.monotonicNanoseconds())
        return .accept
    }

    /// A frame a packet socket sent (see `PacketSocketTable`): its link-layer header taken off
    /// by the device's type, its IP packet parsed, and its owner found among the packet sockets
    /// of its uid (never through the flow cache). A frame without an IP packet is counted, not
    /// a parse error. Rare next to IP packets: the metadata is read for every frame.
    private func consumeFrame(_ source: UnsafeSourcePacket) {
        counters.linkFrames = (counters.linkFrames ?? 0) + 1
        var metadata = PacketMetadata()
        self.source.readMetadata(of: source, receivedAt: batchReceiveTime(), into: &metadata)
        let interface = metadata.outputInterface ?? metadata.inputInterface
        guard let header = interface.flatMap(engine.linkHeader(ofInterface:)),
              case .ip(let bytes) = LinkLayer.payload(of: source.payload, header: header)
        else {
            counters.nonIPFrames = (counters.nonIPFrames ?? 0) + 1
            return
        }
        let packet: PacketSummary
        do { packet = try PacketParser.parse(bytes) } catch {
            counters.parseErrors += 1
            return
        }
        counters.bytes += UInt64(max(0, packet.totalLength))
        guard !isFinished else { return }
        counters.emitted += 1
        let attribution = engine.frameAttribution(packet, uid: source.uid, interface: interface, now: batchMonotonicTime())
        handOut(packet, direction: source.direction, uid: source.uid, gid: source.gid, cgroupID: nil,
                attribution: attribution, source: source, payload: bytes)
    }

    /// Counts and hands out a packet whose attribution was found another way than the flow's
    /// (a packet socket's frame, an ICMP error): the facts or event replace the kept ones.
    private func handOut(_ packet: PacketSummary, direction: Direction, uid: UInt32?, gid: UInt32?, cgroupID: UInt64?,
                         attribution: OwnerAttribution?, source: UnsafeSourcePacket, payload: UnsafeRawBufferPointer) {
        if let attribution { counters.attributions?.add(attribution.tally) }
        switch needs {
        case .counters:
            break
        case .facts:
            facts = PacketFacts(packet: packet, direction: direction, uid: uid, gid: gid,
                                cgroupID: cgroupID, attribution: attribution)
            factsIdentity = .max
            // Found another way than its flow's: the next packet of the flow is not a repeat.
            factsRepeatable = false
            factSinks.consume(facts)
        case .events where direction == .inbound:
            engine.update(&inboundEvent.owner, attribution: attribution, direction: direction, uid: uid, gid: gid,
                          cgroupID: cgroupID)
            deliverEvent(&inboundEvent, source, packet: packet, direction: direction, cgroupID: cgroupID, payload: payload)
        case .events:
            engine.update(&event.owner, attribution: attribution, direction: direction, uid: uid, gid: gid,
                          cgroupID: cgroupID)
            deliverEvent(&event, source, packet: packet, direction: direction, cgroupID: cgroupID, payload: payload)
        }
    }

    private func emitEvent(_ source: UnsafeSourcePacket, packet: PacketSummary, direction: Direction,
                           cgroupID: UInt64?) {
        if direction == .inbound {
            emitEvent(into: &inboundEvent, source, packet: packet, direction: direction, cgroupID: cgroupID)
        } else {
            emitEvent(into: &event, source, packet: packet, direction: direction, cgroupID: cgroupID)
        }
    }

    @inline(__always)
    private func emitEvent(into event: inout PacketEvent, _ source: UnsafeSourcePacket, packet: PacketSummary,
                           direction: Direction, cgroupID: UInt64?) {
        let flow = FlowKey(packet: packet, direction: direction, uid: source.uid)
        if let last = lastCachedCount, source.gid == last.gid, last.standsIn(for: flow, cgroupID: cgroupID) {
            // The event's owner is this flow's cached answer, named (see `CachedCount`).
            counters.attributions?.add(last.tally)
        } else if let (tally, cached) = engine.update(&event.owner, key: flow, packet: packet, direction: direction,
                                                      uid: source.uid, gid: source.gid, cgroupID: cgroupID,
                                                      now: batchMonotonicTime()) {
            counters.attributions?.add(tally)
            lastCachedCount = cached ? CachedCount(flow: flow, cgroupID: cgroupID, gid: source.gid, tally: tally) : nil
        } else {
            lastCachedCount = nil
        }
        deliverEvent(&event, source, packet: packet, direction: direction, cgroupID: cgroupID, payload: source.payload)
    }

    /// Hands `event` (its owner up to date) to the sinks; `payload`: the IP packet's bytes.
    @inline(__always)
    private func deliverEvent(_ event: inout PacketEvent, _ source: UnsafeSourcePacket, packet: PacketSummary,
                              direction: Direction, cgroupID: UInt64?, payload: UnsafeRawBufferPointer) {
        if !factSinks.isEmpty {
            let facts = PacketFacts(packet: packet, direction: direction, uid: source.uid, gid: source.gid,
                                    cgroupID: cgroupID, attribution: event.owner.attribution)
            factSinks.consume(facts)
        }
        // Only a packet that becomes an event needs its metadata as a value.
        self.source.readMetadata(of: source, receivedAt: batchReceiveTime(), into: &event.metadata)
        event.packet = packet
        let input = event.metadata.inputInterface.flatMap(engine.interfaceName(of:))
        if event.inputInterfaceName != input { event.inputInterfaceName = input }
        let output = event.metadata.outputInterface.flatMap(engine.interfaceName(of:))
        if event.outputInterfaceName != output { event.outputInterfaceName = output }
        eventSinks.consume(event, payload: payload)
    }

    /// The facts of the packet being handed to sinks (the facts path), and the identity of the
    /// attribution in it (see `PacketAttributing.update`).
    @exclusivity(unchecked) private var facts = PacketFacts(packet: PacketPipeline.emptyPacket, direction: .outbound,
                                                            uid: nil, gid: nil, cgroupID: nil, attribution: nil)
    @exclusivity(unchecked) private var factsIdentity = UInt64.max
    /// Whether the facts held came from the flow path (see `PacketFacts.repeatsPrevious`).
    @exclusivity(unchecked) private var factsRepeatable = false

    private static func forgetNames(in event: inout PacketEvent) {
        event.owner = PacketOwner()
        event.inputInterfaceName = nil
        event.outputInterfaceName = nil
    }

    /// An event with nothing in it yet.
    private static func emptyEvent() -> PacketEvent {
        PacketEvent(metadata: PacketMetadata(), packet: emptyPacket)
    }

    private static let emptyPacket = PacketSummary(family: .ipv4, source: .v4(0), destination: .v4(0), protocolNumber: 0,
                                                   totalLength: 0, fragment: nil, transport: .notFirstFragment)

    public func beginDatagram(busySince: UInt64, sentAfter: UInt64?) {
        engine.datagramRead(busySince: busySince, sentAfter: sentAfter)
    }

    public func endDatagram() -> ReceiveLoop.Ending? {
        lastCachedCount = nil
        receiveTime = nil
        monotonicTime = nil
        if namesStale.exchange(false, ordering: .acquiring) {
            engine.forgetNames()
            factsRepeatable = false
            Self.forgetNames(in: &event)
            Self.forgetNames(in: &inboundEvent)
        }
        // Once per datagram, not per packet: the corrections are counted when flows are resolved.
        if let processes = engine.processes {
            counters.cgroupCorrections = processes.cgroupCorrections
            counters.namedFromExitRecords = processes.namedFromExitRecords
        }
        let snapshot = SessionCounters(source: source.counters, pipeline: counters)
        published.withLock { $0 = snapshot }
        for sink in sinks {
            do throws(SinkError) { try sink.flush() } catch {
                return error.code == .outputClosed ? .outputClosed : .failed(error.reason)
            }
        }
        return nil
    }

    private func batchReceiveTime() -> EventTime {
        if let receiveTime { return receiveTime }
        let now = clock()
        receiveTime = now
        return now
    }

    /// The monotonic receive time of the datagram being processed, read once per datagram.
    private func batchMonotonicTime() -> UInt64 {
        if let monotonicTime { return monotonicTime }
        let now = WallClock.monotonicNanoseconds()
        monotonicTime = now
        return now
    }
}
