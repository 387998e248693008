import Accounting
import PacketModel
import PacketParsing
import Sinks
import Testing

@Suite struct AccountingSinkTests {
    /// One UDP packet of `length` bytes from 10.0.0.1:`sourcePort` to 10.0.0.2:53.
    static func packet(sourcePort: UInt16, length: Int) -> PacketSummary {
        PacketSummary(family: .ipv4, source: .v4(0x0A00_0001), destination: .v4(0x0A00_0002), protocolNumber: 17,
                      totalLength: length, fragment: nil,
                      transport: .udp(PortPair(source: sourcePort, destination: 53)))
    }

    /// Every delivered row, added up over the buckets (a run may cross a second or a bucket).
    static func rows(_ buckets: [TrafficBucket]) -> [AccountingKey: AccountingCounts] {
        var rows: [AccountingKey: AccountingCounts] = [:]
        for bucket in buckets {
            for (key, counts) in bucket.rows { rows[key, default: AccountingCounts()] += counts }
        }
        return rows
    }

    /// Packets marked as repeats of the one before (`PacketFacts.repeatsPrevious`) are gathered
    /// and added at once; the buckets come out exactly as when every packet is added alone,
    /// across flushes, an owner that changes mid-flow, and flows that alternate.
    @Test func repeatsCountLikeSinglePackets() throws {
        var script: [(port: UInt16, uid: UInt32, length: Int)] = []
        var generator = SystemRandomNumberGenerator()
        var port: UInt16 = 1000
        var uid: UInt32 = 1000
        for _ in 0..<5_000 {
            if Int.random(in: 0..<4, using: &generator) == 0 { port = UInt16.random(in: 1000...1004, using: &generator) }
            if Int.random(in: 0..<100, using: &generator) == 0 { uid = uid == 1000 ? 1001 : 1000 }
            script.append((port, uid, Int.random(in: 28...1500, using: &generator)))
        }
        func run(markingRepeats: Bool) throws -> (rows: [AccountingKey: AccountingCounts], total: AccountingCounts) {
            var delivered: [TrafficBucket] = []
            let sink = AccountingSink(limits: .init(bucketSeconds: 60), userName: { "user\($0)" }) { delivered += $0 }
            var previous: (port: UInt16, uid: UInt32)?
            for (index, step) in script.enumerated() {
                let facts = PacketFacts(packet: Self.packet(sourcePort: step.port, length: step.length),
                                        direction: .outbound, uid: step.uid, gid: step.uid, cgroupID: 7, attribution: nil,
                                        repeatsPrevious: markingRepeats && previous.map { $0 == (step.port, step.uid) } ?? false)
                sink.consume(facts)
                previous = (step.port, step.uid)
                if index % 64 == 63 { try sink.flush() }
            }
            sink.finish()
            return (Self.rows(delivered), sink.published.withLock { $0.total })
        }
        let alone = try run(markingRepeats: false)
        let gathered = try run(markingRepeats: true)
        #expect(gathered.rows == alone.rows)
        #expect(gathered.total == alone.total)
        #expect(alone.total.packets == 5_000)
        #expect(alone.total.bytes == script.reduce(0) { $0 + UInt64($1.length) })
        #expect(Set(alone.rows.keys.map(\.user)) == ["user1000", "user1001"])
    }
}
