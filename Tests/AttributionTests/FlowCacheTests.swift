import PacketModel
@testable import Attribution
import PacketParsing

import Testing

/// Synthetic flows: distinct for distinct `index` (up to 2^32).
func flowKey(_ index: Int, uid: UInt32? = 1000, inbound: Bool = false) -> FlowKey {
    FlowKey(source: .v4(0x0A00_0000 | UInt32(truncatingIfNeeded: index >> 16)), destination: .v4(0x7F00_0001),
            protocolNumber: 6, sourcePort: UInt16(truncatingIfNeeded: index), destinationPort: 443,
            inbound: inbound, uid: uid)
}

let curl = OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 42, comm: "curl", exe: "/usr/bin/curl")])
let ssh = OwnerAttribution(confidence: .single, processes: [ProcessReference(pid: 7, comm: "ssh", exe: "/usr/bin/ssh")])
let kernel = OwnerAttribution(confidence: .none, reason: "no socket: kernel-generated")

/// 10 s into the monotonic clock, in ns; times below are offsets from it.
let start: UInt64 = 10_000_000_000
let millisecond: UInt64 = 1_000_000

@Suite struct FlowCacheTests {
    @Test func storesAndAnswers() {
        let cache = FlowCache()
        #expect(cache.lookup(flowKey(1), now: start) == nil)
        cache.insert(flowKey(1), curl, now: start)
        cache.insert(flowKey(2), ssh, now: start)
        #expect(cache.lookup(flowKey(1), now: start) == curl)
        #expect(cache.lookup(flowKey(2), now: start) == ssh)
        #expect(cache.lookup(flowKey(3), now: start) == nil)
        #expect(cache.count == 2)
        cache.insert(flowKey(1), kernel, now: start)  // replaced, not added
        #expect(cache.lookup(flowKey(1), now: start) == kernel)
        #expect(cache.count == 2)
    }

    @Test func containsAgreesWithLookupAndFeedsTheMemo() {
        let cache = FlowCache(lifetime: 2_000 * millisecond)
        #expect(!cache.contains(flowKey(1), now: start))
        cache.insert(flowKey(1), curl, now: start)
        cache.insert(flowKey(2), ssh, now: start)
        #expect(cache.contains(flowKey(1), now: start))
        // flowKey(1) is the memo now: the next lookup of it is answered from there.
        let memoHits = cache.memoHits
        #expect(cache.lookup(flowKey(1), now: start) == curl)
        #expect(cache.memoHits == memoHits + 1)
        #expect(cache.contains(flowKey(2), now: start))
        #expect(cache.lookup(flowKey(2), now: start) == ssh)
        #expect(!cache.contains(flowKey(3), now: start))
        #expect(!cache.contains(flowKey(2), now: start + 2_000 * millisecond))
    }

    @Test func entriesExpireAfterTheLifetimeAndHitsDoNotExtendIt() {
        let cache = FlowCache(lifetime: 2_000 * millisecond)
        cache.insert(flowKey(1), curl, now: start)
        cache.insert(flowKey(2), ssh, now: start)
        // Through the memo (flow 2 was stored last) and through the table (flow 1).
        for key in [flowKey(2), flowKey(1)] {
            #expect(cache.lookup(key, now: start + 1_999 * millisecond) != nil)
        }
        for key in [flowKey(1), flowKey(2)] {
            #expect(cache.lookup(key, now: start + 2_000 * millisecond) == nil)
        }
        // Stored again: fresh again.
        cache.insert(flowKey(1), curl, now: start + 2_000 * millisecond)
        #expect(cache.lookup(flowKey(1), now: start + 3_999 * millisecond) == curl)
        #expect(cache.count == 2)
    }

    @Test func aClockGoingBackwardsIsAMiss() {
        let cache = FlowCache()
        cache.insert(flowKey(1), curl, now: start)
        #expect(cache.lookup(flowKey(1), now: start - millisecond) == nil)
    }

    @Test func growsByDoublingAtThreeQuartersLoad() {
        let cache = FlowCache()
        let initial = cache.capacity
        for index in 0..<10_000 { cache.insert(flowKey(index), index % 2 == 0 ? curl : ssh, now: start) }
        #expect(cache.count == 10_000)
        #expect(cache.capacity == 16_384)
        #expect(cache.capacity > initial && cache.capacity.nonzeroBitCount == 1)
        #expect((0..<10_000).allSatisfy { cache.lookup(flowKey($0), now: start) == ($0 % 2 == 0 ? curl : ssh) })
        #expect(cache.lookup(flowKey(10_000), now: start) == nil)
        #expect(cache.evictions == 0)
    }

    @Test func neverGrowsPastTheMaximumAndEvictsTheOldestWhenFull() {
        let cache = FlowCache(lifetime: 60_000 * millisecond, maximumFlows: 1_024)
        // 1,024 flows at 3/4 load need 2,048 slots.
        for index in 0..<1_024 { cache.insert(flowKey(index), curl, now: start) }
        #expect(cache.count == 1_024)
        #expect(cache.evictions == 0)
        // 40 s later the first ones are older than half the lifetime: those go.
        for index in 1_024..<1_100 { cache.insert(flowKey(index), ssh, now: start + 40_000 * millisecond) }
        #expect(cache.capacity == 2_048)
        #expect(cache.count == 76)
        #expect(cache.evictions == 1_024)
        #expect(cache.lookup(flowKey(0), now: start + 40_000 * millisecond) == nil)
        #expect(cache.lookup(flowKey(1_099), now: start + 40_000 * millisecond) == ssh)
        // All of the same age: all go, and the new flow is kept.
        let full = FlowCache(maximumFlows: 1_024)
        for index in 0..<5_000 { full.insert(flowKey(index), curl, now: start) }
        #expect(full.capacity == 2_048)
        #expect(full.count <= 1_024)
        #expect(full.evictions > 0)
        #expect(full.lookup(flowKey(4_999), now: start) == curl)
    }

    @Test func whenFullExpiredFlowsGoFirstAndAreNotEvictions() {
        let cache = FlowCache(lifetime: 2_000 * millisecond, maximumFlows: 1_024)
        for index in 0..<1_024 { cache.insert(flowKey(index), curl, now: start) }
        cache.insert(flowKey(5_000), ssh, now: start + 2_000 * millisecond)
        #expect(cache.count == 1)
        #expect(cache.evictions == 0)
        #expect(cache.lookup(flowKey(5_000), now: start + 2_000 * millisecond) == ssh)
    }

    /// Deleting from the middle of probe runs (backward shift) must keep every other flow
    /// findable: a table at 3/4 load has long runs.
    @Test func sweepingExpiredFlowsKeepsTheOthersFindable() {
        let cache = FlowCache(lifetime: 2_000 * millisecond, maximumFlows: 3_072)
        for index in 0..<3_072 {
            cache.insert(flowKey(index), curl, now: index % 3 == 0 ? start : start + 1_000 * millisecond)
        }
        #expect(cache.capacity == 4_096)
        let later = start + 2_500 * millisecond
        cache.sweep(now: later, slots: 1_000)  // part of the table
        cache.sweep(now: later, slots: 1_000_000)  // the rest
        #expect(cache.count == 2_048)
        for index in 0..<3_072 {
            #expect((cache.lookup(flowKey(index), now: later) != nil) == (index % 3 != 0))
        }
    }

    @Test func shrinksWhenASweepLeavesItMostlyEmpty() {
        let cache = FlowCache(lifetime: 2_000 * millisecond)
        let initial = cache.capacity
        for index in 0..<100_000 { cache.insert(flowKey(index), curl, now: start) }
        #expect(cache.capacity == 262_144)
        cache.insert(flowKey(-1), ssh, now: start + 3_000 * millisecond)
        cache.sweep(now: start + 3_000 * millisecond, slots: .max)
        #expect(cache.count == 1)
        #expect(cache.capacity == initial)
        #expect(cache.lookup(flowKey(-1), now: start + 3_000 * millisecond) == ssh)
    }

    @Test func removeAllForgetsFlowsAttributionsAndTheMemo() {
        let cache = FlowCache()
        cache.insert(flowKey(1), curl, now: start)
        cache.removeAll()
        #expect(cache.lookup(flowKey(1), now: start) == nil)
        #expect(cache.count == 0)
        #expect(cache.attributionCount == 0)
    }

    @Test func distinctAttributionsAreStoredOnce() {
        let cache = FlowCache()
        for index in 0..<30_000 { cache.insert(flowKey(index), [curl, ssh, kernel][index % 3], now: start) }
        #expect(cache.attributionCount == 3)
        #expect(cache.lookup(flowKey(29_999), now: start) == kernel)
        #expect(cache.lookup(flowKey(29_998), now: start) == ssh)
    }

    @Test func aFullInternTableStartsOver() {
        let cache = FlowCache(maximumAttributions: 4)
        func attribution(_ pid: Int32) -> OwnerAttribution {
            OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: pid, comm: "p\(pid)", exe: nil)])
        }
        for pid in Int32(0)..<4 { cache.insert(flowKey(Int(pid)), attribution(pid), now: start) }
        #expect(cache.attributionCount == 4)
        cache.insert(flowKey(4), attribution(0), now: start)  // known: no reset
        #expect(cache.count == 5)
        cache.insert(flowKey(5), attribution(5), now: start)
        #expect(cache.attributionCount == 1)
        #expect(cache.count == 1)
        #expect(cache.evictions == 5)
        #expect(cache.lookup(flowKey(0), now: start) == nil)
        #expect(cache.lookup(flowKey(5), now: start) == attribution(5))
    }

    /// The memo's identity names the interned attribution: equal for two flows of one owner,
    /// different for another owner, and never reused for another after the intern table starts
    /// over (the facts path keeps an attribution by its identity).
    @Test func theMemoIdentityNamesTheAttributionNotTheFlow() {
        let cache = FlowCache()
        cache.insert(flowKey(1), curl, now: start)
        cache.insert(flowKey(2), curl, now: start)
        cache.insert(flowKey(3), ssh, now: start)
        #expect(cache.contains(flowKey(1), now: start))
        let curlIdentity = cache.memoIdentity
        #expect(cache.memoValue == curl)
        #expect(cache.contains(flowKey(3), now: start))
        #expect(cache.memoIdentity != curlIdentity)
        #expect(cache.contains(flowKey(2), now: start))
        #expect(cache.memoIdentity == curlIdentity)
        cache.removeAll()
        cache.insert(flowKey(4), ssh, now: start)  // index 0 again, as curl's was
        #expect(cache.contains(flowKey(4), now: start))
        #expect(cache.memoIdentity != curlIdentity, "a new generation")
        #expect(cache.memoValue == ssh)
    }

    @Test func theMemoAnswersOnlyTheSameFlow() {
        let cache = FlowCache()
        cache.insert(flowKey(1), curl, now: start)
        #expect(cache.lookup(flowKey(1), now: start) == curl)
        #expect(cache.memoHits == 1)
        // Right after: flows that differ in one field only are not the memo's.
        #expect(cache.lookup(flowKey(2), now: start) == nil)
        #expect(cache.lookup(flowKey(1), now: start) == curl)  // a miss does not replace the memo
        #expect(cache.lookup(flowKey(1, uid: 0), now: start) == nil)
        #expect(cache.lookup(flowKey(1, uid: nil), now: start) == nil)
        #expect(cache.lookup(flowKey(1, inbound: true), now: start) == nil)
        cache.insert(flowKey(1, inbound: true), ssh, now: start)
        // The two directions alternating: the memo and the one before it answer both.
        #expect(cache.lookup(flowKey(1), now: start) == curl)
        #expect(cache.lookup(flowKey(1, inbound: true), now: start) == ssh)
        #expect(cache.lookup(flowKey(1, inbound: true), now: start) == ssh)
        #expect(cache.memoHits == 5)
        // A third flow pushes the oldest out of the two memos; answers stay right.
        cache.insert(flowKey(3), curl, now: start)
        #expect(cache.lookup(flowKey(1), now: start) == curl)
        #expect(cache.lookup(flowKey(1, inbound: true), now: start) == ssh)
        cache.remove(flowKey(1, inbound: true))
        #expect(cache.lookup(flowKey(1, inbound: true), now: start) == nil, "a removed flow is no memo's either")
    }

    /// A SipHash collision (forced here: every key gets the same fingerprint) must be a miss,
    /// not the other flow's owner: the slot's check, from another hash, tells them apart.
    @Test func aFingerprintCollisionIsAMissNotAnotherFlowsOwner() throws {
        let cache = FlowCache(fingerprint: { _ in 42 })
        let first = flowKey(1), second = flowKey(2), third = flowKey(3)
        try #require(Set([first, second, third].map(FlowCache.check)).count == 3)
        cache.insert(first, curl, now: start)
        #expect(cache.lookup(second, now: start) == nil)
        cache.insert(second, ssh, now: start)
        cache.insert(third, ssh, now: start)
        #expect(cache.count == 3)
        // Three flows in turn: each is neither of the two memos (the last two asked), so every
        // lookup goes through the table.
        for _ in 0..<2 {
            #expect(cache.lookup(first, now: start) == curl)
            #expect(cache.lookup(second, now: start) == ssh)
            #expect(cache.lookup(third, now: start) == ssh)
        }
        #expect(cache.memoHits == 0)
    }

    /// Hundreds of flows with one fingerprint share one home slot: one long probe run, which
    /// lookups, growth and backward-shift deletion must all get right by the check.
    @Test func manyFlowsWithOneFingerprintStayApart() {
        let cache = FlowCache(lifetime: 2_000 * millisecond, fingerprint: { _ in 7 })
        var seen = Set<UInt16>()
        let indexes = (0..<2_000).filter { seen.insert(FlowCache.check(flowKey($0))).inserted }.prefix(600)
        for (position, index) in indexes.enumerated() {
            cache.insert(flowKey(index), position % 2 == 0 ? curl : ssh,
                         now: position % 3 == 0 ? start : start + 1_000 * millisecond)
        }
        #expect(cache.count == 600)
        for (position, index) in indexes.enumerated() {
            #expect(cache.lookup(flowKey(index), now: start + 1_000 * millisecond) == (position % 2 == 0 ? curl : ssh))
        }
        cache.sweep(now: start + 2_500 * millisecond, slots: .max)
        #expect(cache.count == 400)
        for (position, index) in indexes.enumerated() {
            let expected = position % 3 == 0 ? nil : (position % 2 == 0 ? curl : ssh)
            #expect(cache.lookup(flowKey(index), now: start + 2_500 * millisecond) == expected)
        }
    }

    /// The check's 16 bits must be spread evenly even over keys that differ in a few low bits:
    /// 100,000 keys into 65,536 values leave ≈ 65,536 × (1 − e^−1.53) ≈ 51,300 distinct.
    @Test func theCheckIsSpreadOverItsSixteenBits() {
        var seen = Set<UInt16>()
        for index in 0..<100_000 { seen.insert(FlowCache.check(flowKey(index))) }
        #expect((50_000...52_600).contains(seen.count))
        #expect(FlowCache.check(flowKey(1, inbound: true)) != FlowCache.check(flowKey(1)))
    }

    /// The check lives in the attribution field's upper half: the slot stays 16 bytes, and the
    /// intern table never holds more attributions than 16-bit indexes reach.
    @Test func theSlotIsSixteenBytesAndIndexesFitSixteenBits() {
        #expect(MemoryLayout<FlowCache.Slot>.stride == 16)
        #expect(FlowCache(maximumAttributions: 1_000_000).maximumAttributions == 65_536)
        #expect(FlowCache.defaultMaximumAttributions <= Int(UInt16.max) + 1)
    }

    /// Issue 5: RSS ≤ 64 MiB at 1M tracked flows. The cache's share must stay within 48 MiB.
    @Test func aMillionFlowsFitInFortyEightMebibytes() {
        let cache = FlowCache(lifetime: 3_600_000 * millisecond)
        let flows = 1_000_000
        for index in 0..<flows {
            cache.insert(flowKey(index), [curl, ssh, kernel][index % 3], now: start + UInt64(index / 1_000) * millisecond)
        }
        #expect(cache.count == flows)
        #expect(cache.attributionCount == 3)
        #expect(cache.evictions == 0)
        #expect(cache.bytesAllocated <= 48 << 20)
        #expect(cache.bytesAllocated <= 32 * (1 << 20) + 4_096)  // 2^21 slots of 16 bytes
        let now = start + 1_000 * millisecond
        for index in stride(from: 0, to: flows, by: 9_973) {
            #expect(cache.lookup(flowKey(index), now: now) == [curl, ssh, kernel][index % 3])
        }
    }
}

@Suite struct OwnerAttributorTests {
    /// UDP 127.0.0.1:port → 127.0.0.1:9999.
    static func packet(port: UInt16) -> PacketSummary {
        PacketSummary(family: .ipv4, source: .v4(0x7F00_0001), destination: .v4(0x7F00_0001), protocolNumber: 17,
                      totalLength: 32, fragment: nil, transport: .udp(PortPair(source: port, destination: 9999)))
    }

    /// No sockets and an empty process table: every answer is by uid or none, which is enough
    /// to see the caching.
    static func attributor(lifetime: UInt64 = FlowCache.defaultLifetime) -> OwnerAttributor {
        OwnerAttributor(table: ProcessTable(), sockets: nil, flushTimeoutHundredths: 10,
                        flowLifetime: lifetime, maximumFlows: 1_024)
    }

    @Test func eachFlowIsResolvedOncePerLifetime() {
        let attributor = Self.attributor()
        func attribute(_ port: UInt16, uid: UInt32?, at offset: UInt64) -> OwnerAttribution {
            attributor.attribute(packet: Self.packet(port: port), direction: .outbound, uid: uid,
                                 cgroupPath: nil, now: start + offset * millisecond)
        }
        #expect(attribute(40_000, uid: nil, at: 0) == OwnerAttribution(confidence: .none, reason: "no socket: kernel-generated"))
        #expect(attribute(40_000, uid: 1000, at: 0) == OwnerAttribution(confidence: .uid, reason: "no cgroup known for the packet"))
        for _ in 0..<10 { _ = attribute(40_000, uid: 1000, at: 1) }
        #expect(attribute(40_001, uid: 1000, at: 1).confidence == .uid)
        #expect(attributor.lookups == 3)
        #expect(attributor.cacheHits == 10)
        _ = attribute(40_000, uid: 1000, at: 2_000)  // the lifetime is over
        #expect(attributor.lookups == 4)
        #expect(attributor.cachedFlows == 3)
        attributor.housekeeping(now: start + 5_000 * millisecond)
        #expect(attributor.cachedFlows == 0)
    }

    @Test func theFlowLifetimeIsASetting() {
        let attributor = Self.attributor(lifetime: 60_000 * millisecond)
        for offset: UInt64 in [0, 2_000, 59_999] {
            _ = attributor.attribute(packet: Self.packet(port: 1), direction: .outbound, uid: 1000,
                                     cgroupPath: nil, now: start + offset * millisecond)
        }
        #expect(attributor.lookups == 1)
        #expect(attributor.cacheHits == 2)
    }

    @Test func directionsAreSeparateFlows() {
        let attributor = Self.attributor()
        for direction in [Direction.outbound, .inbound, .outbound] {
            _ = attributor.attribute(packet: Self.packet(port: 1), direction: direction, uid: 1000,
                                     cgroupPath: nil, now: start)
        }
        #expect(attributor.lookups == 2)
        #expect(attributor.cacheHits == 1)
    }
}

/// The slot table's memory (issue 5: the peak while growing to 1M flows, not only the end state).
@Suite struct FlowCacheMemoryTests {
    /// 16-byte slots for `count` slots.
    func bytes(_ count: Int) -> Int { count * MemoryLayout<FlowCache.Slot>.stride }

    @Test func anAllZeroSlotIsEmptySoAFreshTableNeedsNoInitialization() {
        var empty = FlowCache.Slot.empty
        #expect(withUnsafeBytes(of: &empty) { $0.allSatisfy { $0 == 0 } })
        #expect(MemoryLayout<FlowCache.Slot>.size == MemoryLayout<FlowCache.Slot>.stride)  // no padding bytes
        let cache = FlowCache()
        // Nothing was written to the table: no page of it is resident.
        #expect(cache.memory.residentBytes() == 0)
        #expect(cache.lookup(flowKey(1), now: start) == nil)
        cache.insert(flowKey(1), curl, now: start)
        #expect(cache.lookup(flowKey(1), now: start) == curl)
        #expect(cache.memory.byteCount == bytes(cache.capacity))
    }

    @Test func growingAcrossManyDoublingsKeepsEveryFlowFindable() {
        let cache = FlowCache(lifetime: 3_600_000 * millisecond)
        var capacities = [cache.capacity]
        let flows = 150_000
        for index in 0..<flows {
            cache.insert(flowKey(index), index % 2 == 0 ? curl : ssh, now: start)
            if cache.capacity != capacities.last {
                capacities.append(cache.capacity)
                // Right after each resize, every flow so far (through the table: the memo holds
                // only the last).
                #expect((0...index).allSatisfy { cache.lookup(flowKey($0), now: start) == ($0 % 2 == 0 ? curl : ssh) })
            }
        }
        #expect(capacities == (10...18).map { 1 << $0 })
        #expect(cache.count == flows)
        #expect(cache.lookup(flowKey(flows), now: start) == nil)
    }

    /// Flows whose home is the last slot at every size: their probe run wraps around to the
    /// start, so old slot 0, 1, … hold flows that belong at the end of the new table.
    @Test func probeRunsThatWrapAroundTheEndSurviveGrowth() {
        let cache = FlowCache(fingerprint: { key in
            guard case .v4(let high) = key.source else { return 1 }
            let index = UInt64(high & 0xFFFF) << 16 | UInt64(key.sourcePort)
            return index << 24 | 0xFF_FFFF  // low bits all ones: home = the last slot
        })
        for index in 0..<3_000 { cache.insert(flowKey(index), curl, now: start) }
        #expect(cache.capacity == 4_096)
        #expect((0..<3_000).allSatisfy { cache.lookup(flowKey($0), now: start) == curl })
        #expect(cache.lookup(flowKey(3_000), now: start) == nil)
    }

    /// Each old table is given back while its flows move, in many stretches rather than at the
    /// end: the old and the new table are not both resident.
    @Test func growingGivesTheOldTablesPagesBackAsTheyAreMigrated() {
        let cache = FlowCache(lifetime: 3_600_000 * millisecond)
        for index in 0..<150_000 { cache.insert(flowKey(index), curl, now: start) }
        #expect(cache.capacity == 262_144)
        // Every old table (1,024 … 131,072 slots, all whole pages), completely.
        #expect(cache.releasedBytes == bytes(262_144 - 1_024))
        // The last old table (2 MiB) alone went back in ≥ 32 stretches of ≤ 64 KiB.
        #expect(cache.releases >= 32)
        // The new table holds only what flows were written to: 150,000 of 262,144 slots, spread
        // over every page, so all of it — but nothing else.
        let resident = cache.memory.residentBytes() ?? 0
        #expect(resident <= bytes(262_144))
    }

    @Test func shrinkingGivesTheLargerTableBack() {
        let cache = FlowCache(lifetime: 2_000 * millisecond)
        for index in 0..<100_000 { cache.insert(flowKey(index), curl, now: start) }
        let grown = cache.releasedBytes
        #expect(cache.capacity == 262_144)
        cache.sweep(now: start + 3_000 * millisecond, slots: .max)
        #expect(cache.count == 0)
        #expect(cache.capacity == 1_024)
        // The swept 4 MiB table (already zero, released once more as it was migrated).
        #expect(cache.releasedBytes == grown + bytes(262_144))
        #expect(cache.memory.residentBytes() == 0)
    }

    @Test func removeAllGivesTheWholeTableBackAndKeepsItsSize() {
        let cache = FlowCache(lifetime: 3_600_000 * millisecond)
        for index in 0..<100_000 { cache.insert(flowKey(index), index % 2 == 0 ? curl : ssh, now: start) }
        #expect((cache.memory.residentBytes() ?? 0) > bytes(200_000))
        let before = cache.releasedBytes
        cache.removeAll()
        #expect(cache.capacity == 262_144)
        #expect(cache.releasedBytes == before + bytes(262_144))
        #expect(cache.memory.residentBytes() == 0)
        #expect(cache.count == 0 && cache.attributionCount == 0)
        #expect(cache.lookup(flowKey(1), now: start) == nil)
        #expect(cache.lookup(flowKey(99_999), now: start) == nil)
        for index in 0..<1_000 { cache.insert(flowKey(index), kernel, now: start) }
        #expect((0..<1_000).allSatisfy { cache.lookup(flowKey($0), now: start) == kernel })
        #expect(cache.count == 1_000)
    }
}

@Suite("FlowKey")
struct FlowKeyTests {
    @Test func everyFieldReadsBackAsGiven() {
        let v6 = IPAddress.v6(high: 0x2001_0DB8_0000_0000, low: 0x0000_0000_0000_0001)
        for (source, destination) in [(IPAddress.v4(0x0A00_0001), IPAddress.v4(0x7F00_0001)), (v6, v6),
                                      (.v4(0xFFFF_FFFF), v6)] {
            for uid: UInt32? in [nil, 0, 1000, .max] {
                for inbound in [false, true] {
                    let key = FlowKey(source: source, destination: destination, protocolNumber: 17,
                                      sourcePort: 65535, destinationPort: 53, inbound: inbound, uid: uid)
                    #expect(key.source == source)
                    #expect(key.destination == destination)
                    #expect(key.protocolNumber == 17)
                    #expect(key.sourcePort == 65535)
                    #expect(key.destinationPort == 53)
                    #expect(key.inbound == inbound)
                    #expect(key.uid == uid)
                }
            }
        }
    }

    /// The words a key is stored in must not make different flows equal.
    @Test func fieldsThatLookAlikeInWordsStayDistinct() {
        func key(_ source: IPAddress, uid: UInt32?) -> FlowKey {
            FlowKey(source: source, destination: .v4(1), protocolNumber: 6, sourcePort: 1, destinationPort: 2,
                    inbound: false, uid: uid)
        }
        // No uid against uid 0; an IPv4 address against the IPv6 one with the same bits.
        #expect(key(.v4(5), uid: nil) != key(.v4(5), uid: 0))
        #expect(key(.v4(5), uid: 1) != key(.v6(high: 0, low: 5), uid: 1))
        #expect(key(.v4(5), uid: 1) == key(.v4(5), uid: 1))
        #expect(key(.v4(5), uid: 1).hashValue == key(.v4(5), uid: 1).hashValue)
    }

    @Test func aPacketsKeyUsesPortsOrTheEchoIdAndType() {
        let udp = PacketSummary(family: .ipv4, source: .v4(1), destination: .v4(2), protocolNumber: 17,
                                totalLength: 60, fragment: nil,
                                transport: .udp(PortPair(source: 4000, destination: 53)))
        let udpKey = FlowKey(packet: udp, direction: .outbound, uid: 7)
        #expect(udpKey.sourcePort == 4000 && udpKey.destinationPort == 53 && udpKey.uid == 7 && !udpKey.inbound)
        let ping = PacketSummary(family: .ipv4, source: .v4(1), destination: .v4(2), protocolNumber: 1,
                                 totalLength: 84, fragment: nil,
                                 transport: .icmp(ICMPInfo(type: 8, code: 0, echoIdentifier: 99)))
        let pingKey = FlowKey(packet: ping, direction: .inbound, uid: nil)
        #expect(pingKey.sourcePort == 99 && pingKey.destinationPort == 8 && pingKey.uid == nil && pingKey.inbound)
    }
}
