import PacketParsing

/// One packet with everything nfowner knows about it: where and when it was seen (metadata),
/// what its headers say (`packet`), and who owns it (`owner`). What every sink receives.
///
/// It owns nothing of its source: NFLOG, NFQUEUE and capture files all map into it, and no
/// netlink type appears here. Building one allocates nothing per packet: names come from
/// caches, the attribution from the flow cache, the prefix is held inline.
///
/// Not copyable: the session keeps one event per direction and lends it to every sink, and
/// the compiler guarantees that no sink call, encoder or helper copies it on the way (a copy
/// retains each of its names and its attribution), and it is lent by address (see
/// `lentByAddress`). Code that keeps events keeps their parts (`metadata`, `packet`, `owner`).
public struct PacketEvent: ~Copyable, Sendable {
    public var metadata: PacketMetadata
    public var packet: PacketSummary
    public var owner: PacketOwner
    public var inputInterfaceName: String?
    public var outputInterfaceName: String?
    /// Makes the event an address-only type, so it is always lent by address. A type whose
    /// fields are all plain values is lent as a value: each sink call copied the event's 520
    /// bytes to a temporary, and each read of `event.metadata.x` in the JSON encoder loaded all
    /// of `metadata`. An opaque existential is address-only; this one holds nothing.
    @usableFromInline let lentByAddress: any Sendable = ()

    @inlinable
    public init(metadata: PacketMetadata, packet: PacketSummary, owner: PacketOwner = PacketOwner(),
                inputInterfaceName: String? = nil, outputInterfaceName: String? = nil) {
        self.metadata = metadata
        self.packet = packet
        self.owner = owner
        self.inputInterfaceName = inputInterfaceName
        self.outputInterfaceName = outputInterfaceName
    }

    /// When the packet was logged: the kernel's timestamp when present, else receive time.
    public var time: EventTime { metadata.time }
    public var hook: Hook? { metadata.hook }
    public var direction: Direction { metadata.direction }
    public var userName: String? {
        get { owner.userName }
        set { owner.userName = newValue }
    }
    public var groupName: String? {
        get { owner.groupName }
        set { owner.groupName = newValue }
    }
    public var cgroupID: UInt64? {
        get { owner.cgroupID }
        set { owner.cgroupID = newValue }
    }
    public var cgroupPath: String? {
        get { owner.cgroupPath }
        set { owner.cgroupPath = newValue }
    }
    public var unit: String? {
        get { owner.unit }
        set { owner.unit = newValue }
    }
    public var attribution: OwnerAttribution? {
        get { owner.attribution }
        set { owner.attribution = newValue }
    }
}

/// Where a packet was seen: which kernel interface handed it over and which group, queue or
/// file it came from.
public struct PacketOrigin: Sendable, Equatable {
    public enum Kind: UInt8, Sendable {
        /// An NFLOG group (`log group N`): a copy of the packet, which went on.
        case nflog
        /// An NFQUEUE queue: the packet itself, held until a verdict.
        case nfqueue
        /// A capture file being read.
        case file
    }

    public var kind: Kind
    /// The NFLOG group, NFQUEUE queue number or file interface (the JSON key `group`).
    public var number: UInt16

    @inlinable
    public init(kind: Kind, number: UInt16) {
        self.kind = kind
        self.number = number
    }
}

/// What the kernel (or a capture file) said about a packet besides its bytes and owner.
public struct PacketMetadata: Sendable, Equatable {
    public var origin = PacketOrigin(kind: .nflog, number: 0)
    /// The source's per-group/queue sequence number, when it numbers messages.
    public var sequence: UInt32?
    /// Protocol family as netfilter numbers it (NFPROTO_IPV4 = 2, NFPROTO_IPV6 = 10, …).
    public var family: UInt8 = 0
    /// Netfilter hook number (NF_INET_PRE_ROUTING = 0 … NF_INET_POST_ROUTING = 4).
    public var hookNumber: UInt8 = 0
    /// When the packet was logged: the kernel's timestamp when it sent one, else receive time.
    public var time = EventTime(seconds: 0, microseconds: 0)
    /// Interface indexes (ifindex), when known.
    public var inputInterface: UInt32?
    public var outputInterface: UInt32?
    /// The packet mark; nil when zero or unknown.
    public var mark: UInt32?
    /// The rule's log prefix, held inline; nil when none.
    public var prefix: LogPrefix? {
        didSet { prefixSummary = LogPrefix.Summary(prefix) }
    }
    /// The prefix's length and first 24 bytes, kept with it: what per-packet code compares (the
    /// source against the next message's prefix, the JSON encoder against the prefix of its
    /// cached text). Reading any part of the optional prefix copied all 130 bytes of it first.
    public private(set) var prefixSummary = LogPrefix.Summary(nil)
    /// Bytes of the packet the source captured (at most the snap length).
    public var capturedLength: Int = 0

    @inlinable
    public init() {}

    @inlinable
    public var hook: Hook? { Hook(family: family, number: hookNumber) }

    /// From the hook; without one (netdev, a file), a packet with only an input interface arrived.
    @inlinable
    public var direction: Direction {
        hook?.direction ?? (inputInterface != nil && outputInterface == nil ? .inbound : .outbound)
    }
}

/// Who owns a packet: the socket's credentials as the kernel reported them, the cgroup the
/// ruleset classified it into, and the process(es) the attribution engine found.
public struct PacketOwner: Sendable, Equatable {
    /// The socket owner's fsuid/fsgid; present only when the packet held a full socket.
    public var uid: UInt32?
    public var gid: UInt32?
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

    @inlinable
    public init(uid: UInt32? = nil, gid: UInt32? = nil, userName: String? = nil, groupName: String? = nil,
                cgroupID: UInt64? = nil, cgroupPath: String? = nil, unit: String? = nil,
                attribution: OwnerAttribution? = nil) {
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.cgroupID = cgroupID
        self.cgroupPath = cgroupPath
        self.unit = unit
        self.attribution = attribution
    }
}

/// Seconds and microseconds since the Unix epoch, UTC.
public struct EventTime: Sendable, Equatable, Comparable {
    public var seconds: UInt64
    public var microseconds: UInt64
    @inlinable
    public init(seconds: UInt64, microseconds: UInt64) {
        self.seconds = seconds
        self.microseconds = microseconds
    }

    public static func < (lhs: EventTime, rhs: EventTime) -> Bool {
        (lhs.seconds, lhs.microseconds) < (rhs.seconds, rhs.microseconds)
    }
}

/// Which way a packet went, as seen from this host.
public enum Direction: String, Sendable, Hashable {
    case inbound = "in"
    case outbound = "out"
}

/// The netfilter hook a packet was logged at (the kernel's NF_INET_* numbering).
public enum Hook: String, Sendable {
    case prerouting, input, forward, output, postrouting
    /// A device's netdev hooks (NFPROTO_NETDEV): where packet sockets' frames are logged.
    case ingress, egress

    /// nil for other families (bridge) and unknown numbers.
    @inlinable
    public init?(family: UInt8, number: UInt8) {
        if family == 5 {  // NFPROTO_NETDEV: NF_NETDEV_INGRESS = 0, NF_NETDEV_EGRESS = 1
            switch number {
            case 0: self = .ingress
            case 1: self = .egress
            default: return nil
            }
            return
        }
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
        case .prerouting, .input, .ingress: .inbound
        case .forward, .output, .postrouting, .egress: .outbound
        }
    }
}
