// Micro-benchmarks of the per-packet hot paths, with malloc counts.
//
// Every benchmark runs 1,000 operations per measured iteration (scalingFactor .kilo), so a
// raw malloc count of 0 per iteration proves 0 per operation, and any per-packet allocation
// shows up as ≥ 1,000. An "operation" is one call of the code named in the benchmark's name:
// one packet for the parsers and encoders, one whole batch for the batch benchmarks (their
// names give the number of packets, to divide by).

import Benchmark
import Export
import PacketModel
import PacketSources
import Session
import Sinks
import NetlinkWire
import PacketParsing
import Attribution
import Rules

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .cpuTotal, .throughput, .mallocCountTotal],
        scalingFactor: .kilo,
        maxDuration: .seconds(1),
        maxIterations: 1_000)

    // MARK: NetlinkWire

    let recorded = Inputs.recordedBatch5
    Benchmark("NetlinkWire: NflogBatchDecoder.forEachItem, recorded 5-packet batch") { benchmark in
        recorded.withUnsafeBytes { batch in
            for _ in benchmark.scaledIterations {
                var packets = 0
                NflogBatchDecoder.forEachItem(in: batch) { item in
                    if case .packet(let record, let payload) = item {
                        packets += 1
                        blackHole(record)
                        blackHole(payload.count)
                    }
                }
                blackHole(packets)
            }
        }
    }

    // The same with a 16-byte prefix: one more byte than Swift's inline small string holds.
    let longPrefix5 = Inputs.nflogBatch(count: 5, prefix: "nfowner cg=49102")
    Benchmark("NetlinkWire: NflogBatchDecoder.forEachItem, 5-packet batch, prefix 'nfowner cg=49102'") { benchmark in
        longPrefix5.withUnsafeBytes { batch in
            for _ in benchmark.scaledIterations {
                NflogBatchDecoder.forEachItem(in: batch) { item in
                    if case .packet(let record, _) = item { blackHole(record) }
                }
            }
        }
    }

    // MARK: PacketParsing

    for (name, packet, family) in [
        ("IPv4 UDP", Inputs.ipv4UDP, IPFamily.ipv4),
        ("IPv4 TCP", Inputs.ipv4TCP, .ipv4),
        ("IPv6 + 2 extension headers + UDP", Inputs.ipv6TwoExtensionHeaders, .ipv6),
    ] {
        Benchmark("PacketParsing: PacketParser.parse, \(name)") { benchmark in
            packet.withUnsafeBytes { bytes in
                for _ in benchmark.scaledIterations {
                    blackHole(try? PacketParser.parse(bytes, family: family))
                }
            }
        }
    }

    // MARK: Export

    // The time and sequence number change from event to event, as they do in a run; the owner,
    // flow, prefix and interfaces repeat (one flow's packets).
    Benchmark("Export: JSONLines.Encoder.append, full event, reused buffer") { benchmark in
        var event = Inputs.fullEvent()
        var buffer = ByteBuffer(capacity: 1 << 16)
        var encoder = JSONLines.Encoder()
        benchmark.startMeasurement()
        for iteration in benchmark.scaledIterations {
            event.metadata.sequence = UInt32(truncatingIfNeeded: iteration)
            event.metadata.time.microseconds = UInt64(iteration % 1_000_000)
            buffer.removeAll()
            encoder.append(event, to: &buffer)
            blackHole(buffer.count)
        }
    }

    Benchmark("Export: TextLines.append, full event, reused buffer") { benchmark in
        let event = Inputs.fullEvent()
        var buffer: [UInt8] = []
        buffer.reserveCapacity(4096)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            buffer.removeAll(keepingCapacity: true)
            TextLines.append(event, to: &buffer)
            blackHole(buffer.count)
        }
    }

    // MARK: Session

    // The real per-packet pipeline without I/O: the NFLOG source decodes, the pipeline parses,
    // counts, classifies by prefix, names the owner (cached; the lookups are injected closures)
    // and builds the event for a sink that keeps nothing. No cgroup tree and no attributor. The
    // pipeline is warmed up with one batch so the name caches are full.
    let batchSize = 64
    for (label, prefix, buildsEvents) in [
        ("prefix 'nfowner'", "nfowner", true),
        ("prefix 'nfowner cg=49102'", "nfowner cg=49102", true),
        ("prefix 'nfowner cg=49102', no events (--format none)", "nfowner cg=49102", false),
    ] {
        let batch = Inputs.nflogBatch(count: batchSize, prefix: prefix)
        Benchmark("Session: NflogSource + PacketPipeline, \(batchSize)-packet batch, \(label)") { benchmark in
            let source = NflogSource(subscription: nil)
            let engine = AttributionEngine(
                names: OwnerNames(lookUpUser: { _ in "nobody" }, lookUpGroup: { _ in "nogroup" }),
                interfaces: InterfaceNames(lookUp: { _ in "lo" }))
            let pipeline = PacketPipeline(source: source, engine: engine,
                                          sinks: [DiscardingSink(needs: buildsEvents ? .events : .counters)],
                                          clock: { EventTime(seconds: 1_795_000_000, microseconds: 0) })
            batch.withUnsafeBytes { bytes in
                source.process(datagram: bytes, into: pipeline)
                benchmark.startMeasurement()
                for _ in benchmark.scaledIterations {
                    source.process(datagram: bytes, into: pipeline)
                    blackHole(pipeline.endDatagram())
                }
            }
            blackHole(pipeline.counters)
        }
    }

    // MARK: flow cache (FlowCacheBenchmarks.swift)

    flowCacheBenchmarks()

    // MARK: classification prefix and owner names

    for prefix in ["nfowner cg=49102", "nfowner"] {
        Benchmark("PacketModel: ClassificationPrefix.cgroupID(fromPrefix:), '\(prefix)'") { benchmark in
            for _ in benchmark.scaledIterations {
                blackHole(ClassificationPrefix.cgroupID(fromPrefix: identity(prefix)))
            }
        }
    }

    Benchmark("Attribution: OwnerNames.userName + groupName, cached") { benchmark in
        var owners = OwnerNames(lookUpUser: { _ in "nobody" }, lookUpGroup: { _ in "nogroup" })
        blackHole(owners.userName(of: 65534))
        blackHole(owners.groupName(of: 65534))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(owners.userName(of: 65534))
            blackHole(owners.groupName(of: 65534))
        }
    }
}

/// Takes events and keeps nothing (what the event path costs without an encoder).
final class DiscardingSink: PacketSink {
    let needs: SinkNeeds
    init(needs: SinkNeeds) { self.needs = needs }
    func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) { blackHole(event.owner.uid) }
}
