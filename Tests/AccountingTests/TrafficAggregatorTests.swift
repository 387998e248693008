@testable import Accounting
import PacketModel
import PacketParsing
import Testing

@Suite struct TrafficAggregatorTests {
    static let alice = TrafficOwner(unit: "web.service", cgroup: "/system.slice/web.service", user: "alice",
                                    program: "/usr/bin/curl")
    static let bob = TrafficOwner(unit: "", cgroup: "/user.slice", user: "bob", program: "/usr/bin/ping")

    /// One packet of a TCP flow from 10.0.0.1:`sourcePort` to `remote`:`port`.
    static func add(_ aggregator: inout TrafficAggregator, _ owner: TrafficOwner, pid: Int32 = 10,
                    remote: UInt32 = 0x0A00_0002, port: UInt16 = 443, sourcePort: UInt16 = 40000,
                    direction: TrafficDirection = .out, bytes: UInt64 = 100, at seconds: Int64,
                    namings: inout Int) {
        let local = IPAddress.v4(0x0A00_0001), far = IPAddress.v4(remote)
        let flow = FlowKey(source: direction == .out ? local : far, destination: direction == .out ? far : local,
                           protocolNumber: 6, sourcePort: direction == .out ? sourcePort : port,
                           destinationPort: direction == .out ? port : sourcePort, inbound: direction == .in, uid: nil)
        aggregator.add(flow: flow, stamp: OwnerStamp(uid: 1000, cgroupID: 7, pid: pid, confidence: 1),
                       direction: direction, protocolNumber: 6, remote: far, remotePort: port, bytes: bytes, at: seconds) {
            namings += 1
            return owner
        }
    }

    @Test func totalsPerKeyAndClosesBucketsAtTheirEnd() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 60))
        var namings = 0
        Self.add(&aggregator, Self.alice, bytes: 1500, at: 1_000_020, namings: &namings)
        Self.add(&aggregator, Self.alice, bytes: 500, at: 1_000_030, namings: &namings)
        Self.add(&aggregator, Self.alice, direction: .in, bytes: 60, at: 1_000_031, namings: &namings)
        #expect(aggregator.takeCompleted().isEmpty)
        aggregator.advance(to: 1_000_079)
        #expect(aggregator.takeCompleted().isEmpty, "1_000_079 is still in the bucket [1_000_020, 1_000_080)")
        aggregator.advance(to: 1_000_080)
        let buckets = aggregator.takeCompleted()
        #expect(buckets.count == 1)
        let bucket = buckets[0]
        #expect(bucket.start == 1_000_020 && bucket.seconds == 60)
        let out = AccountingKey(unit: "web.service", cgroup: "/system.slice/web.service", user: "alice",
                                program: "/usr/bin/curl", direction: .out, proto: "tcp", remoteAddress: "10.0.0.2",
                                remotePort: 443)
        var inbound = out
        inbound.direction = .in
        #expect(bucket.rows[out] == AccountingCounts(bytes: 2000, packets: 2, flows: 1))
        #expect(bucket.rows[inbound] == AccountingCounts(bytes: 60, packets: 1, flows: 1))
        #expect(namings == 2, "the owner is named once per flow and bucket, not per packet")
        #expect(aggregator.total == AccountingCounts(bytes: 2060, packets: 3, flows: 2))
    }

    /// A repeat of the last flow's packet is counted in its row while the second lasts; a new
    /// second (or a closed bucket) sends it back through `add`, which renews the flow's memo.
    @Test func theLastFlowIsCountedAgainOnlyWithinItsSecond() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 10))
        var namings = 0
        var counted: [Bool] = []
        counted.append(aggregator.addToLastFlow(bytes: 100, at: 100))  // nothing counted yet
        Self.add(&aggregator, Self.alice, at: 100, namings: &namings)
        Self.add(&aggregator, Self.alice, at: 100, namings: &namings)
        counted.append(aggregator.addToLastFlow(bytes: 7, at: 100))
        counted.append(aggregator.addToLastFlow(bytes: 7, at: 101))  // a new second
        Self.add(&aggregator, Self.alice, at: 101, namings: &namings)
        counted.append(aggregator.addToLastFlow(bytes: 7, at: 101))
        counted.append(aggregator.addToLastFlow(bytes: 7, at: 110))  // the next bucket
        let buckets = aggregator.finish()
        counted.append(aggregator.addToLastFlow(bytes: 7, at: 110))  // after finish
        #expect(counted == [false, true, false, true, false, false])
        #expect(buckets.count == 1)
        #expect(buckets.first?.rows.values.first == AccountingCounts(bytes: 314, packets: 5, flows: 1))
    }

    @Test func aFlowIsCountedOnceUntilItIdlesAndAgainInEachNewBucketOnlyIfNew() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 10, flowIdleSeconds: 120))
        var namings = 0
        Self.add(&aggregator, Self.alice, at: 100, namings: &namings)
        Self.add(&aggregator, Self.alice, at: 115, namings: &namings)  // next bucket, same flow
        Self.add(&aggregator, Self.alice, at: 300, namings: &namings)  // idle 185 s: a new flow
        let buckets = aggregator.finish()
        #expect(buckets.map(\.start) == [100, 110, 300])
        #expect(buckets.map { $0.rows.values.reduce(0) { $0 + $1.flows } } == [1, 0, 1])
        #expect(buckets.map { $0.rows.values.reduce(0) { $0 + $1.packets } } == [1, 1, 1])
    }

    /// A bucket opened after `finish()` can start where the finished one did: a flow's packet
    /// in it gets a row of its own there, by the first path (a later second) and by the memo's
    /// (the same second, the bucket opened by counting a loss first).
    @Test func aBucketAfterFinishGetsItsOwnRows() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 60))
        var namings = 0
        Self.add(&aggregator, Self.alice, bytes: 100, at: 120, namings: &namings)
        #expect(aggregator.finish().map(\.start) == [120])
        Self.add(&aggregator, Self.alice, bytes: 200, at: 121, namings: &namings)
        let second = aggregator.finish()
        #expect(second.map(\.start) == [120])
        #expect(second.first?.rows.values.map(\.bytes) == [200])
        aggregator.addUnaccounted(1, at: 121)
        Self.add(&aggregator, Self.alice, bytes: 300, at: 121, namings: &namings)
        let third = aggregator.finish()
        #expect(third.first?.rows.values.map(\.bytes) == [300])
        #expect(third.first?.unaccountedPackets == 1)
        #expect(namings == 3)
    }

    @Test func anOwnerThatChangesMidFlowMovesToItsOwnRow() {
        var aggregator = TrafficAggregator()
        var namings = 0
        Self.add(&aggregator, Self.alice, pid: 10, at: 60, namings: &namings)
        Self.add(&aggregator, Self.bob, pid: 11, at: 61, namings: &namings)
        let rows = aggregator.finish()[0].rows
        #expect(rows.count == 2)
        #expect(rows.keys.map(\.user).sorted() == ["alice", "bob"])
        #expect(namings == 2)
    }

    @Test func remotesPastTheBoundAreAddedUpAsOther() {
        var aggregator = TrafficAggregator(limits: .init(maxRemotes: 3))
        var namings = 0
        for index in 0..<10 {
            Self.add(&aggregator, Self.alice, remote: 0x0A00_0100 + UInt32(index), bytes: 10, at: 60, namings: &namings)
        }
        let rows = aggregator.finish()[0].rows
        #expect(rows.count == 4)
        let other = rows.first { $0.key.remoteAddress == AccountingKey.other }
        #expect(other?.value == AccountingCounts(bytes: 70, packets: 7, flows: 7))
        #expect(other?.key.remotePort == nil && other?.key.user == "alice")
        #expect(rows.values.reduce(0) { $0 + $1.bytes } == 100, "folding never loses a byte")
        #expect(aggregator.foldedRows == 7)
    }

    @Test func rowsPastTheBoundAreAddedUpUnderTheOwnerOther() {
        var aggregator = TrafficAggregator(limits: .init(maxRemotes: 1000, maxRows: 5))
        var namings = 0
        for index in 0..<20 {
            Self.add(&aggregator, Self.alice, remote: 0x0A00_0100 + UInt32(index), bytes: 1, at: 60, namings: &namings)
        }
        let rows = aggregator.finish()[0].rows
        #expect(rows.count == 6)
        #expect(rows.first { $0.key.user == AccountingKey.other }?.value.packets == 15)
        #expect(rows.values.reduce(0) { $0 + $1.packets } == 20)
    }

    @Test func aFloodOfDistinctRemotesStaysBounded() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 60, maxRemotes: 100, maxFlows: 10_000))
        var namings = 0
        for index in 0..<200_000 {
            Self.add(&aggregator, Self.alice, remote: UInt32(index), sourcePort: UInt16(truncatingIfNeeded: index),
                     bytes: 1, at: 60 + Int64(index / 50_000), namings: &namings)
        }
        #expect(aggregator.activeFlows <= 10_000)
        let bucket = aggregator.finish()[0]
        #expect(bucket.rows.count == 101)
        #expect(aggregator.total.packets == 200_000)
    }

    @Test func unaccountedPacketsLandInTheirBucket() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 10))
        var namings = 0
        Self.add(&aggregator, Self.alice, at: 100, namings: &namings)
        aggregator.addUnaccounted(7, at: 105)
        aggregator.addUnaccounted(3, at: 112)
        let buckets = aggregator.finish()
        #expect(buckets.map(\.unaccountedPackets) == [7, 3])
        #expect(buckets[1].rows.isEmpty)
        #expect(aggregator.totalUnaccounted == 10)
    }

    @Test func seriesAreCumulativeAcrossBucketsAndKeepNoRemoteByDefault() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 10))
        var namings = 0
        Self.add(&aggregator, Self.alice, remote: 1, bytes: 10, at: 100, namings: &namings)
        Self.add(&aggregator, Self.alice, remote: 2, bytes: 20, at: 111, namings: &namings)
        #expect(aggregator.seriesKeys.count == 1)
        #expect(aggregator.seriesKeys[0] == MetricSeries(unit: "web.service", user: "alice", program: "/usr/bin/curl",
                                                          direction: .out, proto: "tcp", remote: ""))
        #expect(aggregator.seriesCounts[0] == AccountingCounts(bytes: 30, packets: 2, flows: 2))
    }

    @Test func reconfiguringKeepsTotalsAndChangesTheNextBucketsLength() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 10))
        var namings = 0
        Self.add(&aggregator, Self.alice, bytes: 10, at: 100, namings: &namings)
        aggregator.reconfigure(.init(bucketSeconds: 60, maxRemotes: 0))
        Self.add(&aggregator, Self.alice, remote: 9, bytes: 10, at: 105, namings: &namings)
        Self.add(&aggregator, Self.alice, remote: 9, bytes: 10, at: 125, namings: &namings)
        let buckets = aggregator.finish()
        #expect(buckets.map(\.seconds) == [10, 60])
        #expect(buckets.map(\.start) == [100, 120])
        #expect(buckets[0].rows.keys.map(\.remoteAddress).sorted() == ["10.0.0.2", AccountingKey.other])
        #expect(aggregator.total.bytes == 30)
    }

    @Test func timeGoingBackwardsStaysInTheOpenBucket() {
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 10))
        var namings = 0
        Self.add(&aggregator, Self.alice, at: 105, namings: &namings)
        Self.add(&aggregator, Self.alice, at: 95, namings: &namings)
        let buckets = aggregator.finish()
        #expect(buckets.count == 1 && buckets[0].start == 100)
        #expect(buckets[0].rows.values.first?.packets == 2)
    }
}

@Suite struct TrafficAggregatorModelTests {
    /// Random packets of a few flows whose owners change now and then, over several buckets:
    /// the buckets and the series hold exactly what a plain per-packet tally says. Packets come
    /// in runs of one flow half the time (the aggregator remembers the last flow's place), and
    /// with room for 8 flows of 20 the remembered flows are forgotten again and again.
    /// `repeats`: a packet of the same flow and owner as the one before goes to `addToLastFlow`
    /// first, as the accounting sink sends it (`PacketFacts.repeatsPrevious`).
    @Test(arguments: [262_144, 8], [false, true]) func agreesWithAPlainTally(maxFlows: Int, repeats: Bool) {
        var generator = SystemRandomNumberGenerator()
        let owners = [TrafficOwner(user: "a", program: "/x"), TrafficOwner(user: "b", program: "/y"),
                      TrafficOwner(user: "", program: "")]
        // Flows idle after 2 s: a run of one flow's packets crosses seconds, buckets and idle gaps.
        var aggregator = TrafficAggregator(limits: .init(bucketSeconds: 5, maxFlows: maxFlows, flowIdleSeconds: 2))
        var flow = 0
        var lastSeen = [Int64?](repeating: nil, count: 20)
        var flowsExpected: UInt64 = 0
        var expected: [Int64: [String: UInt64]] = [:]
        var seriesExpected: [String: UInt64] = [:]
        var flowOwner = [Int](repeating: 0, count: 20)
        var second: Int64 = 1000
        var buckets: [TrafficBucket] = []
        var previous: (flow: Int, owner: Int)?
        var countedAsRepeats = 0
        for _ in 0..<20_000 {
            if Int.random(in: 0..<50, using: &generator) == 0 { second += Int64.random(in: 0...3, using: &generator) }
            if Bool.random(using: &generator) { flow = Int.random(in: 0..<20, using: &generator) }
            if Int.random(in: 0..<30, using: &generator) == 0 { flowOwner[flow] = Int.random(in: 0..<3, using: &generator) }
            let owner = owners[flowOwner[flow]]
            let inbound = flow % 2 == 1
            let bytes = UInt64.random(in: 40...1500, using: &generator)
            let key = FlowKey(source: .v4(0x0A00_0001), destination: .v4(0x0A00_0100 + UInt32(flow)), protocolNumber: 6,
                              sourcePort: 1000 + UInt16(flow), destinationPort: 80, inbound: inbound, uid: nil)
            if repeats, let previous, previous == (flow, flowOwner[flow]),
               aggregator.addToLastFlow(bytes: bytes, at: second) {
                countedAsRepeats += 1
            } else {
                aggregator.add(flow: key, stamp: OwnerStamp(uid: UInt32(flowOwner[flow]), cgroupID: nil,
                                                           pid: Int32(flowOwner[flow]), confidence: 1),
                               direction: inbound ? .in : .out, protocolNumber: 6, remote: .v4(0x0A00_0100 + UInt32(flow)),
                               remotePort: 80, bytes: bytes, at: second) { owner }
            }
            previous = (flow, flowOwner[flow])
            let label = "\(owner.user)|\(inbound)"
            // Rows are per remote too: a packet counted in another flow's row shows.
            expected[TrafficAggregator.floor(second, 5), default: [:]][label + "|10.0.1.\(flow)", default: 0] += bytes
            seriesExpected[label, default: 0] += bytes
            if lastSeen[flow].map({ second - $0 > 2 }) ?? true { flowsExpected += 1 }
            lastSeen[flow] = second
            if Int.random(in: 0..<500, using: &generator) == 0 {
                aggregator.advance(to: second)
                buckets += aggregator.takeCompleted()
            }
        }
        buckets += aggregator.finish()
        var actual: [Int64: [String: UInt64]] = [:]
        for bucket in buckets {
            for (key, counts) in bucket.rows {
                actual[bucket.start, default: [:]]["\(key.user)|\(key.direction == .in)|\(key.remoteAddress)", default: 0]
                    += counts.bytes
            }
        }
        #expect(actual == expected)
        var series: [String: UInt64] = [:]
        for (index, key) in aggregator.seriesKeys.enumerated() {
            series["\(key.user)|\(key.direction == .in)", default: 0] += aggregator.seriesCounts[index].bytes
        }
        #expect(series == seriesExpected)
        // About half the packets follow one of their own flow; most of those in the same second.
        #expect(repeats ? countedAsRepeats > 5_000 : countedAsRepeats == 0)
        // With room for every flow, a flow is new exactly when first seen or back after idling;
        // with room for 8, forgotten flows count again when they come back.
        if maxFlows >= 20 {
            #expect(aggregator.total.flows == flowsExpected)
        } else {
            #expect(aggregator.total.flows >= flowsExpected)
        }
    }
}
