import Accounting

/// `report --format html`: one self-contained page (no script, no network: a Content Security
/// Policy forbids both) with a stacked bar chart of bytes over time for each direction, a
/// legend with each group's total, and the report's table below. Pure: data in, text out.
public enum HTMLReport {
    /// The largest number of table rows written out; the rest are counted in a note.
    public static let maxTableRows = 1000

    /// Colour-blind-safe categorical colours (Tableau 10); "other" is grey.
    static let palette = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                          "#edc948", "#b07aa1", "#ff9da7", "#9c755f"]
    static let otherColor = "#9d9d9d"

    public static func render(_ result: ReportResult, timeline: ReportTimeline, generatedAt: Int64) -> String {
        let by = result.dimensions.map(\.rawValue).joined(separator: ", ")
        let modes = result.modes.isEmpty ? "none recorded" : result.modes.map(\.rawValue).joined(separator: " and ")
        let showMode = result.modes.count > 1
        var page = """
            <!DOCTYPE html>
            <html lang="en">
            <head>
            <meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="generator" content="nfowner report">
            <title>nfowner traffic \(escape(ReportTime.readable(result.since))) – \(escape(ReportTime.readable(result.until))) UTC</title>
            <style>\(style)</style>
            </head>
            <body>
            <h1>Traffic by \(escape(by))</h1>
            <dl class="facts">
            <dt>From</dt><dd>\(escape(ReportTime.readable(result.since))) UTC</dd>
            <dt>To</dt><dd>\(escape(ReportTime.readable(result.until))) UTC (\(escape(ReportTime.durationText(result.until - result.since))))</dd>
            <dt>Counted from</dt><dd id="modes">\(escape(modes))</dd>
            <dt>Unaccounted</dt><dd id="unaccounted">\(result.unaccountedPackets) packets</dd>
            <dt>Generated</dt><dd>\(escape(ReportTime.readable(generatedAt))) UTC by nfowner report</dd>
            </dl>

            """
        for direction in [TrafficDirection.out, .in] {
            let chart = TrafficChart(direction: direction, timeline: timeline, since: result.since,
                                     until: result.until, showMode: showMode)
            page += section(chart)
        }
        page += table(result)
        page += "</body>\n</html>\n"
        return page
    }

    // MARK: Chart

    static let width = 960.0
    static let height = 280.0
    static let left = 78.0, right = 12.0, top = 12.0, bottom = 34.0

    static func section(_ chart: TrafficChart) -> String {
        let title = chart.direction == .out ? "Sent (out)" : "Received (in)"
        var html = "<section class=\"direction\" id=\"\(chart.direction.rawValue)\">\n"
        html += "<h2>\(title): \(escape(ReportRendering.humanBytes(chart.total)))</h2>\n"
        guard chart.total > 0 else {
            return html + "<p class=\"empty\">No traffic in this direction in the range.</p>\n</section>\n"
        }
        html += "<p class=\"caption\">Average bytes per second in each \(escape(ReportTime.durationText(chart.slotSeconds))) bar, "
        html += "stacked by group; point at a bar for its bytes.</p>\n"
        html += svg(chart)
        html += "<ul class=\"legend\">\n"
        for (index, series) in chart.series.enumerated() {
            html += "<li><span class=\"swatch\" style=\"background:\(color(index, series))\"></span>"
            html += "<span class=\"label\">\(escape(series.label))</span> "
            html += "<span class=\"total\">\(escape(ReportRendering.humanBytes(series.total)))</span></li>\n"
        }
        return html + "</ul>\n</section>\n"
    }

    static func color(_ index: Int, _ series: TrafficChart.Series) -> String {
        series.isOther ? otherColor : palette[index % palette.count]
    }

    /// Stacked bars, one per slot, in bytes per second (the slot's bytes over its length) so
    /// that charts of different ranges read alike; each bar segment names its group in a tooltip.
    static func svg(_ chart: TrafficChart) -> String {
        let plotWidth = width - left - right
        let plotHeight = height - top - bottom
        let slotRates = (0..<chart.slotCount).map { Double(chart.stackHeight($0)) / Double(chart.slotSeconds) }
        let axis = RateAxis(maximum: slotRates.max() ?? 0)
        let slotWidth = plotWidth / Double(max(1, chart.slotCount))
        let gap = slotWidth >= 4 ? 1.0 : 0
        var out = "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 \(number(width)) \(number(height))\" "
        out += "width=\"\(number(width))\" height=\"\(number(height))\" xmlns=\"http://www.w3.org/2000/svg\">\n"
        out += "<title>Bytes per second \(chart.direction == .out ? "sent" : "received"), stacked by group</title>\n"
        // Grid and y labels.
        for tick in axis.ticks {
            let y = top + plotHeight - plotHeight * tick / axis.top
            out += "<line class=\"grid\" x1=\"\(number(left))\" x2=\"\(number(width - right))\" y1=\"\(number(y))\" y2=\"\(number(y))\"/>"
            out += "<text class=\"ylabel\" x=\"\(number(left - 6))\" y=\"\(number(y + 4))\">"
            out += "\(escape(rateText(tick)))</text>\n"
        }
        // Bars, bottom-up in series order.
        for slot in 0..<chart.slotCount {
            var base = 0.0
            let x = left + Double(slot) * slotWidth
            let slotStart = chart.origin + Int64(slot) * chart.slotSeconds
            for (index, series) in chart.series.enumerated() where series.bytes[slot] > 0 {
                let rate = Double(series.bytes[slot]) / Double(chart.slotSeconds)
                let barHeight = plotHeight * rate / axis.top
                let y = top + plotHeight - plotHeight * base / axis.top - barHeight
                base += rate
                out += "<rect x=\"\(number(x))\" y=\"\(number(y))\" width=\"\(number(max(0.5, slotWidth - gap)))\" "
                out += "height=\"\(number(max(0.5, barHeight)))\" fill=\"\(color(index, series))\">"
                out += "<title>\(escape(series.label)): \(escape(ReportRendering.humanBytes(series.bytes[slot]))) "
                out += "from \(escape(ReportTime.readable(slotStart))) UTC (\(escape(rateText(rate))))</title></rect>\n"
            }
        }
        // The x axis: a line and up to seven time labels on slot boundaries.
        let axisY = top + plotHeight
        out += "<line class=\"axis\" x1=\"\(number(left))\" x2=\"\(number(width - right))\" y1=\"\(number(axisY))\" y2=\"\(number(axisY))\"/>\n"
        let span = Int64(chart.slotCount) * chart.slotSeconds
        let step = labelStep(span: span, slotSeconds: chart.slotSeconds)
        var time = TrafficChart.floor(chart.origin, to: step)
        if time < chart.origin { time += step }
        while time <= chart.origin + span {
            let x = left + plotWidth * Double(time - chart.origin) / Double(span)
            out += "<line class=\"tick\" x1=\"\(number(x))\" x2=\"\(number(x))\" y1=\"\(number(axisY))\" y2=\"\(number(axisY + 4))\"/>"
            out += "<text class=\"xlabel\" x=\"\(number(x))\" y=\"\(number(axisY + 18))\">"
            out += "\(escape(timeLabel(time, span: span)))</text>\n"
            time += step
        }
        return out + "</svg>\n"
    }

    /// The y axis: a round top (1, 2 or 5 times a power of 1024 or 10 of the unit) above the
    /// highest stack, and its quarter marks.
    struct RateAxis {
        var top: Double
        var ticks: [Double]

        init(maximum: Double) {
            var unit = 1.0
            while maximum / unit >= 1024 { unit *= 1024 }
            // In bytes, nothing finer than 1 B/s a tick.
            let value = max(maximum / unit, unit == 1 ? 4 : 0)
            var power = 1.0
            while power * 4 < value { power *= 10 }
            while power / 10 * 4 >= value { power /= 10 }
            let step = [0.2, 0.25, 0.5, 1].map { $0 * power }.first { $0 * 4 >= value } ?? power
            top = step * unit * 4
            ticks = (1...4).map { Double($0) * step * unit }
        }
    }

    static func rateText(_ bytesPerSecond: Double) -> String {
        ReportRendering.humanBytes(UInt64(max(0, bytesPerSecond).rounded())) + "/s"
    }

    /// The distance between time labels: a round length (5 min, 1 h, 1 d, …), a whole number
    /// of slots, that gives at most seven labels.
    static func labelStep(span: Int64, slotSeconds: Int64) -> Int64 {
        let round: [Int64] = [60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400, 172_800, 604_800]
        for step in round where step % slotSeconds == 0 && span / step <= 6 { return step }
        let slots = max(1, (span / slotSeconds + 5) / 6)
        return slots * slotSeconds
    }

    /// "14:30" within two days, "12-05 14:30" beyond.
    static func timeLabel(_ time: Int64, span: Int64) -> String {
        let text = ReportTime.readable(time)  // "2026-12-05 14:30:00"
        let minutes = String(text.dropFirst(11).prefix(5))
        return span <= 2 * 86400 ? minutes : String(text.dropFirst(5).prefix(5)) + " " + minutes
    }

    static func number(_ value: Double) -> String {
        let tenths = (value * 10).rounded()
        let whole = Int(tenths / 10)
        let fraction = abs(Int(tenths) % 10)
        return fraction == 0 ? String(whole) : "\(value < 0 && whole == 0 ? "-" : "")\(whole).\(fraction)"
    }

    // MARK: Table

    static func table(_ result: ReportResult) -> String {
        guard !result.rows.isEmpty else { return "<p class=\"empty\">No traffic recorded in this range.</p>\n" }
        let showMode = result.modes.count > 1
        var html = "<h2>Totals</h2>\n<table class=\"rows\">\n<thead><tr>"
        for dimension in result.dimensions { html += "<th>\(escape(dimension.rawValue))</th>" }
        html += "<th>direction</th>" + (showMode ? "<th>mode</th>" : "")
        html += "<th class=\"n\">bytes</th><th class=\"n\">packets</th><th class=\"n\">flows</th></tr></thead>\n<tbody>\n"
        for row in result.rows.prefix(maxTableRows) {
            html += "<tr>"
            for key in row.keys { html += "<td>\(key.isEmpty ? "-" : escape(key))</td>" }
            html += "<td>\(row.direction.rawValue)</td>" + (showMode ? "<td>\(row.mode.rawValue)</td>" : "")
            html += "<td class=\"n\" title=\"\(row.counts.bytes) bytes\">\(escape(ReportRendering.humanBytes(row.counts.bytes)))</td>"
            html += "<td class=\"n\">\(row.counts.packets)</td><td class=\"n\">\(row.counts.flows)</td></tr>\n"
        }
        html += "</tbody>\n</table>\n"
        if result.rows.count > maxTableRows {
            html += "<p class=\"note\">\(result.rows.count - maxTableRows) smaller rows not shown: "
            html += "<code>--format csv</code> lists every row.</p>\n"
        }
        return html
    }

    // MARK: Text

    /// Escapes text for HTML element content and double- or single-quoted attributes.
    public static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            case _ where scalar.value < 0x20 && scalar != "\n" && scalar != "\t": out += "\u{FFFD}"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    static let style = """
        body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff;max-width:1000px}\
        h1{font-size:20px;margin:0 0 8px}h2{font-size:16px;margin:24px 0 8px}\
        dl.facts{display:grid;grid-template-columns:max-content auto;gap:2px 12px;margin:0}dt{color:#666}dd{margin:0}\
        svg.chart{display:block;max-width:100%;height:auto}\
        .grid{stroke:#e4e4e4;stroke-width:1}.axis{stroke:#888;stroke-width:1}\
        .ylabel{font-size:11px;fill:#555;text-anchor:end}.xlabel{font-size:11px;fill:#555;text-anchor:middle}\
        .tick{stroke:#888;stroke-width:1}.caption{color:#666;margin:0 0 4px}\
        ul.legend{list-style:none;padding:0;margin:8px 0;display:flex;flex-wrap:wrap;gap:4px 16px}\
        .swatch{display:inline-block;width:12px;height:12px;margin-right:6px;vertical-align:-1px;border-radius:2px}\
        .total{color:#666}\
        table.rows{border-collapse:collapse;font-variant-numeric:tabular-nums}\
        table.rows th,table.rows td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}\
        table.rows .n{text-align:right}.empty,.note{color:#666}
        """
}
