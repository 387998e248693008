// The enforce policy: ordered rules, each a set of matchers and an action; the first rule whose
// matchers all match a packet decides it, else the default does. Pure values: the parser
// (PolicyParser) builds them from a TOML file, `Policy.evaluate` decides a `PolicySubject`, and
// nothing here does I/O. The file format is a public contract: docs/enforce.md.

import PacketParsing

/// A whole policy file.
public struct Policy: Sendable, Equatable {
    /// What happens to a packet no rule matches: `.allow` or `.deny` (the file cannot say reject).
    public var defaultAction: PolicyAction = .deny
    /// Enforce (give the verdicts) or audit (decide and report, accept everything).
    public var mode: PolicyMode = .enforce
    /// What the kernel does with queued packets while nfowner is not answering.
    public var fail: FailMode = .closed
    /// Which directions' new flows are queued for a decision (outbound by default).
    public var directions: Set<PolicyDirection> = [.outbound]
    /// Emit an audit event for each decision of the default.
    public var logDefault = false
    public var rules: [PolicyRule] = []

    public init(defaultAction: PolicyAction = .deny, mode: PolicyMode = .enforce, fail: FailMode = .closed,
                directions: Set<PolicyDirection> = [.outbound], logDefault: Bool = false, rules: [PolicyRule] = []) {
        self.defaultAction = defaultAction
        self.mode = mode
        self.fail = fail
        self.directions = directions
        self.logDefault = logDefault
        self.rules = rules
    }
}

public enum PolicyAction: String, Sendable, Equatable, CaseIterable {
    /// Let the packet (and so its flow) through.
    case allow
    /// Drop it silently: the sender retries until it gives up.
    case deny
    /// Drop it and answer at once (TCP reset, ICMP port unreachable): connect() fails at once.
    case reject
}

public enum PolicyMode: String, Sendable, Equatable, CaseIterable {
    case enforce
    /// Every decision is reported, every packet accepted.
    case audit
}

public enum FailMode: String, Sendable, Equatable, CaseIterable {
    /// Queued traffic passes while nobody answers (queue bypass, NFQA_CFG_F_FAIL_OPEN).
    case open
    /// Queued traffic is dropped while nobody answers.
    case closed
}

public enum PolicyDirection: String, Sendable, Hashable, CaseIterable {
    case outbound = "out"
    case inbound = "in"
}

/// One `[[rule]]`.
public struct PolicyRule: Sendable, Equatable {
    /// The rule's `name`, or "rule N" (1-based) when it has none.
    public var name: String
    public var action: PolicyAction
    /// Emit an audit event for each decision of this rule.
    public var log: Bool
    public var matchers: [PolicyMatcher]
    /// The line of its `[[rule]]` header, for warnings (nil when built in code).
    public var line: Int?

    public init(name: String, action: PolicyAction, log: Bool = false, matchers: [PolicyMatcher] = [], line: Int? = nil) {
        self.name = name
        self.action = action
        self.log = log
        self.matchers = matchers
        self.line = line
    }
}

/// One matcher of a rule: a list matches when any of its items does.
public enum PolicyMatcher: Sendable, Equatable {
    case uid([UInt32])
    case user([String])
    case gid([UInt32])
    case group([String])
    /// systemd unit names (globs), e.g. "nginx.service", "user@*.service".
    case unit([Glob])
    /// cgroup path prefixes relative to the cgroup2 root, matched at a `/` boundary.
    case cgroup([String])
    /// Executable paths: exact paths, or globs when they hold `*`, `?` or `[`.
    case exe([Glob])
    /// Process names (comm, at most 15 bytes), exact or globs.
    case comm([Glob])
    case direction(Set<PolicyDirection>)
    /// IP protocol numbers (6 tcp, 17 udp, 1 icmp, 58 ipv6-icmp, …).
    case proto(Set<UInt8>)
    case destination([CIDR])
    case source([CIDR])
    case destinationPort([PortRange])
    case sourcePort([PortRange])
    case icmpType([ICMPTypeMatch])

    /// The key that writes it in the file.
    public var key: String {
        switch self {
        case .uid: "uid"
        case .user: "user"
        case .gid: "gid"
        case .group: "group"
        case .unit: "unit"
        case .cgroup: "cgroup"
        case .exe: "exe"
        case .comm: "comm"
        case .direction: "direction"
        case .proto: "proto"
        case .destination: "dst"
        case .source: "src"
        case .destinationPort: "dst_port"
        case .sourcePort: "src_port"
        case .icmpType: "icmp_type"
        }
    }

    /// Whether the matcher needs the process behind the packet (the queue cannot be skipped).
    public var needsProcess: Bool {
        switch self {
        case .exe, .comm: true
        default: false
        }
    }
}

/// An address block: `10.0.0.0/8`, `2001:db8::/32`, or one address (`/32`, `/128` implied).
public struct CIDR: Sendable, Hashable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// nil when `prefixLength` is out of range for the family or host bits are set.
    public init?(address: IPAddress, prefixLength: Int) {
        switch address {
        case .v4(let value):
            guard (0...32).contains(prefixLength), value & ~CIDR.mask32(prefixLength) == 0 else { return nil }
        case .v6(let high, let low):
            guard (0...128).contains(prefixLength) else { return nil }
            let (highMask, lowMask) = CIDR.mask128(prefixLength)
            guard high & ~highMask == 0, low & ~lowMask == 0 else { return nil }
        }
        self.address = address
        self.prefixLength = prefixLength
    }

    public func contains(_ other: IPAddress) -> Bool {
        switch (address, other) {
        case (.v4(let network), .v4(let value)):
            return value & CIDR.mask32(prefixLength) == network
        case (.v6(let networkHigh, let networkLow), .v6(let high, let low)):
            let (highMask, lowMask) = CIDR.mask128(prefixLength)
            return high & highMask == networkHigh && low & lowMask == networkLow
        default:
            return false
        }
    }

    /// Whether every address of `other` is in this block.
    public func contains(_ other: CIDR) -> Bool {
        other.prefixLength >= prefixLength && contains(other.address)
    }

    public var description: String { "\(address)/\(prefixLength)" }

    static func mask32(_ length: Int) -> UInt32 {
        length <= 0 ? 0 : UInt32.max << UInt32(32 - min(length, 32))
    }

    static func mask128(_ length: Int) -> (UInt64, UInt64) {
        if length <= 0 { return (0, 0) }
        if length <= 64 { return (UInt64.max << UInt64(64 - length), 0) }
        return (UInt64.max, length >= 128 ? UInt64.max : UInt64.max << UInt64(128 - length))
    }
}

/// An inclusive port range; one port is `n...n`.
public struct PortRange: Sendable, Hashable, CustomStringConvertible {
    public let lower: UInt16
    public let upper: UInt16

    /// nil when `lower > upper`.
    public init?(_ lower: UInt16, _ upper: UInt16) {
        guard lower <= upper else { return nil }
        self.lower = lower
        self.upper = upper
    }

    public func contains(_ port: UInt16) -> Bool { lower <= port && port <= upper }
    public func contains(_ other: PortRange) -> Bool { lower <= other.lower && other.upper <= upper }
    public var description: String { lower == upper ? "\(lower)" : "\(lower)-\(upper)" }
}

/// An ICMP type: a number (for ICMP and ICMPv6 alike) or a name that means the right number
/// for each (`echo-request` is 8 in ICMP, 128 in ICMPv6).
public enum ICMPTypeMatch: Sendable, Hashable {
    case number(UInt8)
    case named(ICMPTypeName)

    func matches(protocolNumber: UInt8, type: UInt8) -> Bool {
        switch self {
        case .number(let number): number == type
        case .named(let name): name.number(protocolNumber: protocolNumber) == type
        }
    }
}

public enum ICMPTypeName: String, Sendable, Hashable, CaseIterable {
    case echoRequest = "echo-request"
    case echoReply = "echo-reply"
    case destinationUnreachable = "destination-unreachable"
    case timeExceeded = "time-exceeded"

    /// The type number in ICMP (protocol 1) or ICMPv6 (58); nil for other protocols.
    public func number(protocolNumber: UInt8) -> UInt8? {
        switch (self, protocolNumber) {
        case (.echoRequest, 1): 8
        case (.echoRequest, 58): 128
        case (.echoReply, 1): 0
        case (.echoReply, 58): 129
        case (.destinationUnreachable, 1): 3
        case (.destinationUnreachable, 58): 1
        case (.timeExceeded, 1): 11
        case (.timeExceeded, 58): 3
        default: nil
        }
    }
}
