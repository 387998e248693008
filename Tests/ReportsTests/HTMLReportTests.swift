import Accounting
@testable import Reports
import Testing

@Suite struct TrafficChartTests {
    static func point(_ start: Int64, _ unit: String, _ bytes: UInt64, _ direction: TrafficDirection = .out,
                      mode: AccountingMode = .packets) -> ReportTimeline.Point {
        ReportTimeline.Point(start: start, keys: [unit], direction: direction, mode: mode, bytes: bytes)
    }

    @Test func theBiggestGroupsAreKeptAndTheRestFoldedIntoOther() {
        var points: [ReportTimeline.Point] = []
        for unit in 0..<5 {
            for minute in 0..<3 { points.append(Self.point(Int64(minute) * 60, "u\(unit)", UInt64(unit + 1) * 100)) }
        }
        points.append(Self.point(0, "u4", 7, .in))
        let chart = TrafficChart(direction: .out, timeline: ReportTimeline(bucketSeconds: 60, points: points),
                                 since: 0, until: 180, showMode: false, maxSeries: 2)
        #expect(chart.slotCount == 3)
        #expect(chart.slotSeconds == 60)
        #expect(chart.series.map(\.label) == ["u4", "u3", "other (3 groups)"])
        #expect(chart.series.map(\.isOther) == [false, false, true])
        #expect(chart.series[2].bytes == [600, 600, 600])
        // Every stack is the whole traffic of its slot; nothing inbound leaks in.
        #expect((0..<3).map(chart.stackHeight) == [1500, 1500, 1500])
        #expect(chart.total == 4500)
    }

    @Test func aLongRangeIsCutIntoAtMostMaxSlotsOfWholeBuckets() {
        // A week of minutes: 10,080 buckets into at most 120 slots of 84 minutes.
        let week: Int64 = 7 * 86400
        let points = stride(from: Int64(0), to: week, by: 60).map { Self.point($0, "a", 1) }
        let chart = TrafficChart(direction: .out, timeline: ReportTimeline(bucketSeconds: 60, points: points),
                                 since: 0, until: week, showMode: false)
        #expect(chart.slotCount <= TrafficChart.defaultMaxSlots)
        #expect(chart.slotSeconds % 60 == 0)
        #expect(chart.slotSeconds == 84 * 60)
        #expect(chart.total == UInt64(week / 60))
        #expect((0..<chart.slotCount).allSatisfy { chart.stackHeight($0) == 84 })
    }

    @Test func anUnalignedStartBeginsAtItsBucketAndModesStayApart() {
        let points = [Self.point(60, "a", 10), Self.point(60, "a", 20, mode: .kernel), Self.point(120, "", 5)]
        let chart = TrafficChart(direction: .out, timeline: ReportTimeline(bucketSeconds: 60, points: points),
                                 since: 75, until: 200, showMode: true)
        #expect(chart.origin == 60)
        #expect(chart.slotCount == 3)
        #expect(chart.series.map(\.label) == ["a (kernel)", "a (packets)", "- (packets)"])
        #expect(chart.series[2].bytes == [0, 5, 0])
    }

    @Test func noPointsMakeAnEmptyChart() {
        let chart = TrafficChart(direction: .in, timeline: ReportTimeline(bucketSeconds: 60, points: []),
                                 since: 0, until: 3600, showMode: false)
        #expect(chart.series.isEmpty)
        #expect(chart.total == 0)
        #expect(chart.slotCount == 60)
    }
}

@Suite struct HTMLReportTests {
    @Test func theAxisTopIsRoundAndAboveTheHighestStack() {
        for (maximum, top) in [(0.0, 4.0), (3.0, 4.0), (5.0, 8.0), (900.0, 1000.0), (1500.0, 2048.0),
                               (6.3 * 1024, 8 * 1024), (3.0 * 1_048_576, 4 * 1_048_576)] as [(Double, Double)] {
            let axis = HTMLReport.RateAxis(maximum: maximum)
            #expect(axis.top == top, "maximum \(maximum)")
            #expect(axis.top >= maximum)
            #expect(axis.ticks.count == 4 && axis.ticks.last == axis.top)
        }
    }

    @Test func timeLabelsFallOnRoundTimes() {
        #expect(HTMLReport.labelStep(span: 3600, slotSeconds: 60) == 600)
        #expect(HTMLReport.labelStep(span: 86400, slotSeconds: 720) == 14400 || HTMLReport.labelStep(span: 86400, slotSeconds: 720) == 21600)
        #expect(HTMLReport.labelStep(span: 7 * 86400, slotSeconds: 5040) % 5040 == 0)
        #expect(HTMLReport.timeLabel(1_764_934_200, span: 3600) == "11:30")
        #expect(HTMLReport.timeLabel(1_764_934_200, span: 7 * 86400) == "12-05 11:30")
    }

    @Test func everyTextIsEscaped() {
        #expect(HTMLReport.escape("<a href='x'>&\"</a>") == "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;")
        #expect(HTMLReport.escape("bell\u{07}") == "bell\u{FFFD}")
    }

    @Test func thePageHasBothDirectionsTheFactsAndTheTable() {
        let result = ReportResult(since: 0, until: 120, dimensions: [.program],
                                  rows: [ReportRow(keys: ["/usr/bin/<curl>"], direction: .out, mode: .packets,
                                                   counts: AccountingCounts(bytes: 3000, packets: 3, flows: 1))],
                                  unaccountedPackets: 2, modes: [.packets])
        let timeline = ReportTimeline(bucketSeconds: 60, points: [
            ReportTimeline.Point(start: 0, keys: ["/usr/bin/<curl>"], direction: .out, mode: .packets, bytes: 1000),
            ReportTimeline.Point(start: 60, keys: ["/usr/bin/<curl>"], direction: .out, mode: .packets, bytes: 2000),
        ])
        let html = HTMLReport.render(result, timeline: timeline, generatedAt: 120)
        #expect(html.hasPrefix("<!DOCTYPE html>"))
        #expect(html.components(separatedBy: "<svg class=\"chart\"").count == 2, "one chart: nothing came in")
        #expect(html.contains("<section class=\"direction\" id=\"in\">\n<h2>Received (in): 0 B</h2>\n<p class=\"empty\">"))
        #expect(html.components(separatedBy: "<rect ").count - 1 == 2)
        #expect(html.contains("<title>/usr/bin/&lt;curl&gt;: 1000 B from 1970-01-01 00:00:00 UTC (17 B/s)</title>"))
        #expect(html.contains("<dd id=\"unaccounted\">2 packets</dd>"))
        #expect(html.contains("<td>/usr/bin/&lt;curl&gt;</td><td>out</td><td class=\"n\" title=\"3000 bytes\">2.9 KiB</td>"))
        #expect(!html.contains("<script"))
    }
}
