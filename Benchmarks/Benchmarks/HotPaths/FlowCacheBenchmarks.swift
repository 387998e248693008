// The owner-resolution flow cache (issue 5: RSS ≤ 64 MiB at 1M tracked flows; the cost per new
// flow must be measurable). Registered from HotPaths.swift.

import Benchmark
import PacketModel
import Attribution
import PacketParsing

/// Distinct flows for distinct `index` (up to 2^32): 10.x.y.z:port → 127.0.0.1:443, uid 1000.
private func flowKey(_ index: Int) -> FlowKey {
    FlowKey(source: .v4(0x0A00_0000 | UInt32(truncatingIfNeeded: index >> 16)), destination: .v4(0x7F00_0001),
            protocolNumber: 6, sourcePort: UInt16(truncatingIfNeeded: index), destinationPort: 443,
            inbound: false, uid: 1000)
}

/// The same flows as packets, for the attributor.
private func packet(_ index: Int) -> PacketSummary {
    PacketSummary(family: .ipv4, source: .v4(0x0A00_0000 | UInt32(truncatingIfNeeded: index >> 16)),
                  destination: .v4(0x7F00_0001), protocolNumber: 6, totalLength: 52, fragment: nil,
                  transport: .tcp(TCPInfo(ports: PortPair(source: UInt16(truncatingIfNeeded: index), destination: 443),
                                          flags: [.ack])))
}

private let attributions = [
    OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 4242, comm: "curl", exe: "/usr/bin/curl")]),
    OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 77, comm: "sshd", exe: "/usr/sbin/sshd")]),
    OwnerAttribution(confidence: .none, reason: "no socket: kernel-generated"),
]

private let flowCount = 1_000_000
private let now: UInt64 = 10_000_000_000
/// An hour: nothing expires while measuring.
private let hour: UInt64 = 3_600_000_000_000

// Filled on first use (globals are lazy), not at registration: only the benchmarks that need
// them pay the million inserts, once per process.
nonisolated(unsafe) private let filledCache: FlowCache = {
    let cache = FlowCache(lifetime: hour)
    for index in 0..<flowCount { cache.insert(flowKey(index), attributions[index % 3], now: now) }
    return cache
}()

nonisolated(unsafe) private let filledAttributor: OwnerAttributor = {
    let attributor = OwnerAttributor(table: ProcessTable(), sockets: nil, flushTimeoutHundredths: 10, flowLifetime: hour)
    for index in 0..<flowCount {
        _ = attributor.attribute(packet: packet(index), direction: .outbound, uid: 1000, cgroupPath: nil, now: now)
    }
    return attributor
}()

func flowCacheBenchmarks() {
    // One operation: one insert of a new flow. Each iteration fills a fresh cache with 1M
    // distinct flows (growth included: 1,024 slots doubling to 2^21) of 3 attributions.
    Benchmark("Monitor: FlowCache.insert, 1M distinct flows into a fresh cache",
              configuration: .init(scalingFactor: .mega, maxDuration: .seconds(20), maxIterations: 10)) { benchmark in
        let cache = FlowCache(lifetime: hour)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            cache.insert(flowKey(index), attributions[index % 3], now: now)
        }
        benchmark.stopMeasurement()
        precondition(cache.count == flowCount)
        blackHole(cache.bytesAllocated)
    }

    // One operation: a hit in a table of 1M flows, each lookup a different flow than the last
    // (no memo; scattered across the 32 MiB table, as with many concurrent flows).
    Benchmark("Monitor: FlowCache.lookup, hit among 1M flows, a different flow each time") { benchmark in
        let full = filledCache
        var index = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            index = (index &+ 7_919) % flowCount
            blackHole(full.lookup(flowKey(index), now: now))
        }
    }

    // One operation: a hit on the flow looked up last (a bulk transfer): the memo, no hashing.
    Benchmark("Monitor: FlowCache.lookup, hit on the same flow again (memo)") { benchmark in
        let full = filledCache
        let key = flowKey(12_345)
        blackHole(full.lookup(key, now: now))
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(full.lookup(key, now: now))
        }
    }

    // The attributor as the receive loop calls it, with a stub resolver: no sock_diag, an empty
    // process table, no cgroup, so a new flow's resolution is the cheapest possible ("uid",
    // no cgroup known) and what is measured is the per-new-flow overhead of caching it.
    Benchmark("Monitor: OwnerAttributor.attribute, 1M new flows (stub resolver)",
              configuration: .init(scalingFactor: .mega, maxDuration: .seconds(20), maxIterations: 10)) { benchmark in
        let attributor = OwnerAttributor(table: ProcessTable(), sockets: nil, flushTimeoutHundredths: 10,
                                         flowLifetime: hour)
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(attributor.attribute(packet: packet(index), direction: .outbound, uid: 1000,
                                           cgroupPath: nil, now: now))
        }
        benchmark.stopMeasurement()
        precondition(attributor.lookups == flowCount)
    }

    Benchmark("Monitor: OwnerAttributor.attribute, cached, a different flow each time among 1M") { benchmark in
        let attributor = filledAttributor
        var index = 0
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            index = (index &+ 7_919) % flowCount
            blackHole(attributor.attribute(packet: packet(index), direction: .outbound, uid: 1000,
                                           cgroupPath: nil, now: now))
        }
    }

    Benchmark("Monitor: OwnerAttributor.attribute, cached, same flow again (memo)") { benchmark in
        let attributor = filledAttributor
        let same = packet(12_345)
        _ = attributor.attribute(packet: same, direction: .outbound, uid: 1000, cgroupPath: nil, now: now)
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(attributor.attribute(packet: same, direction: .outbound, uid: 1000, cgroupPath: nil, now: now))
        }
    }
}
