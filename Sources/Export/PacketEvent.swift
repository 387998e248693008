import NetlinkWire
import PacketParsing

/// One logged packet with everything nfowner knows about it: what the kernel said (NFLOG
/// attributes), what the packet says (headers), and the names resolved for its owner.
public struct PacketEvent: Sendable {
    /// When the packet was logged: the kernel's timestamp when present, else receive time.
    public var time: EventTime
    public var record: NflogRecord
    public var packet: PacketSummary
    public var inputInterfaceName: String?
    public var outputInterfaceName: String?
    public var userName: String?
    public var groupName: String?
    /// The id of the cgroup the ruleset classified the packet into (from the log prefix).
    public var cgroupID: UInt64?
    /// That cgroup's path relative to the cgroup2 root, e.g. "/system.slice/nginx.service".
    public var cgroupPath: String?
    /// The systemd unit or scope in the cgroup path, e.g. "nginx.service".
    public var unit: String?
    /// The process(es) behind the packet; nil when owner resolution is off.
    public var attribution: OwnerAttribution?

    public init(time: EventTime, record: NflogRecord, packet: PacketSummary,
                inputInterfaceName: String? = nil, outputInterfaceName: String? = nil,
                userName: String? = nil, groupName: String? = nil,
                cgroupID: UInt64? = nil, cgroupPath: String? = nil, unit: String? = nil,
                attribution: OwnerAttribution? = nil) {
        self.attribution = attribution
        self.time = time
        self.record = record
        self.packet = packet
        self.inputInterfaceName = inputInterfaceName
        self.outputInterfaceName = outputInterfaceName
        self.userName = userName
        self.groupName = groupName
        self.cgroupID = cgroupID
        self.cgroupPath = cgroupPath
        self.unit = unit
    }

    public var hook: Hook? { Hook(family: record.family, number: record.hook) }
    public var direction: Direction { hook?.direction ?? (record.inputInterface != nil && record.outputInterface == nil ? .inbound : .outbound) }
}

/// Seconds and microseconds since the Unix epoch, UTC.
public struct EventTime: Sendable, Equatable {
    public var seconds: UInt64
    public var microseconds: UInt64
    public init(seconds: UInt64, microseconds: UInt64) {
        self.seconds = seconds
        self.microseconds = microseconds
    }
}

public enum Direction: String, Sendable {
    case inbound = "in"
    case outbound = "out"
}

/// The netfilter hook a packet was logged at (the kernel's NF_INET_* numbering).
public enum Hook: String, Sendable {
    case prerouting, input, forward, output, postrouting

    /// nil for families whose hooks are not the inet ones (netdev, bridge) or unknown numbers.
    @inlinable
    public init?(family: UInt8, number: UInt8) {
        // NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10, NFPROTO_INET = 1 share the NF_INET_* hook numbers.
        guard family == 2 || family == 10 || family == 1 else { return nil }
        switch number {
        case 0: self = .prerouting      // NF_INET_PRE_ROUTING
        case 1: self = .input           // NF_INET_LOCAL_IN
        case 2: self = .forward         // NF_INET_FORWARD
        case 3: self = .output          // NF_INET_LOCAL_OUT
        case 4: self = .postrouting     // NF_INET_POST_ROUTING
        default: return nil
        }
    }

    /// Packets at prerouting/input arrive; the rest leave (a forwarded packet leaves this host too).
    @inlinable
    public var direction: Direction {
        switch self {
        case .prerouting, .input: .inbound
        case .forward, .output, .postrouting: .outbound
        }
    }
}
