import Accounting
import Sinks

/// Turns scrapes of a daemon's `/metrics` back into the accounting totals the live view draws
/// (`top --from`): one series per label set of `nfowner_bytes_total`, with the packets and
/// flows of the same labels. A series keeps its index from scrape to scrape, as the daemon's
/// own snapshots do, so two snapshots give rates by position.
public struct MetricsSnapshotReader: Sendable {
    private var index: [[String: String]: Int] = [:]
    private var series: [MetricSeries] = []

    public init() {}

    /// What one scrape said: the totals, the packets lost, and which groupings it can feed.
    public struct Reading: Sendable {
        public var snapshot: AccountingSnapshot
        public var lostPackets: UInt64
        /// True when the series carry a `remote` label ([metrics] remote_labels).
        public var hasRemotes: Bool
        /// True when they carry a `cgroup` label.
        public var hasCgroups: Bool
    }

    /// Reads `samples`; throws when they hold no nfowner series at all (not nfowner's endpoint).
    public mutating func read(_ samples: [MetricSample]) throws(ReadError) -> Reading {
        var counts = [AccountingCounts](repeating: AccountingCounts(), count: series.count)
        var lost: UInt64 = 0
        var flowsActive = 0
        var sawNfowner = false
        var hasRemotes = false, hasCgroups = false
        for sample in samples {
            switch sample.name {
            case "nfowner_bytes_total", "nfowner_packets_total", "nfowner_flows_total":
                sawNfowner = true
                guard let direction = TrafficDirection(rawValue: sample.labels["direction"] ?? "") else { continue }
                let position: Int
                if let known = index[sample.labels] {
                    position = known
                } else {
                    position = series.count
                    index[sample.labels] = position
                    series.append(MetricSeries(unit: sample.labels["unit"] ?? "", user: sample.labels["user"] ?? "",
                                               program: sample.labels["program"] ?? "", direction: direction,
                                               proto: sample.labels["proto"] ?? "", remote: sample.labels["remote"] ?? "",
                                               cgroup: sample.labels["cgroup"] ?? ""))
                    counts.append(AccountingCounts())
                }
                hasRemotes = hasRemotes || sample.labels["remote"] != nil
                hasCgroups = hasCgroups || sample.labels["cgroup"] != nil
                let value = Self.count(sample.value)
                switch sample.name {
                case "nfowner_bytes_total": counts[position].bytes = value
                case "nfowner_packets_total": counts[position].packets = value
                default: counts[position].flows = value
                }
            case "nfowner_lost_packets_total":
                sawNfowner = true
                lost = Self.count(sample.value)
            case "nfowner_flows_active":
                sawNfowner = true
                flowsActive = Int(Self.count(sample.value))
            default:
                continue
            }
        }
        guard sawNfowner else { throw ReadError.notNfowner }
        var total = AccountingCounts()
        for count in counts {
            total.bytes &+= count.bytes
            total.packets &+= count.packets
            total.flows &+= count.flows
        }
        let snapshot = AccountingSnapshot(series: series, counts: counts, total: total, unaccounted: lost,
                                          activeFlows: flowsActive)
        return Reading(snapshot: snapshot, lostPackets: lost, hasRemotes: hasRemotes, hasCgroups: hasCgroups)
    }

    public enum ReadError: Error, Sendable, Equatable {
        /// The text held no nfowner series: another program's endpoint, or a wrong path.
        case notNfowner
    }

    /// A counter's value as a count: NaN, negatives and fractions are not counts.
    static func count(_ value: Double) -> UInt64 {
        guard value.isFinite, value > 0 else { return 0 }
        return value >= 1.8e19 ? UInt64.max : UInt64(value)
    }
}
