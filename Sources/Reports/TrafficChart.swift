import Accounting

/// One direction's traffic over time, ready to draw as stacked bars: the range cut into at
/// most `maxSlots` equal slots (whole buckets each), the biggest `maxSeries` groups by bytes,
/// and the rest folded into one "other" series so that every slot's stack is the whole traffic.
public struct TrafficChart: Sendable, Equatable {
    public struct Series: Sendable, Equatable {
        /// The group's values joined with " · " ("-" for unknown), or "other (N groups)".
        public var label: String
        /// Bytes per slot.
        public var bytes: [UInt64]
        public var total: UInt64
        /// True for the folded remainder.
        public var isOther: Bool
    }

    public var direction: TrafficDirection
    /// Unix seconds: where slot 0 starts.
    public var origin: Int64
    public var slotSeconds: Int64
    public var slotCount: Int
    /// Biggest first; "other", when there is one, last.
    public var series: [Series]

    public static let defaultMaxSeries = 8
    public static let defaultMaxSlots = 120

    /// `showMode`: the range holds both accounting modes, so a group's label says which one
    /// counted it (the two are never added together).
    public init(direction: TrafficDirection, timeline: ReportTimeline, since: Int64, until: Int64, showMode: Bool,
                maxSeries: Int = TrafficChart.defaultMaxSeries, maxSlots: Int = TrafficChart.defaultMaxSlots) {
        let bucket = timeline.bucketSeconds
        origin = Self.floor(since, to: bucket)
        let span = max(bucket, until - origin)
        let bucketsPerSlot = max(1, (span / bucket + Int64(max(1, maxSlots)) - 1) / Int64(max(1, maxSlots)))
        slotSeconds = bucket * bucketsPerSlot
        slotCount = Int((span + slotSeconds - 1) / slotSeconds)
        self.direction = direction

        var perGroup: [String: [UInt64]] = [:]
        var totals: [String: UInt64] = [:]
        for point in timeline.points where point.direction == direction && point.start >= origin {
            let slot = Int((point.start - origin) / slotSeconds)
            guard slot < slotCount else { continue }
            let label = Self.label(point.keys, mode: showMode ? point.mode : nil)
            perGroup[label, default: [UInt64](repeating: 0, count: slotCount)][slot] &+= point.bytes
            totals[label, default: 0] &+= point.bytes
        }
        let ranked = totals.sorted { $0.value != $1.value ? $0.value > $1.value : $0.key < $1.key }
        let keep = max(0, maxSeries)
        series = ranked.prefix(keep).map { Series(label: $0.key, bytes: perGroup[$0.key]!, total: $0.value, isOther: false) }
        let rest = ranked.dropFirst(keep)
        if !rest.isEmpty {
            var bytes = [UInt64](repeating: 0, count: slotCount)
            for (label, _) in rest {
                for (slot, value) in perGroup[label]!.enumerated() { bytes[slot] &+= value }
            }
            let total = rest.reduce(UInt64(0)) { $0 &+ $1.value }
            series.append(Series(label: "other (\(rest.count) groups)", bytes: bytes, total: total, isOther: true))
        }
    }

    /// The sum of every series in `slot`: the height of its stack.
    public func stackHeight(_ slot: Int) -> UInt64 {
        series.reduce(0) { $0 &+ (slot < $1.bytes.count ? $1.bytes[slot] : 0) }
    }

    public var total: UInt64 { series.reduce(0) { $0 &+ $1.total } }

    static func label(_ keys: [String], mode: AccountingMode?) -> String {
        let text = keys.isEmpty ? "all" : keys.map { $0.isEmpty ? "-" : $0 }.joined(separator: " · ")
        guard let mode else { return text }
        return "\(text) (\(mode.rawValue))"
    }

    static func floor(_ value: Int64, to step: Int64) -> Int64 {
        value >= 0 ? value / step * step : -((-value + step - 1) / step * step)
    }
}
