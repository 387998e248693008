import Attribution
import Export
import NetfilterSystem
import PacketModel
import PacketParsing
import PacketSources
import Policy
import Synchronization

/// What enforce mode counted: the policy's decisions (in audit mode, what would have happened)
/// and what could not be decided.
public struct EnforceCounters: Sendable, Equatable {
    /// Packets decided (each a new flow's first packet, or an echo request).
    public var decided: UInt64 = 0
    public var allow: UInt64 = 0
    public var deny: UInt64 = 0
    public var reject: UInt64 = 0
    /// Packets whose IP header did not parse: the default action applied.
    public var parseErrors: UInt64 = 0
    /// Audit events written.
    public var auditEvents: UInt64 = 0
    /// Decisions where nfowner found no process (exe/comm unknown: rules reading them did not match).
    public var unknownProcess: UInt64 = 0
    /// Established flows whose conntrack entries a reload deleted (`--reset-flows`).
    public var flowsReset: UInt64 = 0

    public init() {}

    /// The counts of several queues' pipelines together.
    public static func total(_ parts: [EnforceCounters]) -> EnforceCounters {
        var sum = EnforceCounters()
        for part in parts {
            sum.decided += part.decided
            sum.allow += part.allow
            sum.deny += part.deny
            sum.reject += part.reject
            sum.parseErrors += part.parseErrors
            sum.auditEvents += part.auditEvents
            sum.unknownProcess += part.unknownProcess
            sum.flowsReset += part.flowsReset
        }
        return sum
    }

    /// `decided=… allow=… deny=… reject=… audit_events=… unknown_process=… parse_errors=… flows_reset=…`.
    public var summaryFields: String {
        "decided=\(decided) allow=\(allow) deny=\(deny) reject=\(reject) audit_events=\(auditEvents) "
            + "unknown_process=\(unknownProcess) parse_errors=\(parseErrors) flows_reset=\(flowsReset)"
    }
}

/// Enforce mode's consumer: each held packet is parsed, its owner resolved (only as far as the
/// policy reads: the process for exe/comm/unit/cgroup matchers, names for user/group), the
/// policy evaluated, the decision counted and — for rules with `log`, or every decision in
/// audit mode — written as an audit event; the verdict goes back to the kernel.
///
/// Runs on the receive thread. The policy can be replaced from another thread (SIGHUP).
public final class EnforcePipeline: PacketConsumer, @unchecked Sendable {
    private let source: any PacketSource
    private let engine: AttributionEngine
    /// The policy in force and what evaluating it needs (worked out once per policy).
    private let active: Mutex<(policy: Policy, needs: PolicyNeeds)>
    private let audit: OutputDescriptor?
    @exclusivity(unchecked) public private(set) var counters = EnforceCounters()
    @exclusivity(unchecked) private var pending: [UInt8] = []
    @exclusivity(unchecked) private var metadata = PacketMetadata()
    private let published = Mutex(EnforceCounters())
    /// Set from another thread (SIGHUP with `--reset-flows`); acted on by the receive thread.
    private let flowResetRequested = Atomic<Bool>(false)
    private let clock: () -> EventTime

    /// `audit`: where audit events go (nil: nowhere).
    public init(source: any PacketSource, engine: AttributionEngine, policy: Policy, audit: OutputDescriptor?,
                clock: @escaping () -> EventTime = PacketPipeline.wallClock) {
        self.source = source
        self.engine = engine
        active = Mutex((policy, policy.needs))
        self.audit = audit
        self.clock = clock
    }

    /// Replaces the policy (any thread); the next packet is decided by the new one.
    public func replacePolicy(_ new: Policy) {
        let needs = new.needs
        active.withLock { $0 = (new, needs) }
    }

    /// Asks the receive thread to reset the established flows the policy in force denies (any
    /// thread): done at its next tick (see `FlowReset`).
    public func requestFlowReset() { flowResetRequested.store(true, ordering: .releasing) }

    /// On the receive thread (the loop's tick): the flow reset, when one was asked for.
    func resetFlowsIfRequested(report: (String) -> Void) {
        guard flowResetRequested.exchange(false, ordering: .acquiring) else { return }
        let policy = currentPolicy
        let outcome = FlowReset.run(policy: policy, engine: engine, decide: { packetSubject, owner in
            var subject = packetSubject
            fill(&subject, from: owner)
            return policy.evaluate(subject)
        }, report: report)
        counters.flowsReset += UInt64(outcome.deleted)
        report("--reset-flows: \(outcome.deleted) of \(outcome.examined) established TCP/UDP flows of this host's sockets "
               + "(of \(outcome.entries) conntrack entries) are denied by the new policy: their conntrack entries were deleted"
               + (outcome.failures > 0 ? " (\(outcome.failures) deletes failed)" : "")
               + "; \(outcome.closed) local TCP sockets of them closed"
               + (outcome.closeProblem.map { " (cannot close sockets: \($0))" } ?? ""))
    }

    /// The policy in force (any thread).
    public var currentPolicy: Policy { active.withLock { $0.policy } }

    /// The counters as of the last datagram (any thread).
    public var snapshot: EnforceCounters { published.withLock { $0 } }

    public var isFinished: Bool { false }

    /// Nothing is copied in enforce mode: every packet is held and decided.
    public func consume(_ packet: UnsafeSourcePacket) {}

    /// How long before its read the held packet may have been sent, for owner resolution (see
    /// `PacketConsumer.beginDatagram`).
    public func beginDatagram(busySince: UInt64, sentAfter: UInt64?) {
        engine.datagramRead(busySince: busySince, sentAfter: sentAfter)
    }

    public func decide(_ held: UnsafeSourcePacket) -> PacketVerdict {
        let (policy, needs) = active.withLock { $0 }
        counters.decided += 1
        let direction = held.direction
        let packet: PacketSummary
        do {
            packet = try PacketParser.parse(held.payload)
        } catch {
            counters.parseErrors += 1
            return verdict(for: policy.defaultAction, mode: policy.mode)
        }
        var subject = PolicySubject(packet: packet, direction: direction == .inbound ? .inbound : .outbound)
        subject.uid = held.uid
        subject.gid = held.gid
        var owner: PacketOwner?
        let now = WallClock.monotonicNanoseconds()
        // An inbound packet carries no uid: its owner is the receiving socket's, found by lookup.
        if needs.process || (held.uid == nil && needs.identity) {
            let resolved = engine.owner(packet, direction: direction, uid: held.uid, gid: held.gid, cgroupID: nil, now: now)
            fill(&subject, from: resolved)
            if subject.exe == nil && subject.comm == nil { counters.unknownProcess += 1 }
            owner = resolved
        } else if needs.names {
            subject.userName = held.uid.flatMap { engine.names.userName(of: $0) }
            subject.groupName = held.gid.flatMap { engine.names.groupName(of: $0) }
        }
        let decision = policy.evaluate(subject)
        switch decision.action {
        case .allow: counters.allow += 1
        case .deny: counters.deny += 1
        case .reject: counters.reject += 1
        }
        let verdict = verdict(for: decision.action, mode: policy.mode)
        if audit != nil, decision.log || policy.mode == .audit {
            let owner = owner ?? engine.owner(packet, direction: direction, uid: held.uid, gid: held.gid,
                                              cgroupID: nil, now: now)
            source.readMetadata(of: held, receivedAt: clock(), into: &metadata)
            let event = PacketEvent(metadata: metadata, packet: packet, owner: owner)
            AuditLines.append(event, rule: decision.ruleName, ruleIndex: decision.ruleIndex,
                              action: decision.action.rawValue, verdict: Self.name(verdict),
                              mode: policy.mode.rawValue, to: &pending)
            counters.auditEvents += 1
        }
        return verdict
    }

    /// The subject's owner fields from a resolved owner: the attribution's uid when the packet
    /// carried none (an inbound packet's receiving socket).
    private func fill(_ subject: inout PolicySubject, from owner: PacketOwner) {
        if subject.uid == nil, let uid = owner.attribution?.uid {
            subject.uid = uid
            subject.userName = engine.names.userName(of: uid)
        } else {
            subject.userName = owner.userName
        }
        subject.groupName = owner.groupName
        subject.unit = owner.unit
        subject.cgroupPath = owner.cgroupPath
        if let named = owner.attribution?.named {
            subject.exe = named.exe
            subject.comm = named.comm
        }
    }

    private func verdict(for action: PolicyAction, mode: PolicyMode) -> PacketVerdict {
        guard mode == .enforce else { return .accept }
        switch action {
        case .allow: return .accept
        case .deny: return .drop
        case .reject: return .reject
        }
    }

    private static func name(_ verdict: PacketVerdict) -> String {
        switch verdict {
        case .accept: "accept"
        case .drop: "drop"
        case .reject: "reject"
        }
    }

    public func endDatagram() -> ReceiveLoop.Ending? {
        let snapshot = counters
        published.withLock { $0 = snapshot }
        guard let audit, !pending.isEmpty else { return nil }
        defer { pending.removeAll(keepingCapacity: true) }
        do {
            try audit.write(pending)
        } catch {
            return .failed("cannot write audit events: \(error)")
        }
        return nil
    }
}

/// What evaluating a policy needs beyond the packet and its uid/gid: the process (exe, comm,
/// unit, cgroup), user or group names, the owner's identity at all (uid … group).
typealias PolicyNeeds = (process: Bool, names: Bool, identity: Bool)

extension Policy {
    var needs: PolicyNeeds {
        var process = false, names = false, identity = false
        for rule in rules {
            for matcher in rule.matchers {
                switch matcher {
                case .exe, .comm, .unit, .cgroup: process = true
                case .user, .group:
                    names = true
                    identity = true
                case .uid, .gid: identity = true
                default: break
                }
            }
        }
        return (process, names, identity)
    }
}
