import Accounting
import Sinks

/// What `top` groups rows by.
public enum TopGrouping: String, Sendable, CaseIterable {
    case unit, cgroup, user, program, remote

    /// The key that switches to it.
    public var key: Character {
        switch self {
        case .unit: "s"
        case .cgroup: "c"
        case .user: "u"
        case .program: "p"
        case .remote: "r"
        }
    }

    var heading: String {
        switch self {
        case .unit: "UNIT"
        case .cgroup: "CGROUP"
        case .user: "USER"
        case .program: "PROGRAM"
        case .remote: "REMOTE"
        }
    }

    func label(of series: MetricSeries) -> String {
        let value = switch self {
        case .unit: series.unit
        case .cgroup: series.cgroup
        case .user: series.user
        case .program: series.program
        case .remote: series.remote
        }
        return value.isEmpty ? "-" : value
    }
}

/// The column rows are sorted by (descending).
public enum TopSort: String, Sendable, CaseIterable {
    case rateIn = "in", rateOut = "out", total

    public var key: Character {
        switch self {
        case .rateIn: "i"
        case .rateOut: "o"
        case .total: "t"
        }
    }
}

/// One row of the live view: a group's rates over the last interval and its totals.
public struct TopRow: Sendable, Equatable {
    public var label: String
    public var rateIn: Double
    public var rateOut: Double
    public var totalIn: UInt64
    public var totalOut: UInt64
}

/// One refresh of the live view, computed from two snapshots of the running totals.
public struct TopFrame: Sendable, Equatable {
    public var grouping: TopGrouping
    public var sort: TopSort
    public var rows: [TopRow]
    public var rateIn: Double
    public var rateOut: Double
    public var lostPackets: UInt64
    public var intervalSeconds: Double
    /// A line under the header (a daemon out of reach, a grouping it cannot give), or nil.
    public var notice: String?

    /// The rows of `current` grouped by `grouping`, with rates since `previous` (nil: none yet)
    /// over `seconds`, sorted by `sort` (then by label).
    public init(current: AccountingSnapshot, previous: AccountingSnapshot?, seconds: Double, grouping: TopGrouping,
                sort: TopSort, lostPackets: UInt64) {
        var byLabel: [String: TopRow] = [:]
        var rateIn = 0.0, rateOut = 0.0
        for (index, series) in current.series.enumerated() where index < current.counts.count {
            let label = grouping.label(of: series)
            let now = current.counts[index]
            let before = previous.flatMap { index < $0.counts.count ? $0.counts[index] : nil } ?? AccountingCounts()
            let rate = previous == nil || seconds <= 0 ? 0 : Double(now.bytes &- min(before.bytes, now.bytes)) / seconds
            var row = byLabel[label] ?? TopRow(label: label, rateIn: 0, rateOut: 0, totalIn: 0, totalOut: 0)
            if series.direction == .in {
                row.rateIn += rate
                row.totalIn &+= now.bytes
                rateIn += rate
            } else {
                row.rateOut += rate
                row.totalOut &+= now.bytes
                rateOut += rate
            }
            byLabel[label] = row
        }
        func measure(_ row: TopRow) -> Double {
            switch sort {
            case .rateIn: row.rateIn
            case .rateOut: row.rateOut
            case .total: Double(row.totalIn &+ row.totalOut)
            }
        }
        rows = byLabel.values.sorted { measure($0) != measure($1) ? measure($0) > measure($1) : $0.label < $1.label }
        self.grouping = grouping
        self.sort = sort
        self.rateIn = rateIn
        self.rateOut = rateOut
        self.lostPackets = lostPackets
        intervalSeconds = seconds
    }

    /// The frame as lines of at most `width` columns, at most `height` lines (the header, the
    /// column headings, as many rows as fit, the key line). `color`: bold headings (only on a
    /// terminal, never with NO_COLOR).
    public func render(width: Int, height: Int, color: Bool, paused: Bool, interactive: Bool) -> [String] {
        let width = max(40, width)
        let numbers = 11
        let labelWidth = width - 4 * (numbers + 1)
        let header = "nfowner top — by \(grouping.rawValue) — in \(HumanUnits.rate(rateIn))  out \(HumanUnits.rate(rateOut))"
            + " — lost \(lostPackets) packet\(lostPackets == 1 ? "" : "s")" + (paused ? " — PAUSED" : "")
        var columns = pad(grouping.heading, labelWidth)
        for (title, sortKey) in [("IN/s", TopSort.rateIn), ("OUT/s", .rateOut), ("IN total", .total), ("OUT total", .total)] {
            let marked = sortKey == sort && (sortKey != .total || title == "IN total") ? title + "*" : title
            columns += " " + padLeft(marked, numbers)
        }
        var lines = [clip(header, width)]
        if let notice { lines.append(String(("! " + notice).prefix(width))) }
        lines.append(bold(clip(columns, width), color))
        let keyLine = "q quit  u user  s unit  c cgroup  p program  r remote  i o t sort  space pause"
        let room = max(0, height - lines.count - (interactive ? 1 : 0))
        for row in rows.prefix(room) {
            var line = pad(clip(row.label, labelWidth), labelWidth)
            line += " " + padLeft(HumanUnits.rate(row.rateIn), numbers) + " " + padLeft(HumanUnits.rate(row.rateOut), numbers)
            line += " " + padLeft(HumanUnits.bytes(row.totalIn), numbers) + " " + padLeft(HumanUnits.bytes(row.totalOut), numbers)
            lines.append(clip(line, width))
        }
        if rows.isEmpty && room > 0 { lines.append("(no traffic yet)") }
        if interactive {
            while lines.count < height - 1 { lines.append("") }
            lines.append(bold(clip(keyLine, width), color))
        }
        return lines
    }

    private func pad(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
    }

    private func padLeft(_ text: String, _ width: Int) -> String {
        text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
    }

    /// At most `width` characters; a long label keeps its end (the part of a path that names it).
    private func clip(_ text: String, _ width: Int) -> String {
        guard text.count > width, width > 1 else { return text }
        return "…" + text.suffix(width - 1)
    }

    private func bold(_ text: String, _ color: Bool) -> String { color ? "\u{1B}[1m" + text + "\u{1B}[0m" : text }
}
