import Foundation
import Testing
import NetfilterSystem
import NetlinkWire
import PacketParsing
import TestSupport
@testable import Attribution

// Recorded on kernel 6.18 inside a test namespace: a ping socket after sendto (unbound, so
// 0.0.0.0 / ::), a raw socket of protocol 253, and a TCP listener + both ends of a connection.
let recordedICMP = """
      sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
       22: 00000000:ECAD 00000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 307351 2 000000004638c1c6 0
    """
let recordedRaw = """
      sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
     221: 00000000:00FD 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 307354 2 000000002f7a1723 0
     221: 0100007F:00FD 0200007F:0000 07 00000000:00000000 00:00000000 00000000  1000        0 307360 2 000000002f7a1724 0
    """
let recordedICMP6 = """
      sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
       23: 00000000000000000000000000000000:ECAE 00000000000000000000000000000000:0000 07 00000000:00000340 00:00000000 00000000     0        0 307355 2 000000003be52ba9 0
    """
let recordedTCP6 = """
      sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
       0: 00000000000000000000000001000000:86EF 00000000000000000000000000000000:0000 0A 00000000:00000001 00:00000000 00000000     0        0 307346 2 00000000ee811700 100 0 0 10 0
       1: 00000000000000000000000001000000:86EF 00000000000000000000000001000000:E348 01 00000000:00000000 00:00000000 00000000     0        0 0 1 000000003fc56a9e 20 0 0 10 -1
       2: 00000000000000000000000001000000:E348 00000000000000000000000001000000:86EF 01 00000000:00000000 00:00000000 00000000     0        0 307347 2 00000000e0b2e1fe 20 0 0 10 -1
    """

@Suite("/proc/net socket tables")
struct ProcNetSocketsTests {
    @Test func parsesIPv4Ping() {
        let rows = ProcNetSockets.parse(recordedICMP, family: .ipv4)
        #expect(rows == [ProcNetSocketRow(local: SocketEndpoint(.v4(0), 0xECAD), remote: SocketEndpoint(.v4(0), 0),
                                          state: 7, uid: 0, inode: 307351)])
    }

    @Test func parsesIPv6Addresses() {
        let rows = ProcNetSockets.parse(recordedTCP6, family: .ipv6)
        #expect(rows.count == 3)
        #expect(rows[0].local == SocketEndpoint(.v6(high: 0, low: 1), 0x86EF))
        #expect(rows[0].state == 0x0A)
        #expect(rows[1].inode == 0)  // not yet accepted
        #expect(rows[2].remote == SocketEndpoint(.v6(high: 0, low: 1), 0x86EF))
        #expect(rows[2].inode == 307347)
    }

    @Test func parsesLoopbackIPv4() {
        let rows = ProcNetSockets.parse(recordedRaw, family: .ipv4)
        #expect(rows.count == 2)
        #expect(rows[1].local.address == IPAddress(parsing: "127.0.0.1"))
        #expect(rows[1].remote.address == IPAddress(parsing: "127.0.0.2"))
        #expect(rows[1].uid == 1000)
    }

    @Test func garbageLinesAreSkipped() {
        let text = recordedICMP + "\n  23: 0000000:ECAD 00000000:0000 07 x\n 24: ZZ\n\n 25: 00000000:"
        #expect(ProcNetSockets.parse(text, family: .ipv4).count == 1)
        for cut in 0...recordedICMP.utf8.count {
            _ = ProcNetSockets.parse(String(decoding: recordedICMP.utf8.prefix(cut), as: UTF8.self), family: .ipv4)
        }
    }

    func fixture() throws -> (TemporaryDirectory, ProcNetSockets) {
        let directory = try TemporaryDirectory("procnet")
        for (name, text) in [("icmp", recordedICMP), ("raw", recordedRaw), ("icmp6", recordedICMP6),
                             ("raw6", "  sl  local_address\n")] {
            try text.write(toFile: directory.path + "/" + name, atomically: true, encoding: .utf8)
        }
        return (directory, ProcNetSockets(netDirectory: directory.path))
    }

    @Test func pingLookupMatchesEchoIDAndWildcard() throws {
        let (directory, tables) = try fixture()
        defer { directory.remove() }
        let local = try #require(IPAddress(parsing: "127.0.0.1"))
        #expect(try tables.lookupPing(family: .ipv4, localAddress: local, echoID: 0xECAD).map(\.inode) == [307351])
        #expect(try tables.lookupPing(family: .ipv4, localAddress: local, echoID: 1).isEmpty)
        let local6 = try #require(IPAddress(parsing: "::1"))
        #expect(try tables.lookupPing(family: .ipv6, localAddress: local6, echoID: 0xECAE).map(\.inode) == [307355])
    }

    @Test func rawLookupReturnsEveryCandidate() throws {
        let (directory, tables) = try fixture()
        defer { directory.remove() }
        let local = try #require(IPAddress(parsing: "127.0.0.1"))
        let remote = try #require(IPAddress(parsing: "127.0.0.2"))
        let other = try #require(IPAddress(parsing: "10.0.0.1"))
        #expect(try tables.lookupRaw(family: .ipv4, protocolNumber: 253, localAddress: local,
                                     remoteAddress: remote).map(\.inode) == [307354, 307360])
        // The connected one is bound to 127.0.0.1 → 127.0.0.2 only.
        #expect(try tables.lookupRaw(family: .ipv4, protocolNumber: 253, localAddress: other,
                                     remoteAddress: remote).map(\.inode) == [307354])
        #expect(try tables.lookupRaw(family: .ipv4, protocolNumber: 17, localAddress: local).isEmpty)
        #expect(try tables.lookupRaw(family: .ipv6, protocolNumber: 253, localAddress: .v6(high: 0, low: 1)).isEmpty)
    }

    /// /proc/net/packet as this kernel writes it: a sender bound to interface 2 (protocol 0), a
    /// sniffer on every interface (ETH_P_ALL, unbound), another uid's socket on interface 2.
    static let recordedPacket = """
        sk               RefCnt Type Proto  Iface R Rmem   User   Inode
        ffff8f0a4c0e3000 3      3    0000   2     1 0      0      81234
        ffff8f0a4c0e4800 3      3    0003   0     1 0      0      81240
        ffff8f0a4c0e5000 3      2    0800   2     1 0      1000   81250
        ffff8f0a4c0e6000 3      3    zz     2     1 0      0      81260
        """

    @Test func packetLookupMatchesUIDAndInterfaceOrUnbound() throws {
        let directory = try TemporaryDirectory("procnet")
        defer { directory.remove() }
        try Self.recordedPacket.write(toFile: directory.path + "/packet", atomically: true, encoding: .utf8)
        let tables = ProcNetSockets(netDirectory: directory.path)
        #expect(ProcNetSockets.parsePacket(Self.recordedPacket) == [
            PacketSocketRow(type: 3, protocolNumber: 0, interface: 2, uid: 0, inode: 81234),
            PacketSocketRow(type: 3, protocolNumber: 3, interface: 0, uid: 0, inode: 81240),
            PacketSocketRow(type: 2, protocolNumber: 0x0800, interface: 2, uid: 1000, inode: 81250),
        ])
        #expect(try tables.lookupPacket(uid: 0, interface: 2).map(\.inode) == [81234, 81240])
        #expect(try tables.lookupPacket(uid: 0, interface: 3).map(\.inode) == [81240])
        #expect(try tables.lookupPacket(uid: 1000, interface: 2).map(\.inode) == [81250])
        #expect(try tables.lookupPacket(uid: 1000, interface: 3).isEmpty)
        for cut in [0, 10, 70, 100] {
            #expect(ProcNetSockets.parsePacket(String(Self.recordedPacket.prefix(cut))).count <= 1)
        }
    }

    @Test func missingTableIsAnError() throws {
        let tables = ProcNetSockets(netDirectory: "/nonexistent-nfowner")
        #expect(throws: SocketLookupError.self) { try tables.lookupPing(family: .ipv4, localAddress: .v4(0), echoID: 1) }
    }
}

@Suite("Socket inode → pids")
struct SocketOwnersTests {
    /// A fixture /proc: pid directories whose fd entries are symbolic links like the kernel's.
    func makeProc(_ processes: [Int32: [Int32: String]]) throws -> TemporaryDirectory {
        let root = try TemporaryDirectory("sockowners")
        for (pid, fds) in processes { try addProcess(root, pid, fds) }
        try root.make("self")  // not a pid: ignored
        return root
    }

    func addProcess(_ root: TemporaryDirectory, _ pid: Int32, _ fds: [Int32: String]) throws {
        try root.make("\(pid)/fd")
        for (fd, target) in fds {
            try FileManager.default.createSymbolicLink(atPath: "\(root.path)/\(pid)/fd/\(fd)", withDestinationPath: target)
        }
    }

    @Test func parsesSocketLinks() {
        #expect(ProcessDescriptors.parseSocketLink("socket:[307351]") == 307351)
        #expect(ProcessDescriptors.parseSocketLink("pipe:[1]") == nil)
        #expect(ProcessDescriptors.parseSocketLink("socket:[]") == nil)
        #expect(ProcessDescriptors.parseSocketLink("socket:[12") == nil)
        #expect(ProcessDescriptors.parseSocketLink("/dev/null") == nil)
    }

    @Test func findsEveryHolder() throws {
        let root = try makeProc([
            100: [0: "/dev/null", 3: "socket:[500]", 4: "socket:[501]"],
            200: [5: "socket:[500]"],  // inherited after fork
            300: [1: "pipe:[9]"],
        ])
        defer { root.remove() }
        let owners = SocketOwners(procRoot: root.path, minimumRescanInterval: 0)
        #expect(owners.pids(forInode: 500) == [100, 200])
        #expect(owners.pids(forInode: 501) == [100])
        #expect(owners.pids(forInode: 999) == [])
        #expect(owners.pids(forInode: 0) == [])
    }

    /// The one-shot scan `rules status` uses (no index): the same answers, from the same fixture.
    @Test func oneShotScanFindsEveryHolder() throws {
        let root = try makeProc([
            100: [0: "/dev/null", 3: "socket:[500]", 4: "socket:[501]"],
            200: [5: "socket:[500]"],
            300: [1: "pipe:[9]"],
        ])
        defer { root.remove() }
        #expect(ProcessDescriptors.pids(procRoot: root.path) == [100, 200, 300])
        #expect(ProcessDescriptors.holders(ofSocketInode: 500, procRoot: root.path) == [100, 200])
        #expect(ProcessDescriptors.holders(ofSocketInode: 501, procRoot: root.path) == [100])
        #expect(ProcessDescriptors.holders(ofSocketInode: 999, procRoot: root.path) == [])
        #expect(ProcessDescriptors.socketInodes(pid: 100, procRoot: root.path) == [3: 500, 4: 501])
        #expect(ProcessDescriptors.socketInodes(pid: 400, procRoot: root.path) == nil)
        #expect(ProcessDescriptors.holders(ofSocketInode: 500, procRoot: root.path + "/missing") == [])
    }

    @Test func missesAreRateLimitedAndNewProcessesFound() throws {
        let root = try makeProc([100: [3: "socket:[500]"]])
        defer { root.remove() }
        var clock = 0.0
        let owners = SocketOwners(procRoot: root.path, minimumRescanInterval: 0.05, now: { clock })
        #expect(owners.pids(forInode: 500) == [100])
        #expect(owners.refreshes == 1)
        #expect(owners.pids(forInode: 500) == [100])  // a verified hit: no refresh
        #expect(owners.refreshes == 1)
        try addProcess(root, 400, [7: "socket:[777]"])
        clock = 0.01
        #expect(owners.pids(forInode: 777) == [])  // too soon after the last refresh
        #expect(owners.refreshes == 1)
        clock = 0.07
        #expect(owners.pids(forInode: 777) == [400])
        #expect(owners.refreshes == 2)
    }

    /// A client that closes its socket and opens the next one at the same fd is found by reading
    /// that fd alone; a socket at a new fd still is, by reading them all; the index stays true.
    @Test func aNewSocketAtAClosedSocketsFdIsFoundByThatFdAlone() throws {
        let root = try makeProc([100: [0: "/dev/null", 1: "/dev/null", 2: "pipe:[7]", 3: "socket:[500]", 4: "/tmp/log"]])
        defer { root.remove() }
        let owners = SocketOwners(procRoot: root.path, minimumRescanInterval: 0)
        #expect(owners.pids(forInode: 500) == [100])  // a refresh: 100 becomes a recent holder
        #expect(owners.refreshes == 1)
        func relink(_ fd: Int32, _ target: String) throws {
            try? FileManager.default.removeItem(atPath: "\(root.path)/100/fd/\(fd)")
            try FileManager.default.createSymbolicLink(atPath: "\(root.path)/100/fd/\(fd)", withDestinationPath: target)
        }
        try relink(3, "socket:[501]")
        #expect(owners.pids(forInode: 501) == [100])
        #expect(owners.reusedDescriptorHits == 1)
        #expect(owners.likelyHolderHits == 1)
        #expect(owners.refreshes == 1)
        #expect(owners.pids(forInode: 500, refreshing: false) == [])  // the index forgot the closed socket
        #expect(owners.pids(forInode: 501) == [100])
        // The next socket at a new fd: the known fd (still 501) misses, the process's fds are read.
        try relink(5, "socket:[502]")
        #expect(owners.pids(forInode: 502) == [100])
        #expect(owners.reusedDescriptorHits == 1)
        #expect(owners.likelyHolderHits == 2)
        #expect(owners.refreshes == 1)
        #expect(owners.pids(forInode: 501) == [100])
    }

    @Test func reusedFdIsNotReportedAndVanishedProcessIsForgotten() throws {
        let root = try makeProc([100: [3: "socket:[500]"], 200: [3: "socket:[600]"]])
        defer { root.remove() }
        let owners = SocketOwners(procRoot: root.path, minimumRescanInterval: 0)
        #expect(owners.pids(forInode: 500) == [100])
        // Process 100 closes the socket and its fd 3 now holds another one.
        try FileManager.default.removeItem(atPath: "\(root.path)/100/fd/3")
        try FileManager.default.createSymbolicLink(atPath: "\(root.path)/100/fd/3", withDestinationPath: "socket:[501]")
        #expect(owners.pids(forInode: 500) == [])
        #expect(owners.pids(forInode: 501) == [100])
        // Process 200 exits between the listing and the fd reads: no error, just gone.
        try FileManager.default.removeItem(atPath: "\(root.path)/200")
        #expect(owners.pids(forInode: 600) == [])
    }
}

/// Opens sockets as uid 65534 inside the namespace, prints their ports and inodes as JSON,
/// then waits for stdin to close.
private let socketHelper = #"""
import socket, os, sys, json, time
ino = lambda s: os.fstat(s.fileno()).st_ino
out = {"pid": os.getpid()}
l = socket.socket(); l.bind(("127.0.0.1", 0)); l.listen()
c = socket.socket(); c.connect(l.getsockname()); a, _ = l.accept()
out["tcp"] = [c.getsockname()[1], l.getsockname()[1], ino(c)]
l2 = socket.socket(); l2.bind(("127.0.0.1", 0)); l2.listen()
c2 = socket.socket(); c2.connect(l2.getsockname()); a2, _ = l2.accept()
out["tw"] = [c2.getsockname()[1], l2.getsockname()[1]]
c2.close(); time.sleep(0.05); a2.close(); time.sleep(0.05)
r = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); r.bind(("127.0.0.1", 0))
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("0.0.0.0", 0)); u.sendto(b"x", r.getsockname())
out["udp"] = [u.getsockname()[1], r.getsockname()[1], ino(u)]
uc = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); uc.connect(r.getsockname()); uc.send(b"y")
out["udpc"] = [uc.getsockname()[1], r.getsockname()[1], ino(uc)]
p = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
p.sendto(b"\x08\0\0\0\0\0\0\0", ("127.0.0.1", 0))
out["ping"] = [p.getsockname()[1], ino(p)]
print(json.dumps(out), flush=True)
sys.stdin.read()
"""#

private struct HelperSockets: Decodable {
    var pid: Int32
    var tcp: [UInt64]
    var tw: [UInt16]
    var udp: [UInt64]
    var udpc: [UInt64]
    var ping: [UInt64]
}

private final class ResultBox: @unchecked Sendable {
    var resolutions: [String: SocketResolution?] = [:]
    var error: String?
    var microsecondsPerLookup: Double?
}

@Suite("Socket resolution in a namespace", .serialized)
struct SocketResolverNamespaceTests {
    func packet(_ transport: TransportInfo, _ protocolNumber: UInt8, from source: String, to destination: String) -> PacketSummary {
        PacketSummary(family: .ipv4, source: IPAddress(parsing: source) ?? .v4(0),
                      destination: IPAddress(parsing: destination) ?? .v4(0), protocolNumber: protocolNumber,
                      totalLength: 60, fragment: nil, transport: transport)
    }

    @Test(.enabled(if: getuid() == 0, "needs root: creates a network namespace and enters it"))
    func resolvesRealSockets() throws {
        let namespace = try TestNamespace("sock")  // loopback up, unprivileged ping allowed
        defer { namespace.close() }
        let namespaceName = namespace.name
        let enter = ["nsenter", "--net=\(namespace.path)"]

        let helper = Process()
        helper.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        helper.arguments = enter + ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups",
                                    "/usr/bin/python3", "-c", socketHelper]
        let output = Pipe(), input = Pipe()
        helper.standardOutput = output
        helper.standardInput = input
        try helper.run()
        defer {
            try? input.fileHandleForWriting.close()
            if helper.isRunning { kill(helper.processIdentifier, SIGKILL) }
            helper.waitUntilExit()
        }
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = output.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line.append(chunk)
        }
        let sockets = try JSONDecoder().decode(HelperSockets.self, from: line)
        #expect(sockets.pid == helper.processIdentifier)

        let tcpPacket = packet(.tcp(TCPInfo(ports: PortPair(source: UInt16(sockets.tcp[0]), destination: UInt16(sockets.tcp[1])), flags: [.ack])),
                               6, from: "127.0.0.1", to: "127.0.0.1")
        let cases: [String: PacketSummary] = [
            "tcp": tcpPacket,
            "tw": packet(.tcp(TCPInfo(ports: PortPair(source: sockets.tw[0], destination: sockets.tw[1]), flags: [.ack])),
                         6, from: "127.0.0.1", to: "127.0.0.1"),
            "closed": packet(.tcp(TCPInfo(ports: PortPair(source: 1, destination: 2), flags: [.rst])),
                             6, from: "127.0.0.1", to: "127.0.0.1"),
            "udp": packet(.udp(PortPair(source: UInt16(sockets.udp[0]), destination: UInt16(sockets.udp[1]))),
                          17, from: "127.0.0.1", to: "127.0.0.1"),
            "udpc": packet(.udp(PortPair(source: UInt16(sockets.udpc[0]), destination: UInt16(sockets.udpc[1]))),
                           17, from: "127.0.0.1", to: "127.0.0.1"),
            "ping": packet(.icmp(ICMPInfo(type: 8, code: 0, echoIdentifier: UInt16(sockets.ping[0]))),
                           1, from: "127.0.0.1", to: "127.0.0.1"),
            "unreachable": packet(.icmp(ICMPInfo(type: 3, code: 3, echoIdentifier: nil)),
                                  1, from: "127.0.0.1", to: "127.0.0.1"),
        ]

        // sock_diag answers for the namespace of the thread that opened the socket: do the
        // lookups on a thread of their own that entered the namespace.
        let box = ResultBox()
        let thread = try DedicatedThread(name: "nfo-sock-test") {
            do {
                try NetworkNamespace.enter(named: namespaceName)
                let resolver = try SocketResolver()
                for (name, packet) in cases {
                    box.resolutions[name] = try resolver.resolve(packet: packet, direction: .outbound)
                }
                let iterations = 10_000
                let start = ContinuousClock.now
                for _ in 0..<iterations {
                    _ = try resolver.diagnostics.lookup(
                        protocol: .tcp, local: SocketEndpoint(tcpPacket.source, UInt16(sockets.tcp[0])),
                        remote: SocketEndpoint(tcpPacket.destination, UInt16(sockets.tcp[1])))
                }
                let elapsed = ContinuousClock.now - start
                let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
                box.microsecondsPerLookup = seconds / Double(iterations) * 1e6
            } catch {
                box.error = "\(error)"
            }
        }
        thread.join()
        #expect(box.error == nil)
        print("sock_diag TCP lookup: \(box.microsecondsPerLookup ?? -1) µs/lookup (this build)")

        let tcp = try #require(box.resolutions["tcp"] ?? nil)
        #expect(tcp.source == .sockDiag)
        #expect(tcp.primary?.inode == sockets.tcp[2])
        #expect(tcp.primary?.uid == 65534)
        #expect(tcp.primary?.cgroupID != nil)
        #expect(tcp.pids == [helper.processIdentifier])

        let timeWait = try #require(box.resolutions["tw"] ?? nil)
        #expect(timeWait.primary?.isTimeWait == true)
        #expect(timeWait.primary?.inode == 0)
        #expect(timeWait.pids.isEmpty)

        #expect(box.resolutions["closed"] == .some(nil))
        #expect(box.resolutions["unreachable"] == .some(nil))

        for name in ["udp", "udpc"] {
            let expected = name == "udp" ? sockets.udp : sockets.udpc
            let udp = try #require(box.resolutions[name] ?? nil, "\(name)")
            #expect(udp.primary?.inode == expected[2], "\(name)")
            #expect(udp.primary?.uid == 65534, "\(name)")
            #expect(udp.pids == [helper.processIdentifier], "\(name)")
        }
        #expect(box.resolutions["udpc"]??.primary?.state == InetDiagState.established)
        #expect(box.resolutions["udp"]??.primary?.state == InetDiagState.close)

        let ping = try #require(box.resolutions["ping"] ?? nil)
        #expect(ping.source == .procNetPing)
        #expect(ping.sockets.map(\.inode) == [sockets.ping[1]])
        #expect(ping.primary?.uid == 65534)
        #expect(ping.pids == [helper.processIdentifier])
    }
}
