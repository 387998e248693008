/// What one row of accounting counts under: the owner (unit, cgroup, user, program), the
/// direction, the protocol and the remote end. Empty strings mean "not known" (a packet no
/// socket owned has no program); `AccountingKey.other` marks what the bounds folded together.
public struct AccountingKey: Hashable, Sendable {
    /// The systemd unit of the owner's cgroup ("nginx.service"); "" outside units.
    public var unit: String
    /// The owner's cgroup path ("/system.slice/nginx.service"); "" when unknown.
    public var cgroup: String
    /// The owning user's name, or the uid in decimal when it has no name; "" for no owner.
    public var user: String
    /// The program: its executable's path, or its comm when the path is unknown; "" when no
    /// process was named.
    public var program: String
    public var direction: TrafficDirection
    /// "tcp", "udp", "icmp", "icmpv6", … or the protocol number in decimal.
    public var proto: String
    /// The far end's address ("" when none was kept, `other` when folded).
    public var remoteAddress: String
    /// The far end's port (TCP, UDP, SCTP…); nil for protocols without ports and folded rows.
    public var remotePort: UInt16?

    public init(unit: String = "", cgroup: String = "", user: String = "", program: String = "",
                direction: TrafficDirection, proto: String, remoteAddress: String = "", remotePort: UInt16? = nil) {
        self.unit = unit
        self.cgroup = cgroup
        self.user = user
        self.program = program
        self.direction = direction
        self.proto = proto
        self.remoteAddress = remoteAddress
        self.remotePort = remotePort
    }

    /// What a bound folds distinct values into.
    public static let other = "other"
}

/// Out: packets local sockets sent; in: packets delivered to local sockets.
public enum TrafficDirection: String, Sendable, Hashable, CaseIterable {
    case out
    case `in`
}

/// Totals of one row.
public struct AccountingCounts: Sendable, Equatable {
    /// IP datagram bytes (the header's total length), never the captured length.
    public var bytes: UInt64
    public var packets: UInt64
    /// Flows whose first packet in this run fell in the bucket.
    public var flows: UInt64

    public init(bytes: UInt64 = 0, packets: UInt64 = 0, flows: UInt64 = 0) {
        self.bytes = bytes
        self.packets = packets
        self.flows = flows
    }

    public static func += (lhs: inout AccountingCounts, rhs: AccountingCounts) {
        lhs.bytes &+= rhs.bytes
        lhs.packets &+= rhs.packets
        lhs.flows &+= rhs.flows
    }
}

/// How a figure was counted: from every packet (NFLOG), or from the kernel's own counters.
public enum AccountingMode: String, Sendable, Hashable {
    case packets
    case kernel
}

/// One time bucket's totals: rows by key, and the packets the kernel dropped before nfowner
/// saw them (sequence gaps, ENOBUFS), which no row contains but the bucket must not hide.
public struct TrafficBucket: Sendable, Equatable {
    /// Start of the bucket, seconds since the Unix epoch (a multiple of `seconds`).
    public var start: Int64
    /// Length of the bucket in seconds.
    public var seconds: Int
    public var mode: AccountingMode
    public var rows: [AccountingKey: AccountingCounts]
    /// Packets lost before they were counted.
    public var unaccountedPackets: UInt64

    public init(start: Int64, seconds: Int, mode: AccountingMode = .packets,
                rows: [AccountingKey: AccountingCounts] = [:], unaccountedPackets: UInt64 = 0) {
        self.start = start
        self.seconds = seconds
        self.mode = mode
        self.rows = rows
        self.unaccountedPackets = unaccountedPackets
    }

    /// Seconds since the epoch just after the bucket.
    public var end: Int64 { start + Int64(seconds) }
}
