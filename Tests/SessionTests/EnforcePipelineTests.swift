import Attribution
import Foundation
import NetfilterSystem
import NetlinkWire
import PacketModel
import PacketParsing
import PacketSources
import Policy
import Rules
import Session
import Testing

/// Enforce mode's consumer and the queue's marked verdicts, fed built NFQUEUE messages: allow
/// and reject go back as NF_REPEAT with the mark bits (other bits of the packet's mark kept),
/// deny as NF_DROP; audit mode accepts everything and says what it would have done.
@Suite struct EnforcePipelineTests {
    final class FixedAttributor: PacketAttributing {
        var exe: String?
        var calls = 0
        init(exe: String?) { self.exe = exe }
        func attribute(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                       now: UInt64) -> OwnerAttribution {
            calls += 1
            guard let exe else { return OwnerAttribution(confidence: .none, reason: "test") }
            return OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 42, comm: "curl", exe: exe)])
        }
        func resolve(packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupPath: String?,
                     now: UInt64) -> AttributionTally { .uid }
    }

    /// 127.0.0.1:40000 → 127.0.0.1:`port`, a SYN.
    static func syn(port: UInt16) -> [UInt8] {
        [0x45, 0, 0, 40, 0, 1, 0x40, 0, 64, 6, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1]
            + [0x9c, 0x40, UInt8(port >> 8), UInt8(port & 0xff), 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x02, 0xff, 0xff, 0, 0, 0, 0]
    }

    static func run(_ policyText: String, exe: String? = "/usr/bin/curl",
                    packets: [(id: UInt32, uid: UInt32, port: UInt16)]) throws
        -> (verdicts: [(id: UInt32, code: NfqueueVerdictCode, mark: UInt32?)], counters: EnforceCounters, audit: [[String: Any]], attributor: FixedAttributor) {
        let policy = try PolicyParser.parse(policyText, file: "test").get()
        var settings = NfqueueSettings()
        settings.queue = 10
        let source = NfqueueSource(decodingOnly: settings, verdictMarks: VerdictMarks())
        let attributor = FixedAttributor(exe: exe)
        let engine = AttributionEngine(processes: attributor, names: OwnerNames(lookUpUser: { _ in "alice" }, lookUpGroup: { _ in nil }),
                                       interfaces: InterfaceNames(lookUp: { _ in nil }))
        var fds: [Int32] = [0, 0]
        #expect(pipe(&fds) == 0)
        defer { close(fds[0]) }
        let pipeline = EnforcePipeline(source: source, engine: engine, policy: policy,
                                       audit: OutputDescriptor(descriptor: fds[1]))
        for packet in packets {
            HoldingSourceTests.heldMessage(id: packet.id, uid: packet.uid, payload: syn(port: packet.port), mark: 0x1,
                                           queue: 10).withUnsafeBytes {
                source.process(datagram: $0, into: pipeline)
            }
            #expect(pipeline.endDatagram() == nil)
        }
        close(fds[1])
        let text = String(decoding: FileHandle(fileDescriptor: fds[0]).readDataToEndOfFile(), as: UTF8.self)
        let audit = text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        return (source.sentVerdicts, pipeline.snapshot, audit, attributor)
    }

    @Test func verdictsCarryTheMarksAndKeepTheOtherBits() throws {
        let result = try Self.run("""
            default = "deny"
            [[rule]]
            name = "web"
            action = "allow"
            uid = 1000
            dst_port = 8080
            [[rule]]
            name = "rest"
            action = "reject"
            uid = 1000
            log = true
            """, packets: [(1, 1000, 8080), (2, 1000, 9090), (3, 1001, 8080)])
        let marks = VerdictMarks()
        #expect(result.verdicts.map(\.id) == [1, 2, 3])
        #expect(result.verdicts.map(\.code) == [.repeat, .repeat, .drop])
        #expect(result.verdicts.map(\.mark) == [marks.allow | 1, marks.reject | 1, nil])
        #expect(result.counters.decided == 3 && result.counters.allow == 1 && result.counters.reject == 1
                && result.counters.deny == 1 && result.counters.auditEvents == 1)
        // Nothing reads the process: no owner resolution for the unlogged decisions.
        #expect(result.attributor.calls == 1)
        let event = try #require(result.audit.first)
        #expect(event["rule"] as? String == "rest")
        #expect(event["rule_index"] as? Int == 1)
        #expect(event["action"] as? String == "reject")
        #expect(event["verdict"] as? String == "reject")
        #expect(event["mode"] as? String == "enforce")
        #expect(event["dport"] as? Int == 9090)
        #expect(event["uid"] as? Int == 1000)
        #expect(event["exe"] as? String == "/usr/bin/curl")
    }

    @Test func exeRulesReadTheResolvedProcess() throws {
        let policy = "default = \"allow\"\n[[rule]]\naction = \"reject\"\nexe = \"/usr/bin/curl\"\n"
        let curl = try Self.run(policy, exe: "/usr/bin/curl", packets: [(1, 1000, 80)])
        #expect(curl.verdicts.map(\.mark) == [VerdictMarks().reject | 1])
        let other = try Self.run(policy, exe: "/usr/bin/wget", packets: [(1, 1000, 80)])
        #expect(other.verdicts.map(\.mark) == [VerdictMarks().allow | 1])
        let unknown = try Self.run(policy, exe: nil, packets: [(1, 1000, 80)])
        #expect(unknown.verdicts.map(\.mark) == [VerdictMarks().allow | 1])
        #expect(unknown.counters.unknownProcess == 1)
    }

    @Test func auditModeAcceptsEverythingAndReportsEveryDecision() throws {
        let result = try Self.run("""
            default = "deny"
            mode = "audit"
            [[rule]]
            action = "allow"
            dst_port = 8080
            """, packets: [(1, 1000, 8080), (2, 1000, 9090)])
        #expect(result.verdicts.map(\.mark) == [VerdictMarks().allow | 1, VerdictMarks().allow | 1])
        #expect(result.audit.map { $0["action"] as? String } == ["allow", "deny"])
        #expect(result.audit.map { $0["verdict"] as? String } == ["accept", "accept"])
        #expect(result.audit.map { $0["rule"] as? String } == ["rule 1", "default"])
        #expect(result.audit.last?["rule_index"] is NSNull)
        #expect(result.counters.deny == 1)
    }

    @Test func theRulesSpecFollowsThePolicy() throws {
        let closed = try PolicyParser.parse("fail = \"closed\"\ndirections = [\"in\", \"out\"]\n", file: "t").get()
        let spec = EnforceOptions.spec(for: closed, queue: 12)
        #expect(!spec.failOpen && spec.input && spec.output && spec.queue == 12)
        let audit = try PolicyParser.parse("fail = \"closed\"\nmode = \"audit\"\n", file: "t").get()
        #expect(EnforceOptions.spec(for: audit, queue: 12).failOpen)
    }
}

/// The kernel fast path: which rules the kernel decides alone, which queue, and when it applies.
@Suite struct EnforceFastPathTests {
    static func decisions(_ text: String, _ family: IptablesFamily = .ipv4) throws -> [EnforceDecision]? {
        let policy = try PolicyParser.parse(text, file: "t").get()
        return EnforceOptions.spec(for: policy, queue: 10).decisions?[family]
    }

    @Test func kernelRulesAndQueueRulesInOrder() throws {
        let compiled = try Self.decisions("""
            default = "deny"
            [[rule]]
            action = "allow"
            uid = [1000, 1001]
            proto = "tcp"
            dst = ["10.0.0.0/8", "fd00::/8"]
            dst_port = [8080, "9000-9010"]
            [[rule]]
            action = "reject"
            uid = 1000
            exe = "/usr/bin/curl"
            [[rule]]
            action = "allow"
            icmp_type = "echo-request"
            """)
        let decisions = try #require(compiled)
        // 2 uids × 1 address × 2 port ranges, then the exe rule's queue narrowed to uid 1000, ping, the default.
        #expect(decisions.count == 7)
        #expect(decisions[0] == EnforceDecision(protocolNumber: 6, uid: 1000, destination: "10.0.0.0/8",
                                                destinationPorts: 8080...8080, target: .allow))
        #expect(decisions[3].uid == 1001 && decisions[3].destinationPorts == 9000...9010)
        #expect(decisions[4] == EnforceDecision(uid: 1000, target: .queue))
        #expect(decisions[5] == EnforceDecision(protocolNumber: 1, icmpType: 8, target: .allow))
        #expect(decisions[6] == EnforceDecision(target: .deny))
        let v6 = try #require(try Self.decisions("[[rule]]\naction = \"allow\"\nicmp_type = \"echo-request\"\n", .ipv6))
        #expect(v6.first == EnforceDecision(protocolNumber: 58, icmpType: 128, target: .allow))
    }

    @Test func rulesThatCannotMatchInAFamilyAreLeftOut() throws {
        let v6 = try #require(try Self.decisions("[[rule]]\naction = \"deny\"\ndst = \"10.0.0.0/8\"\n[[rule]]\naction = \"deny\"\nproto = \"icmp\"\n", .ipv6))
        #expect(v6 == [EnforceDecision(target: .deny)])
    }

    @Test func loggedRulesPortsOfAnyProtocolAndTheLoggedDefaultQueue() throws {
        let decisions = try #require(try Self.decisions("""
            default = "allow"
            log_default = true
            [[rule]]
            action = "deny"
            log = true
            uid = 5
            [[rule]]
            action = "deny"
            dst_port = 22
            gid = 7
            """))
        #expect(decisions == [EnforceDecision(uid: 5, target: .queue), EnforceDecision(gid: 7, target: .queue),
                              EnforceDecision(target: .queue)])
    }

    @Test func tooManyCombinationsQueueTheWholeRule() throws {
        let uids = (1...20).map(String.init).joined(separator: ", ")
        let ports = (1...20).map(String.init).joined(separator: ", ")
        let decisions = try #require(try Self.decisions("[[rule]]\naction = \"allow\"\nproto = \"tcp\"\nuid = [\(uids)]\ndst_port = [\(ports)]\n"))
        #expect(decisions.first == EnforceDecision(target: .queue))
    }

    @Test func onlyForFailClosedEnforcingOutboundPolicies() throws {
        #expect(try Self.decisions("fail = \"open\"\n") == nil)
        #expect(try Self.decisions("mode = \"audit\"\n") == nil)
        #expect(try Self.decisions("directions = [\"out\", \"in\"]\n") == nil)
        let policy = try PolicyParser.parse("", file: "t").get()
        #expect(EnforceOptions.spec(for: policy, queue: 10, fastPath: false).decisions == nil)
    }
}
