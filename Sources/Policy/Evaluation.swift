import PacketParsing

/// What a policy is evaluated against: the packet's headers and what is known of its owner. A
/// field that is not known (nil) never matches a matcher that reads it.
public struct PolicySubject: Sendable, Equatable {
    public var direction: PolicyDirection
    public var protocolNumber: UInt8
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16?
    public var destinationPort: UInt16?
    public var icmpType: UInt8?
    public var uid: UInt32?
    public var gid: UInt32?
    public var userName: String?
    public var groupName: String?
    /// The systemd unit or scope, e.g. "nginx.service".
    public var unit: String?
    /// Relative to the cgroup2 root, starting with "/".
    public var cgroupPath: String?
    public var exe: String?
    public var comm: String?

    public init(direction: PolicyDirection, protocolNumber: UInt8, source: IPAddress, destination: IPAddress,
                sourcePort: UInt16? = nil, destinationPort: UInt16? = nil, icmpType: UInt8? = nil,
                uid: UInt32? = nil, gid: UInt32? = nil, userName: String? = nil, groupName: String? = nil,
                unit: String? = nil, cgroupPath: String? = nil, exe: String? = nil, comm: String? = nil) {
        self.direction = direction
        self.protocolNumber = protocolNumber
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.icmpType = icmpType
        self.uid = uid
        self.gid = gid
        self.userName = userName
        self.groupName = groupName
        self.unit = unit
        self.cgroupPath = cgroupPath
        self.exe = exe
        self.comm = comm
    }

    /// The packet's part of a subject (ports and ICMP type from its transport header); the
    /// owner's fields are left nil for the caller to fill.
    public init(packet: PacketSummary, direction: PolicyDirection) {
        self.init(direction: direction, protocolNumber: packet.protocolNumber, source: packet.source,
                  destination: packet.destination)
        switch packet.transport {
        case .tcp(let tcp):
            sourcePort = tcp.ports.source
            destinationPort = tcp.ports.destination
        case .udp(let ports), .udpLite(let ports), .sctp(let ports):
            sourcePort = ports.source
            destinationPort = ports.destination
        case .icmp(let icmp), .icmpv6(let icmp):
            icmpType = icmp.type
        case .gre, .esp, .ah, .notFirstFragment, .other:
            break
        }
    }
}

/// What the policy decided for one packet.
public struct PolicyDecision: Sendable, Equatable {
    public var action: PolicyAction
    /// The index of the deciding rule in `Policy.rules`; nil for the default.
    public var ruleIndex: Int?
    /// The deciding rule's name, or "default".
    public var ruleName: String
    /// Whether the decision is to be written as an audit event (the rule's `log`, `log_default`).
    public var log: Bool

    public init(action: PolicyAction, ruleIndex: Int?, ruleName: String, log: Bool) {
        self.action = action
        self.ruleIndex = ruleIndex
        self.ruleName = ruleName
        self.log = log
    }
}

extension Policy {
    /// The first rule whose matchers all match `subject`, else the default.
    public func evaluate(_ subject: PolicySubject) -> PolicyDecision {
        for (index, rule) in rules.enumerated() where rule.matches(subject) {
            return PolicyDecision(action: rule.action, ruleIndex: index, ruleName: rule.name, log: rule.log)
        }
        return PolicyDecision(action: defaultAction, ruleIndex: nil, ruleName: "default", log: logDefault)
    }

    /// Whether any rule reads the process (exe, comm): then owners must be resolved per packet.
    public var needsProcess: Bool {
        rules.contains { $0.matchers.contains(where: \.needsProcess) }
    }
}

extension PolicyRule {
    public func matches(_ subject: PolicySubject) -> Bool {
        matchers.allSatisfy { $0.matches(subject) }
    }
}

extension PolicyMatcher {
    public func matches(_ subject: PolicySubject) -> Bool {
        switch self {
        case .uid(let uids): return subject.uid.map(uids.contains) ?? false
        case .user(let names): return subject.userName.map(names.contains) ?? false
        case .gid(let gids): return subject.gid.map(gids.contains) ?? false
        case .group(let names): return subject.groupName.map(names.contains) ?? false
        case .unit(let globs): return subject.unit.map { unit in globs.contains { $0.matches(unit) } } ?? false
        case .cgroup(let prefixes):
            guard let path = subject.cgroupPath else { return false }
            return prefixes.contains { PolicyMatcher.cgroup(path, isUnder: $0) }
        case .exe(let globs): return subject.exe.map { exe in globs.contains { $0.matches(exe) } } ?? false
        case .comm(let globs): return subject.comm.map { comm in globs.contains { $0.matches(comm) } } ?? false
        case .direction(let directions): return directions.contains(subject.direction)
        case .proto(let numbers): return numbers.contains(subject.protocolNumber)
        case .destination(let blocks): return blocks.contains { $0.contains(subject.destination) }
        case .source(let blocks): return blocks.contains { $0.contains(subject.source) }
        case .destinationPort(let ranges):
            return subject.destinationPort.map { port in ranges.contains { $0.contains(port) } } ?? false
        case .sourcePort(let ranges):
            return subject.sourcePort.map { port in ranges.contains { $0.contains(port) } } ?? false
        case .icmpType(let types):
            guard let type = subject.icmpType else { return false }
            return types.contains { $0.matches(protocolNumber: subject.protocolNumber, type: type) }
        }
    }

    /// "/a/b" is under "/a" and "/a/b", not under "/a/bc". Both are normalised to start with "/"
    /// by the parser; "/" is above everything.
    static func cgroup(_ path: String, isUnder prefix: String) -> Bool {
        if prefix == "/" || path == prefix { return true }
        return path.hasPrefix(prefix) && path.utf8.dropFirst(prefix.utf8.count).first == UInt8(ascii: "/")
    }
}
