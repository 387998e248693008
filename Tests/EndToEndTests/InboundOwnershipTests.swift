import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// Which inbound packets carry which owner fields (uid/gid from NFLOG, cgroup from the ruleset's
    /// `socket cgroupv2` match), measured with the real binaries: `nfowner monitor --input` in a
    /// "server" namespace, its receiving processes in test cgroups as nobody/nogroup.
    ///
    /// The two tables below ARE docs/inbound.md's table: if the kernel (or the ruleset) changes
    /// behaviour, these tests fail and the doc must be re-measured.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct InboundOwnershipTests {
        @Test func overVeth() throws {
            let observed = try InboundScenario.run(overVeth: true)
            InboundScenario.check(observed, against: [
                .tcpSynToListener: .init(.none, .listener),
                .tcpHandshakeAck: .init(.none, .none),
                .tcpDataBeforeAccept: .init(.none, .listener),
                .tcpFinBeforeAccept: .init(.none, .listener),
                .tcpDataAfterAccept: .init(.owner, .listener),
                .tcpFinAfterAccept: .init(.owner, .listener),
                // The server closes with SO_LINGER: close() returns only after this ACK (see `run`).
                .tcpLastAckAfterServerClose: .init(.owner, .listener),
                .tcpSynAckToClient: .init(.owner, .client),
                .tcpFinToTimeWaitSocket: .init(.none, .none),
                .udpToBoundSocket: .init(.none, .listener),
                .udpToConnectedSocket: .init(.owner, .client),
                .icmpEchoReplyToPingSocket: .init(.none, .none),
                .icmpPortUnreachableAboutUdp: .init(.none, .client),
            ])
        }

        @Test func overLoopback() throws {
            let observed = try InboundScenario.run(overVeth: false)
            InboundScenario.check(observed, against: [
                .tcpSynToListener: .init(.none, .listener),
                .tcpHandshakeAck: .init(.none, .none),
                .tcpDataBeforeAccept: .init(.none, .listener),
                .tcpFinBeforeAccept: .init(.none, .listener),
                .tcpDataAfterAccept: .init(.none, .listener),
                .tcpFinAfterAccept: .init(.none, .listener),
                .tcpLastAckAfterServerClose: .init(.none, .listener),
                .tcpSynAckToClient: .init(.none, .client),
                .tcpFinToTimeWaitSocket: .init(.none, .none),
                .udpToBoundSocket: .init(.none, .listener),
                .udpToConnectedSocket: .init(.none, .client),
                .icmpEchoReplyToPingSocket: .init(.none, .none),
                .icmpPortUnreachableAboutUdp: .init(.none, .client),
            ])
        }
    }

    /// One inbound packet kind, as named in docs/inbound.md.
    enum InboundCase: String, CaseIterable, CustomStringConvertible {
        case tcpSynToListener = "TCP SYN to a listener"
        case tcpHandshakeAck = "TCP ACK completing the handshake"
        case tcpDataBeforeAccept = "TCP data before accept()"
        case tcpFinBeforeAccept = "TCP FIN before accept()"
        case tcpDataAfterAccept = "TCP data after accept()"
        case tcpFinAfterAccept = "TCP FIN after accept()"
        case tcpLastAckAfterServerClose = "TCP last ACK after the server's close()"
        case tcpSynAckToClient = "TCP SYN-ACK to a connecting client"
        case tcpFinToTimeWaitSocket = "TCP FIN to a client that closed first (time-wait socket)"
        case udpToBoundSocket = "UDP to a bound, unconnected socket"
        case udpToConnectedSocket = "UDP to a connected socket"
        case icmpEchoReplyToPingSocket = "ICMP echo reply to a ping socket"
        case icmpPortUnreachableAboutUdp = "ICMP port unreachable about a UDP socket"

        var description: String { rawValue }
    }

    /// What an inbound event carried.
    struct InboundOwner: Equatable, CustomStringConvertible {
        enum UID: Equatable {
            /// uid and gid are the receiving process's (nobody/nogroup).
            case owner
            /// uid and gid are both null.
            case none
        }
        enum Cgroup: Equatable { case listener, client, none }
        var uid: UID
        var cgroup: Cgroup
        init(_ uid: UID, _ cgroup: Cgroup) { self.uid = uid; self.cgroup = cgroup }
        var description: String { "uid \(uid), cgroup \(cgroup)" }
    }

    /// The traffic of both tables, run once per topology.
    enum InboundScenario {
        static let tcpServerPort = 9401, tcpClientPort = 9402, udpBoundPort = 9403, udpEchoPort = 9404, closedPort = 9405

        /// Observed packets: the event per case (nil when the packet was not seen), with the test's cgroup paths.
        struct Observed {
            var events: [InboundCase: [String: Any]]
            var listenerCgroup: String
            var clientCgroup: String
            var all: [[String: Any]]
        }

        static func check(_ observed: Observed, against expected: [InboundCase: InboundOwner]) {
            let nobody = Int(Harness.unprivilegedUID), nogroup = Int(Harness.unprivilegedGID)
            for (kind, want) in expected.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
                guard let event = observed.events[kind] else {
                    Issue.record("\(kind): no inbound event seen; all events: \(observed.all)")
                    continue
                }
                #expect(event.string("dir") == "in" && event.string("hook") == "input", "\(kind): \(event)")
                switch want.uid {
                case .owner:
                    #expect(event.int("uid") == nobody && event.int("gid") == nogroup, "\(kind) should carry the owner: \(event)")
                case .none:
                    #expect(event.isNull("uid") && event.isNull("gid"), "\(kind) should carry no owner: \(event)")
                }
                switch want.cgroup {
                case .listener:
                    #expect(event.string("cgroup") == observed.listenerCgroup, "\(kind) should be the listener's cgroup: \(event)")
                case .client:
                    #expect(event.string("cgroup") == observed.clientCgroup, "\(kind) should be the client's cgroup: \(event)")
                case .none:
                    #expect(event.isNull("cgroup") && event.isNull("cgroup_id"), "\(kind) should have no cgroup: \(event)")
                }
            }
        }

        /// Builds the topology, runs every case and returns what the monitor printed.
        /// veth: the monitored "server" namespace and a peer joined by a veth pair; loopback: one namespace.
        static func run(overVeth: Bool) throws -> Observed {
            let server = try TestNamespace(overVeth ? "insrv" : "inlo")
            defer { server.close() }
            let peer: TestNamespace
            let serverAddress: String, peerAddress: String
            if overVeth {
                peer = try TestNamespace("inpeer")
                let tag = "\(getpid() % 10_000)\(UInt8.random(in: 0...99))"
                try server.connect(to: peer, end: "nfis\(tag)", address: "10.231.1.1/30",
                                   peerEnd: "nfip\(tag)", peerAddress: "10.231.1.2/30")
                (serverAddress, peerAddress) = ("10.231.1.1", "10.231.1.2")
            } else {
                peer = server
                (serverAddress, peerAddress) = ("127.0.0.1", "127.0.0.1")
            }
            defer { peer.close() }

            // Made before the monitor starts, so its discovery (levels 1-3) finds them at once.
            let cgroups = try TestCgroups("inb")
            defer { cgroups.close() }
            let listenerCgroup = try cgroups.make(cgroups.top + "/listener")
            let clientCgroup = try cgroups.make(cgroups.top + "/client")

            // --keep-rules: the table goes with the namespace, and removing it means an `nft list
            // table` whose time grows with the cgroups discovered (seconds with ~1,000 cgroups).
            // --no-processes: the table is of what the kernel and the ruleset hand over; with owner
            // resolution on, `cgroup` becomes the named receiving process's own (see
            // InboundAttributionTests for the processes named on these packets).
            let monitor = try RunningMonitor(["--format", "json", "--netns", server.name, "--input", "--keep-rules",
                                              "--no-processes"])
            defer { monitor.stop() }

            // 1. TCP server in the listener cgroup: connection A is accepted at once; connection B
            //    waits in the accept queue (the server reads A until EOF) while it sends data and FIN.
            //    The server closes each connection with SO_LINGER, so close() returns only once the
            //    client acknowledged its FIN: that last ACK always reaches a socket with its file. (A
            //    plain close() races it: the socket is orphaned when close() returns, and over veth
            //    the ACK comes back within microseconds, before or after — both were seen.)
            do {
                let listener = try Background(cgroup: cgroups.directory(listenerCgroup), namespace: server,
                                              [Harness.traffic, "listen", "--tcp", "--port", "\(tcpServerPort)",
                                               "--address", serverAddress, "--timeout", "6", "--accept", "2", "--linger", "3"] + nobody)
                defer { listener.finish() }
                let script = """
                    exec 3<>/dev/tcp/\(serverAddress)/\(tcpServerPort); sleep 0.3; printf after >&3
                    exec 4<>/dev/tcp/\(serverAddress)/\(tcpServerPort); printf before >&4; exec 4>&-
                    sleep 0.3; exec 3>&-
                    """
                try peer.exec(["bash", "-c", script]).check("tcp client script")
            }
            // 2. TCP client in the client cgroup, to a listener in the peer (outside the test cgroups).
            //    The listener is busy with a first connection (the holder's), so it accepts, reads and
            //    closes the client's connection only ~0.5 s after the client closed it. By then the
            //    client's socket is a time-wait socket: an orphan whose FIN is acknowledged becomes one
            //    at once (FIN_WAIT2 substate, tcp_fin_timeout 60 s = TCP_TIMEWAIT_LEN), whatever the
            //    scheduling, since the ACK is processed after close() orphaned it.
            let clientPort: Int?
            do {
                let listener = try Background(cgroup: nil, namespace: peer,
                                              [Harness.traffic, "listen", "--tcp", "--port", "\(tcpClientPort)",
                                               "--address", peerAddress, "--timeout", "5", "--accept", "2"])
                defer { listener.finish() }
                let hold = "exec 3<>/dev/tcp/\(peerAddress)/\(tcpClientPort) && echo ready && sleep 0.5 && exec 3>&-"
                let holder = try Background(cgroup: nil, namespace: peer, ["bash", "-c", hold])
                defer { holder.finish() }
                let sent = try cgroups.traffic(in: clientCgroup, namespace: server,
                                               ["tcp", "--to", peerAddress, "--port", "\(tcpClientPort)", "--bytes", "100"])
                clientPort = sent["local"].flatMap { $0.split(separator: ":").last }.flatMap { Int($0) }
            }
            // 3. UDP to a bound, unconnected socket in the listener cgroup.
            do {
                let receiver = try Background(cgroup: cgroups.directory(listenerCgroup), namespace: server,
                                              [Harness.traffic, "listen", "--udp", "--port", "\(udpBoundPort)",
                                               "--address", serverAddress, "--timeout", "3", "--count", "1"] + nobody)
                defer { receiver.finish() }
                try peer.traffic(["udp", "--to", serverAddress, "--port", "\(udpBoundPort)"], asUnprivileged: false)
            }
            // 4. UDP replies to a connected socket (roundtrip) in the client cgroup.
            do {
                let echo = try Background(cgroup: nil, namespace: peer,
                                          [Harness.traffic, "listen", "--udp", "--echo", "--port", "\(udpEchoPort)",
                                           "--address", peerAddress, "--timeout", "3", "--count", "1"])
                defer { echo.finish() }
                try cgroups.traffic(in: clientCgroup, namespace: server,
                                    ["roundtrip", "--to", peerAddress, "--port", "\(udpEchoPort)", "--count", "1"])
            }
            // 5. An echo reply to a ping socket; 6. a port unreachable about a connected UDP socket.
            try cgroups.traffic(in: clientCgroup, namespace: server, ["ping", "--to", peerAddress])
            try cgroups.traffic(in: clientCgroup, namespace: server,
                                ["udp", "--to", peerAddress, "--port", "\(closedPort)"])

            let all = monitor.waitForEvents { classify($0, clientPort: clientPort).count == InboundCase.allCases.count }
            monitor.stop()
            return Observed(events: classify(all, clientPort: clientPort), listenerCgroup: listenerCgroup, clientCgroup: clientCgroup, all: all)
        }

        private static let nobody = ["--uid", String(Harness.unprivilegedUID), "--gid", String(Harness.unprivilegedGID)]

        /// Picks each case's packet out of the monitor's events (inbound only, in arrival order).
        /// `clientPort` is the TCP client's local port (the result line's `local`).
        static func classify(_ events: [[String: Any]], clientPort: Int?) -> [InboundCase: [String: Any]] {
            let inbound = events.filter { $0.string("dir") == "in" }
            var found: [InboundCase: [String: Any]] = [:]

            // The server's two connections, told apart by the order of their SYNs.
            let toServer = inbound.filter { $0.string("proto") == "tcp" && $0.int("dport") == tcpServerPort }
            let clientPorts = toServer.filter { $0.string("tcp_flags") == "S" }.compactMap { $0.int("sport") }
            if clientPorts.count >= 2 {
                let accepted = toServer.filter { $0.int("sport") == clientPorts[0] }
                let queued = toServer.filter { $0.int("sport") == clientPorts[1] }
                found[.tcpSynToListener] = accepted.first { $0.string("tcp_flags") == "S" }
                found[.tcpHandshakeAck] = accepted.first { $0.string("tcp_flags") == "A" }
                found[.tcpDataAfterAccept] = accepted.first { $0.string("tcp_flags") == "PA" }
                found[.tcpFinAfterAccept] = accepted.first { $0.string("tcp_flags") == "FA" }
                if let fin = accepted.firstIndex(where: { $0.string("tcp_flags") == "FA" }) {
                    found[.tcpLastAckAfterServerClose] = accepted[(fin + 1)...].first { $0.string("tcp_flags") == "A" }
                }
                found[.tcpDataBeforeAccept] = queued.first { $0.string("tcp_flags") == "PA" }
                found[.tcpFinBeforeAccept] = queued.first { $0.string("tcp_flags") == "FA" }
            }
            let toClient = inbound.filter {
                $0.string("proto") == "tcp" && $0.int("sport") == tcpClientPort && $0.int("dport") == clientPort
            }
            found[.tcpSynAckToClient] = toClient.first { $0.string("tcp_flags") == "SA" }
            found[.tcpFinToTimeWaitSocket] = toClient.first { $0.string("tcp_flags") == "FA" }

            let udp = inbound.filter { $0.string("proto") == "udp" }
            found[.udpToBoundSocket] = udp.first { $0.int("dport") == udpBoundPort }
            found[.udpToConnectedSocket] = udp.first { $0.int("sport") == udpEchoPort }
            let icmp = inbound.filter { $0.string("proto") == "icmp" }
            found[.icmpEchoReplyToPingSocket] = icmp.first { $0.int("icmp_type") == 0 }
            found[.icmpPortUnreachableAboutUdp] = icmp.first { $0.int("icmp_type") == 3 && $0.int("icmp_code") == 3 }
            return found
        }
    }

    /// A traffic-generator server running in the background (optionally placed in a cgroup first),
    /// started once it printed its `ready` line; `finish()` waits for it, bounded, then kills it by PID.
    private final class Background {
        let process = Process()

        init(cgroup: String?, namespace: TestNamespace, _ command: [String]) throws {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            let enter = "exec nsenter --net=\"$2\" \"${@:3}\""
            let script = cgroup == nil ? enter : "echo $$ > \"$1/cgroup.procs\" && " + enter
            process.arguments = ["-c", script, "nfowner-test", cgroup ?? "", namespace.path] + command
            let output = Pipe()
            process.standardOutput = output
            process.standardError = FileHandle.nullDevice
            try process.run()
            // `ready` (the holder: `ready` alone) is the first line, flushed as soon as the socket exists; EOF (empty) means it failed.
            let first = String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
            guard first.hasPrefix("ready") else {
                finish()
                throw HarnessError("\(command.dropFirst().joined(separator: " ")) did not start: \(first)")
            }
        }

        /// Lets the server end by itself (it exits after its --count/--accept), for at most 3 s.
        func finish() {
            let deadline = Date().addingTimeInterval(3)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
    }
}
