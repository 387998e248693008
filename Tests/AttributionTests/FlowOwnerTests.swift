import Foundation
import NetlinkWire
import PacketModel
import PacketParsing
import Testing
@testable import Attribution

/// Packets without a uid (issue 13): a connection's packets are credited to the owner its socket
/// was found with — inbound ones the kernel did not look up (`exact`, within a flow lifetime),
/// and those after the socket is gone (`flow`); kernel-made ones stay `none` with their reason.
/// Built packets over a fixture /proc, without sockets (every socket lookup finds nothing).
@Suite struct FlowOwnerTests {
    static let second: UInt64 = 1_000_000_000
    static let ms: UInt64 = 1_000_000
    static let client: IPAddress = .v4(0x0AE7_0102), server: IPAddress = .v4(0x0AE7_0101)

    static func tcp(_ source: IPAddress, _ sourcePort: UInt16, _ destination: IPAddress,
                    _ destinationPort: UInt16) -> PacketSummary {
        PacketSummary(family: .ipv4, source: source, destination: destination, protocolNumber: 6, totalLength: 52,
                      fragment: nil, transport: .tcp(TCPInfo(ports: PortPair(source: sourcePort, destination: destinationPort),
                                                             flags: nil)))
    }

    static func echo(_ source: IPAddress, _ destination: IPAddress, type: UInt8, id: UInt16) -> PacketSummary {
        PacketSummary(family: .ipv4, source: source, destination: destination, protocolNumber: 1, totalLength: 84,
                      fragment: nil, transport: .icmp(ICMPInfo(type: type, code: 0, echoIdentifier: id)))
    }

    @Test func bothDirectionsOfAConnectionShareItsKey() throws {
        let out = try #require(FlowOwners.connection(of: Self.tcp(Self.client, 40_000, Self.server, 80), direction: .outbound))
        let back = try #require(FlowOwners.connection(of: Self.tcp(Self.server, 80, Self.client, 40_000), direction: .inbound))
        #expect(out == back)
        #expect(out.source == Self.client && out.sourcePort == 40_000 && out.destinationPort == 80)
        // The server's view of the same connection is another key (its local end is the server).
        let serverSide = FlowOwners.connection(of: Self.tcp(Self.client, 40_000, Self.server, 80), direction: .inbound)
        #expect(serverSide != out)
    }

    @Test func onlyThePingSocketsHalfOfAnEchoNamesAConnection() throws {
        let request = FlowOwners.connection(of: Self.echo(Self.client, Self.server, type: 8, id: 7), direction: .outbound)
        let reply = FlowOwners.connection(of: Self.echo(Self.server, Self.client, type: 0, id: 7), direction: .inbound)
        #expect(request != nil && request == reply)
        // The kernel's half: a request arriving, its reply leaving.
        #expect(FlowOwners.connection(of: Self.echo(Self.server, Self.client, type: 8, id: 7), direction: .inbound) == nil)
        #expect(FlowOwners.connection(of: Self.echo(Self.client, Self.server, type: 0, id: 7), direction: .outbound) == nil)
        // An ICMP error is nobody's connection.
        #expect(FlowOwners.connection(of: Self.echo(Self.server, Self.client, type: 3, id: 7), direction: .inbound) == nil)
        let fragment = PacketSummary(family: .ipv4, source: Self.client, destination: Self.server, protocolNumber: 17,
                                     totalLength: 1500, fragment: nil, transport: .notFirstFragment)
        #expect(FlowOwners.connection(of: fragment, direction: .outbound) == nil)
    }

    @Test func theMemoIsBoundedAndForgetsAfterItsRetention() throws {
        let owners = FlowOwners(retention: 10 * Self.second, capacity: 2)
        let owner = OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: 1, comm: "a", exe: nil)])
        let keys = (0..<3).compactMap { port in
            FlowOwners.connection(of: Self.tcp(Self.client, UInt16(40_000 + port), Self.server, 80), direction: .outbound)
        }
        owners.remember(keys[0], owner, uid: 1, now: 0)
        owners.remember(keys[1], owner, uid: 1, now: 11 * Self.second)
        #expect(owners.owner(of: keys[0], now: 9 * Self.second) != nil)
        #expect(owners.owner(of: keys[0], now: 10 * Self.second) == nil)
        #expect(owners.owner(of: keys[1], now: 12 * Self.second, maximumAge: Self.second) == nil)
        // Full: the expired one goes first.
        owners.remember(keys[2], owner, uid: 1, now: 12 * Self.second)
        #expect(owners.count == 2 && owners.owner(of: keys[1], now: 12 * Self.second) != nil)
    }

    /// Connections keep their own owners through the attribution table; a full table is
    /// emptied with every connection (none may name a reused index), and then fills again.
    @Test func ownersAreKeptByAttributionAndAFullTableStartsOver() throws {
        let owners = FlowOwners(retention: 100 * Self.second, capacity: 100, maximumAttributions: 2)
        let processes = (1...3).map { pid in
            OwnerAttribution(confidence: .exact, processes: [ProcessReference(pid: Int32(pid), comm: "p\(pid)", exe: nil)])
        }
        let keys = (0..<4).compactMap { port in
            FlowOwners.connection(of: Self.tcp(Self.client, UInt16(41_000 + port), Self.server, 80), direction: .outbound)
        }
        owners.remember(keys[0], processes[0], uid: 10, now: 0)
        owners.remember(keys[1], processes[1], uid: 11, now: 0)
        owners.remember(keys[2], processes[0], uid: 10, now: 0)
        #expect(owners.owner(of: keys[0], now: 1)?.attribution == processes[0])
        #expect(owners.owner(of: keys[1], now: 1)?.attribution == processes[1])
        #expect(owners.owner(of: keys[1], now: 1)?.uid == 11)
        #expect(owners.owner(of: keys[2], now: 1)?.attribution == processes[0])
        #expect(owners.owner(of: keys[3], now: 1) == nil)
        #expect(owners.count == 3)
        // A third attribution: the table is full, so everything starts over with it.
        owners.remember(keys[3], processes[2], uid: 12, now: 2)
        #expect(owners.count == 1)
        #expect(owners.owner(of: keys[0], now: 3) == nil)
        #expect(owners.owner(of: keys[3], now: 3)?.attribution == processes[2])
        owners.remember(keys[0], processes[1], uid: 11, now: 4)
        #expect(owners.owner(of: keys[0], now: 5)?.attribution == processes[1])
        #expect(owners.owner(of: keys[3], now: 5)?.attribution == processes[2])
    }

    /// A sender in a cgroup (named `single`: there are no sockets here), then its connection's
    /// packets without a uid.
    @Test func packetsWithoutAUidAreCreditedToTheConnectionsOwner() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        let scope = "/system.slice/up.service"
        try proc.add(pid: 300, comm: "uploader", uid: 1000, cgroup: scope, exe: "/usr/bin/uploader")
        let table = ProcessTable(procFS: ProcFS(root: proc.root), clock: { 10 * Self.second })
        table.seed()
        let attributor = OwnerAttributor(table: table, sockets: nil, flushTimeoutHundredths: 10,
                                         procFS: ProcFS(root: proc.root))
        let t0 = 11 * Self.second
        let data = Self.tcp(Self.client, 40_000, Self.server, 80)
        let sent = attributor.attribute(packet: data, direction: .outbound, uid: 1000, cgroupPath: scope, now: t0)
        #expect(sent.confidence == .single && sent.processes.map(\.pid) == [300])

        // The server's ACK comes back without a uid (loopback: no early demux): within a flow
        // lifetime the connection's owner receives it, as found.
        let ack = Self.tcp(Self.server, 80, Self.client, 40_000)
        let received = attributor.attribute(packet: ack, direction: .inbound, uid: nil, cgroupPath: nil, now: t0 + Self.ms)
        #expect(received.confidence == .single && received.processes.map(\.pid) == [300])
        #expect(received.uid == 1000)

        // After close(): the queued data, the FIN, the TIME-WAIT ACK leave without a uid.
        let late = attributor.attribute(packet: data, direction: .outbound, uid: nil, cgroupPath: nil, now: t0 + 30 * Self.second)
        #expect(late.confidence == .flow)
        #expect(late.named == NamedProcess(pid: 300, comm: "uploader", exe: "/usr/bin/uploader"))
        #expect(late.uid == 1000)
        #expect(late.reason == "the flow's owner; \(NoOwnerReason.kernelGenerated)")
        #expect(late.tally == .flow)
        // Inbound after the lifetime, with the socket gone: credited the same way.
        let lateAck = attributor.attribute(packet: ack, direction: .inbound, uid: nil, cgroupPath: nil, now: t0 + 30 * Self.second)
        #expect(lateAck.confidence == .flow && lateAck.uid == 1000)
        // Past the retention nothing is credited any more.
        let gone = attributor.attribute(packet: data, direction: .outbound, uid: nil, cgroupPath: nil,
                                        now: t0 + FlowOwners.defaultRetention + Self.second)
        #expect(gone.confidence == .none && gone.tally == .noneKernelGenerated)
    }

    @Test func kernelMadePacketsAndUndeliveredOnesStayNone() throws {
        let attributor = OwnerAttributor(table: ProcessTable(), sockets: nil, flushTimeoutHundredths: 10)
        let now = 5 * Self.second
        // A ping socket's request was named; the kernel's reply to the peer's request is not its.
        let request = Self.echo(Self.client, Self.server, type: 8, id: 7)
        _ = attributor.attribute(packet: request, direction: .outbound, uid: 1000, cgroupPath: nil, now: now)
        let kernelReply = attributor.attribute(packet: Self.echo(Self.client, Self.server, type: 0, id: 7),
                                               direction: .outbound, uid: nil, cgroupPath: nil, now: now)
        #expect(kernelReply == OwnerAttribution(confidence: .none, reason: NoOwnerReason.kernelGenerated))
        let reset = attributor.attribute(packet: Self.tcp(Self.server, 9, Self.client, 40_001), direction: .outbound,
                                         uid: nil, cgroupPath: nil, now: now)
        #expect(reset.tally == .noneKernelGenerated)
        let toClosedPort = attributor.attribute(packet: Self.tcp(Self.client, 40_001, Self.server, 9), direction: .inbound,
                                                uid: nil, cgroupPath: nil, now: now)
        #expect(toClosedPort == OwnerAttribution(confidence: .none, reason: NoOwnerReason.notDelivered))
        #expect(toClosedPort.tally == .noneNotDelivered)
    }

    @Test func theSummaryLineCountsEveryConfidenceAfterItsOlderKeys() {
        var tallies = AttributionTallies()
        for tally in [AttributionTally.exact, .exact, .flow, .noneKernelGenerated, .noneTimeWait, .noneOrphaned] {
            tallies.add(tally)
        }
        #expect(tallies.none == 3)
        #expect(tallies.summaryKeys == " confidence_exact=2 confidence_flow=1 confidence_single=0 confidence_program=0"
            + " confidence_candidates=0 confidence_uid=0 confidence_none=3 none_kernel_generated=1 none_time_wait=1"
            + " none_orphaned=1 none_not_delivered=0 none_other=0")
        #expect(OwnerAttribution(confidence: .none, reason: "socket owned by kernel (fin-wait-1)").tally == .noneOrphaned)
        #expect(OwnerAttribution(confidence: .none, reason: "no socket: a later fragment (no ports)").tally == .noneOther)
        #expect(OwnerAttribution(confidence: .program).tally == .program)
    }
}
