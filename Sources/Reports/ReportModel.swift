import Accounting

/// What a report groups rows by, besides direction and mode (always kept apart). The raw values
/// are the names used on the command line (`--by`), as JSON keys and as CSV column names.
public enum ReportDimension: String, CaseIterable, Sendable, Hashable {
    /// The systemd unit ("nginx.service").
    case unit
    /// The cgroup path ("/system.slice/nginx.service").
    case cgroup
    /// The owning user's name (or uid).
    case user
    /// The program: executable path, or comm.
    case program
    /// "tcp", "udp", "icmp", …
    case proto
    /// The far end: "ADDR:PORT", "[v6]:PORT", "ADDR" (no port), or "other" (folded).
    case remote
}

/// One line of a report: the values of the chosen dimensions ("" = unknown), and the sums.
public struct ReportRow: Sendable, Equatable {
    /// One value per dimension of the report, in the report's dimension order; "" when unknown.
    public var keys: [String]
    public var direction: TrafficDirection
    /// Which counting produced the figures (packets: every packet through NFLOG; kernel: nft counters).
    public var mode: AccountingMode
    public var counts: AccountingCounts

    public init(keys: [String], direction: TrafficDirection, mode: AccountingMode, counts: AccountingCounts) {
        self.keys = keys
        self.direction = direction
        self.mode = mode
        self.counts = counts
    }
}

/// A report over [since, until): rows grouped by `dimensions` + direction + mode, and the
/// packets the kernel dropped before nfowner counted them.
public struct ReportResult: Sendable, Equatable {
    /// Unix seconds; the range is [since, until) by bucket start.
    public var since: Int64
    public var until: Int64
    public var dimensions: [ReportDimension]
    /// Sorted: bytes descending, then packets descending, then keys, direction and mode ascending.
    public var rows: [ReportRow]
    /// Packets lost before they were counted (sequence gaps, ENOBUFS), summed over the range.
    public var unaccountedPackets: UInt64
    /// The modes of the buckets in the range (packets first), empty when the range has none.
    public var modes: [AccountingMode]

    public init(since: Int64, until: Int64, dimensions: [ReportDimension], rows: [ReportRow],
                unaccountedPackets: UInt64 = 0, modes: [AccountingMode] = []) {
        self.since = since
        self.until = until
        self.dimensions = dimensions
        self.rows = rows.sorted(by: ReportResult.order)
        self.unaccountedPackets = unaccountedPackets
        self.modes = modes.sorted { $0.sortIndex < $1.sortIndex }
    }

    /// The report's row order: biggest first, and a stable order among equals.
    static func order(_ a: ReportRow, _ b: ReportRow) -> Bool {
        if a.counts.bytes != b.counts.bytes { return a.counts.bytes > b.counts.bytes }
        if a.counts.packets != b.counts.packets { return a.counts.packets > b.counts.packets }
        if a.keys != b.keys { return a.keys.lexicographicallyPrecedes(b.keys) }
        if a.direction != b.direction { return a.direction == .out }
        return a.mode.sortIndex < b.mode.sortIndex
    }
}

extension AccountingMode {
    fileprivate var sortIndex: Int { self == .packets ? 0 : 1 }
}

/// How a remote end is written in reports.
public enum RemoteEndpoint {
    /// "ADDR:PORT", "[v6]:PORT", "ADDR" when there is no port, `other` for folded rows, and ""
    /// when no address was kept (unknown).
    public static func text(address: String, port: UInt16?) -> String {
        if address.isEmpty || address == AccountingKey.other { return address }
        guard let port else { return address }
        return address.contains(":") ? "[\(address)]:\(port)" : "\(address):\(port)"
    }
}
