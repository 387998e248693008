import Accounting
import Sinks
import Testing
@testable import Views

@Suite struct HumanUnitsTests {
    @Test(arguments: [(0, "0 B"), (999, "999 B"), (1023, "1023 B"), (1024, "1.00 KiB"), (1536, "1.50 KiB"),
                      (12_900_000, "12.3 MiB"), (1 << 30, "1.00 GiB"), (500 << 30, "500 GiB")] as [(UInt64, String)])
    func bytes(value: UInt64, text: String) {
        #expect(HumanUnits.bytes(value) == text)
    }

    @Test func rates() {
        #expect(HumanUnits.rate(0) == "0 B/s")
        #expect(HumanUnits.rate(-5) == "0 B/s")
        #expect(HumanUnits.rate(2048) == "2.00 KiB/s")
    }
}

@Suite struct TopViewTests {
    static func series(_ program: String, _ direction: TrafficDirection, user: String = "alice") -> MetricSeries {
        MetricSeries(unit: "web.service", user: user, program: program, direction: direction, proto: "tcp", remote: "",
                     cgroup: "/system.slice/web.service")
    }

    static func snapshot(_ counts: [UInt64]) -> AccountingSnapshot {
        AccountingSnapshot(series: [series("/usr/bin/curl", .out), series("/usr/bin/curl", .in),
                                    series("/usr/bin/ping", .out, user: "bob")],
                           counts: counts.map { AccountingCounts(bytes: $0, packets: 1) },
                           total: AccountingCounts(), unaccounted: 0, activeFlows: 0)
    }

    @Test func ratesAreTheDifferenceOverTheIntervalAndRowsSortByIt() {
        let frame = TopFrame(current: Self.snapshot([10_000, 4_000, 90_000]), previous: Self.snapshot([2_000, 0, 89_000]),
                             seconds: 2, grouping: .program, sort: .rateOut, lostPackets: 3)
        #expect(frame.rows == [
            TopRow(label: "/usr/bin/curl", rateIn: 2_000, rateOut: 4_000, totalIn: 4_000, totalOut: 10_000),
            TopRow(label: "/usr/bin/ping", rateIn: 0, rateOut: 500, totalIn: 0, totalOut: 90_000),
        ])
        #expect(frame.rateOut == 4_500 && frame.rateIn == 2_000)
        let byTotal = TopFrame(current: Self.snapshot([10_000, 4_000, 90_000]), previous: nil, seconds: 2,
                               grouping: .user, sort: .total, lostPackets: 0)
        #expect(byTotal.rows.map(\.label) == ["bob", "alice"])
        #expect(byTotal.rows.allSatisfy { $0.rateIn == 0 && $0.rateOut == 0 }, "no rates before a second snapshot")
    }

    @Test func rendersAlignedColumnsWithinTheScreen() {
        let frame = TopFrame(current: Self.snapshot([10_000, 4_000, 90_000]), previous: Self.snapshot([2_000, 0, 89_000]),
                             seconds: 2, grouping: .program, sort: .rateOut, lostPackets: 3)
        let lines = frame.render(width: 80, height: 10, color: false, paused: true, interactive: true)
        #expect(lines.count == 10)
        #expect(lines.allSatisfy { $0.count <= 80 })
        #expect(lines[0].contains("by program") && lines[0].contains("lost 3 packets") && lines[0].contains("PAUSED"))
        #expect(lines[1].hasPrefix("PROGRAM") && lines[1].contains("OUT/s*"))
        #expect(lines[2].hasPrefix("/usr/bin/curl") && lines[2].contains("3.91 KiB/s") && lines[2].contains("9.77 KiB"))
        #expect(lines[9].hasPrefix("q quit"))
        let columns = lines[1...3].map { $0.count }
        #expect(Set(columns).count == 1, "rows as wide as the headings: \(columns)")
        let plain = frame.render(width: 80, height: 10, color: false, paused: false, interactive: false)
        #expect(plain.count == 4 && !plain.joined().contains("q quit"))
        #expect(!plain.joined().contains("\u{1B}"))
        #expect(frame.render(width: 80, height: 10, color: true, paused: false, interactive: false)[1].hasPrefix("\u{1B}[1m"))
    }

    @Test func aLongLabelKeepsItsEnd() {
        var snapshot = Self.snapshot([1, 1, 1])
        snapshot.series[0].program = "/opt/" + String(repeating: "x", count: 100) + "/bin/server"
        let frame = TopFrame(current: snapshot, previous: nil, seconds: 2, grouping: .program, sort: .total, lostPackets: 0)
        let line = frame.render(width: 60, height: 5, color: false, paused: false, interactive: false)[2]
        #expect(line.count <= 60 && line.hasPrefix("…") && line.contains("/bin/server"))
    }
}
