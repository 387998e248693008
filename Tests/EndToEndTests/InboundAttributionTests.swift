import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// Issue 13: every inbound packet delivered to a local socket names the receiving program and
    /// its uid, whether or not the kernel attached a uid (it does not on loopback, to unconnected
    /// or wildcard-bound UDP, to ping sockets); a TCP upload that close()s with data still queued
    /// is credited to the uploader on every segment; and what the kernel answers itself stays
    /// `none` with its reason. Receivers and senders are python3 programs of the test, run as
    /// users of their own, in namespaces of the test (`nsenter --net`).
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct InboundAttributionTests {
        static let receiverUID = 65534, senderUID = 65533

        /// From a peer namespace over veth: a UDP download to an unconnected, wildcard-bound
        /// socket; a recvmmsg receiver; echo replies to a ping socket.
        @Test func fromAPeerEveryInboundPacketNamesItsReceiver() throws {
            let (pair, monitor) = try Self.monitoredPair("13peer")
            defer { monitor.stop(); pair.close() }

            let download = try Python.start(Python.udpReceiver, ["0.0.0.0", "9611", "200", "recvfrom"],
                                            in: pair.local, uid: Self.receiverUID)
            try Python.run(Python.udpSender, [pair.localAddress, "9611", "200", "1200"], in: pair.peer)
            let batched = try Python.start(Python.udpReceiver, ["0.0.0.0", "9612", "200", "recvmmsg"],
                                           in: pair.local, uid: Self.receiverUID)
            try Python.run(Python.udpSender, [pair.localAddress, "9612", "200", "1200"], in: pair.peer)
            #expect(download.finish().contains("received 200"))
            #expect(batched.finish().contains("received 200"))
            let pinger = try Python.start(Python.pinger, [pair.peerAddress, "5"], in: pair.local, uid: Self.receiverUID)
            #expect(pinger.finish().contains("replies 5"))

            let all = monitor.waitForEvents(timeout: 8) { events in
                events.filter { $0.string("dir") == "in" && [9611, 9612].contains($0.int("dport")) }.count >= 400
                    && events.filter { $0.string("dir") == "in" && $0.int("icmp_type") == 0 }.count >= 5
            }
            let summary = monitor.stop()
            Self.expectNamed(all.filter { $0.string("dir") == "in" && $0.int("dport") == 9611 }, by: download,
                             uid: Self.receiverUID, count: 200, what: "UDP download to a wildcard-bound socket")
            Self.expectNamed(all.filter { $0.string("dir") == "in" && $0.int("dport") == 9612 }, by: batched,
                             uid: Self.receiverUID, count: 200, what: "recvmmsg receiver")
            Self.expectNamed(all.filter { $0.string("dir") == "in" && $0.int("icmp_type") == 0 }, by: pinger,
                             uid: Self.receiverUID, count: 5, what: "echo replies to a ping socket")
            Self.expectCountedPerConfidence(summary)
        }

        /// Inside one namespace, over loopback (where no inbound packet carries a uid): a TCP
        /// download and a UDP download, the server and the client of different users.
        @Test func overLoopbackEveryInboundPacketNamesItsReceiver() throws {
            let namespace = try TestNamespace("13lo")
            defer { namespace.close() }
            let monitor = try Self.monitor(namespace)
            defer { monitor.stop() }

            let server = try Python.start(Python.tcpServer, ["127.0.0.1", "9621", "300000"], in: namespace,
                                          uid: Self.senderUID)
            let client = try Python.start(Python.tcpClient, ["127.0.0.1", "9621"], in: namespace, uid: Self.receiverUID)
            #expect(client.finish().contains("received 300000"))
            _ = server.finish()
            let receiver = try Python.start(Python.udpReceiver, ["0.0.0.0", "9622", "100", "recvfrom"],
                                            in: namespace, uid: Self.receiverUID)
            try Python.run(Python.udpSender, ["127.0.0.1", "9622", "100", "1200"], in: namespace, uid: Self.senderUID)
            #expect(receiver.finish().contains("received 100"))

            let all = monitor.waitForEvents(timeout: 8) { events in
                events.contains { $0.string("dir") == "in" && $0.string("tcp_flags")?.contains("F") == true
                                  && $0.int("dport") == 9621 }
                    && events.filter { $0.string("dir") == "in" && $0.int("dport") == 9622 }.count >= 100
            }
            let summary = monitor.stop()
            let inbound = all.filter { $0.string("dir") == "in" }
            let toClient = inbound.filter { $0.string("proto") == "tcp" && $0.int("sport") == 9621 }
            let toServer = inbound.filter { $0.string("proto") == "tcp" && $0.int("dport") == 9621 }
            Self.expectNamed(toClient, by: client, uid: Self.receiverUID, count: nil, what: "TCP download, to the client")
            Self.expectNamed(toServer, by: server, uid: Self.senderUID, count: nil, what: "TCP download, to the server")
            #expect(toClient.reduce(0) { $0 + ($1.int("len") ?? 0) } > 300_000)
            Self.expectNamed(inbound.filter { $0.int("dport") == 9622 }, by: receiver, uid: Self.receiverUID, count: 100,
                             what: "UDP download over loopback")
            Self.expectCountedPerConfidence(summary)
        }

        /// An upload to a slow reader that close()s with most of its data still queued, and
        /// exits: the segments sent after close() carry no uid, and are credited to the uploader.
        @Test func anUploadThatClosesWithDataQueuedIsCreditedToTheUploader() throws {
            let (pair, monitor) = try Self.monitoredPair("13up")
            defer { monitor.stop(); pair.close() }
            let reader = try Python.start(Python.slowReader, [pair.peerAddress, "9631"], in: pair.peer, uid: 0)
            let uploader = try Python.start(Python.uploader, [pair.peerAddress, "9631", "2000000"], in: pair.local,
                                            uid: Self.receiverUID)
            #expect(uploader.finish().contains("closed"))
            #expect(reader.finish(timeout: 20).contains("received 2000000"))
            let all = monitor.waitForEvents(timeout: 8) { events in
                events.contains { $0.string("dir") == "in" && $0.int("sport") == 9631
                                  && $0.string("tcp_flags")?.contains("F") == true }
            }
            let summary = monitor.stop()
            let outbound = all.filter { $0.string("dir") == "out" && $0.int("dport") == 9631 }
            let inbound = all.filter { $0.string("dir") == "in" && $0.int("sport") == 9631 }
            // `single` (the pid from the process table) for the connection's first packets when the
            // machine is loaded and the new socket's holder was not indexed in time: the right pid
            // all the same. What is after close() is checked below: `flow`.
            Self.expectNamed(outbound, by: uploader, uid: Self.receiverUID, count: nil, what: "upload, its segments")
            Self.expectNamed(inbound, by: uploader, uid: Self.receiverUID, count: nil, what: "upload, the ACKs it receives")
            // The test is only one if segments left after close(): without a uid, as `flow`.
            let afterClose = outbound.filter { $0.isNull("uid") && ($0.int("len") ?? 0) > 52 }
            #expect(afterClose.count > 10, "data segments sent after close(): \(afterClose.count)")
            #expect(afterClose.allSatisfy { $0.string("confidence") == "flow" })
            let afterCloseBytes = afterClose.reduce(0) { $0 + ($1.int("len") ?? 0) }
            #expect(afterCloseBytes > 100_000)
            print("issue 13 figure: upload, after close(): \(afterCloseBytes) bytes in \(afterClose.count) segments, all flow")
            Self.expectCountedPerConfidence(summary)
        }

        /// An ICMP error arriving for a packet this host sent — the peer's port unreachables for
        /// UDP datagrams to a closed port — goes to the sending socket (the program sees
        /// ECONNREFUSED): each names that program, found from the packet the error quotes.
        @Test func anICMPErrorNamesTheSocketItIsFor() throws {
            let (pair, monitor) = try Self.monitoredPair("13icmp")
            defer { monitor.stop(); pair.close() }
            let prober = try Python.start(Python.closedPortProber, [pair.peerAddress, "9661", "3"], in: pair.local,
                                          uid: Self.receiverUID)
            #expect(prober.finish().contains("refused 3"))
            let all = monitor.waitForEvents(timeout: 8) { events in
                events.filter { $0.string("dir") == "in" && $0.int("icmp_type") == 3 }.count >= 3
            }
            let summary = monitor.stop()
            Self.expectNamed(all.filter { $0.string("dir") == "in" && $0.int("icmp_type") == 3 }, by: prober,
                             uid: Self.receiverUID, count: 3, what: "ICMP port unreachables for a UDP socket",
                             confidences: ["exact"])
            Self.expectCountedPerConfidence(summary)
        }

        /// What the kernel answers itself: its echo replies, RSTs to a closed port, port
        /// unreachables — `none`, reason kernel-generated; the packets that asked for them reach no
        /// socket and say so.
        @Test func kernelMadeAnswersStayNone() throws {
            let (pair, monitor) = try Self.monitoredPair("13k")
            defer { monitor.stop(); pair.close() }
            try Python.run(Python.askTheKernel, [pair.localAddress, "9641"], in: pair.peer)
            let all = monitor.waitForEvents(timeout: 8) { events in
                events.contains { $0.int("icmp_type") == 0 } && events.contains { $0.int("icmp_type") == 3 }
                    && events.contains { $0.string("tcp_flags")?.contains("R") == true }
            }
            let summary = monitor.stop()
            let answers = all.filter { $0.string("dir") == "out" }
            let questions = all.filter { $0.string("dir") == "in" }
            for (what, event) in [("echo reply", answers.first { $0.int("icmp_type") == 0 }),
                                  ("port unreachable", answers.first { $0.int("icmp_type") == 3 }),
                                  ("RST", answers.first { $0.string("tcp_flags")?.contains("R") == true })] {
                guard let event else {
                    Issue.record("no \(what) seen: \(all)")
                    continue
                }
                #expect(event.string("confidence") == "none" && event.string("reason") == "no socket: kernel-generated"
                        && event.isNull("pid") && event.isNull("owner_uid"), "\(what): \(event)")
            }
            #expect(!questions.isEmpty)
            for event in questions {
                #expect(event.string("confidence") == "none" && event.string("reason") == "no socket: none receives it"
                        && event.isNull("pid"), "\(event)")
            }
            #expect(Int(summary["none_kernel_generated"] ?? "") ?? 0 >= 3, "\(summary)")
            #expect(Int(summary["none_not_delivered"] ?? "") ?? 0 >= 3, "\(summary)")
            Self.expectCountedPerConfidence(summary)
        }

        /// `nfowner monitor --input` in `namespace`, JSON out. --keep-rules: the table goes with the
        /// namespace; --no-cgroups: the test's processes are found by their sockets alone.
        static func monitor(_ namespace: TestNamespace) throws -> RunningMonitor {
            try RunningMonitor(["--format", "json", "--netns", namespace.name, "--input", "--keep-rules", "--no-cgroups"])
        }

        /// A veth pair of the test's, `monitor` watching its `local` end.
        static func monitoredPair(_ label: String) throws -> (VethPair, RunningMonitor) {
            let pair = try VethPair(label)
            do {
                return (pair, try monitor(pair.local))
            } catch {
                pair.close()
                throw error
            }
        }

        // MARK: - Checks

        /// Every event names `process` (pid, its uid in `owner_uid`) as one of `confidences`;
        /// `count` of them when given. Prints the share of bytes named, the figure the docs quote.
        /// `single` names a pid too: the answer when the monitor read the flow's first packet after
        /// its socket had closed (a loaded machine, a short transfer), from the process table.
        static func expectNamed(_ events: [[String: Any]], by process: Python, uid: Int, count: Int?, what: String,
                                confidences: Set<String> = ["exact", "flow", "single"]) {
            if let count { #expect(events.count == count, "\(what): \(events.count) events") } else {
                #expect(!events.isEmpty, "\(what): no events")
            }
            var bytes = 0, named = 0
            for event in events {
                let length = event.int("len") ?? 0
                bytes += length
                let ok = event.int("pid") == Int(process.pid) && event.int("owner_uid") == uid
                    && confidences.contains(event.string("confidence") ?? "")
                    && event.string("reason") != "no socket: kernel-generated"
                if ok { named += length } else { Issue.record("\(what): not named \(process.pid)/\(uid): \(event)") }
            }
            let confidences = Dictionary(grouping: events) { $0.string("confidence") ?? "null" }.mapValues(\.count)
            print("issue 13 figure: \(what): \(named) of \(bytes) bytes named (\(events.count) packets, \(confidences))")
        }

        /// The summary line counts every emitted packet under exactly one confidence.
        static func expectCountedPerConfidence(_ summary: [String: String]) {
            let confidences = ["exact", "flow", "single", "program", "candidates", "uid", "none"]
            let counted = confidences.compactMap { summary["confidence_\($0)"].flatMap(Int.init) }
            #expect(counted.count == confidences.count, "\(summary)")
            #expect(counted.reduce(0, +) == Int(summary["emitted"] ?? ""), "\(summary)")
            let reasons = ["kernel_generated", "time_wait", "orphaned", "not_delivered", "other"]
            #expect(reasons.compactMap { summary["none_\($0)"].flatMap(Int.init) }.reduce(0, +)
                    == Int(summary["confidence_none"] ?? ""), "\(summary)")
        }
    }

    /// Two namespaces of the test joined by a veth pair: `local` (10.231.13.1, monitored) and
    /// `peer` (10.231.13.2).
    struct VethPair {
        let local: TestNamespace
        let peer: TestNamespace
        let localAddress = "10.231.13.1", peerAddress = "10.231.13.2"
        /// The interface name of `local`'s end.
        let localEnd: String

        init(_ label: String) throws {
            let tag = "\(getpid() % 10_000)\(UInt8.random(in: 0...99))"
            localEnd = "n13a\(tag)"
            local = try TestNamespace(label)
            do {
                peer = try TestNamespace(label + "p")
                try local.connect(to: peer, end: localEnd, address: localAddress + "/30",
                                  peerEnd: "n13b\(tag)", peerAddress: peerAddress + "/30")
            } catch {
                local.close()
                throw error
            }
        }

        func close() {
            peer.close()
            local.close()
        }
    }

    /// A python3 program of the test, run in a namespace as a user (`setpriv`), started once it
    /// printed its `ready` line; `finish()` waits for it, bounded, then kills it by PID.
    final class Python {
        let process = Process()
        private let output = Pipe()
        /// What came after the ready line in the same read.
        private var early = ""
        var pid: Int32 { process.processIdentifier }

        private init(_ script: String, _ arguments: [String], in namespace: TestNamespace, uid: Int) throws {
            process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            var command = ["nsenter", "--net=\(namespace.path)"]
            if uid != 0 { command += ["setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] }
            process.arguments = command + ["/usr/bin/python3", "-u", "-c", script] + arguments
            process.standardOutput = output
            process.standardError = output
            process.standardInput = FileHandle.nullDevice
            try process.run()
        }

        /// Starts `script` and waits for its `ready` line.
        static func start(_ script: String, _ arguments: [String], in namespace: TestNamespace, uid: Int) throws -> Python {
            let python = try Python(script, arguments, in: namespace, uid: uid)
            let first = String(decoding: python.output.fileHandleForReading.availableData, as: UTF8.self)
            guard first.hasPrefix("ready") else {
                _ = python.finish(timeout: 0)
                throw HarnessError("python \(arguments) did not start: \(first)")
            }
            python.early = String(first.dropFirst("ready".count))
            return python
        }

        /// Runs `script` to its end (at most 20 s) and returns its output.
        @discardableResult
        static func run(_ script: String, _ arguments: [String], in namespace: TestNamespace, uid: Int = 0) throws -> String {
            let python = try Python(script, arguments, in: namespace, uid: uid)
            let text = python.finish(timeout: 20)
            guard python.process.terminationStatus == 0 else { throw HarnessError("python \(arguments) failed: \(text)") }
            return text
        }

        /// Waits for the program to end by itself (at most `timeout` s; then SIGKILL by PID) and
        /// returns what it printed after its ready line.
        func finish(timeout: TimeInterval = 10) -> String {
            let deadline = Date().addingTimeInterval(timeout)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(pid, SIGKILL) }
            process.waitUntilExit()
            return early + String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        }

        deinit {
            if process.isRunning {
                kill(pid, SIGKILL)
                process.waitUntilExit()
            }
        }

        // MARK: - Programs (argv after -c: sys.argv[1:])

        /// ADDRESS PORT COUNT recvfrom|recvmmsg: a UDP socket bound to ADDRESS:PORT, never
        /// connected; receives COUNT datagrams (recvmmsg: up to 16 per call, through ctypes — the
        /// socket module has no recvmmsg) or stops after 10 s.
        static let udpReceiver = #"""
        import ctypes, select, socket, sys, time
        address, port, count, how = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
        s.bind((address, port))
        print("ready", flush=True)
        class iovec(ctypes.Structure): _fields_ = [("base", ctypes.c_void_p), ("len", ctypes.c_size_t)]
        class msghdr(ctypes.Structure): _fields_ = [("name", ctypes.c_void_p), ("namelen", ctypes.c_uint32),
            ("iov", ctypes.POINTER(iovec)), ("iovlen", ctypes.c_size_t), ("control", ctypes.c_void_p),
            ("controllen", ctypes.c_size_t), ("flags", ctypes.c_int)]
        class mmsghdr(ctypes.Structure): _fields_ = [("hdr", msghdr), ("len", ctypes.c_uint)]
        libc = ctypes.CDLL(None, use_errno=True)
        n = 16
        buffers = [ctypes.create_string_buffer(2048) for _ in range(n)]
        iovs = (iovec * n)()
        messages = (mmsghdr * n)()
        for i in range(n):
            iovs[i].base, iovs[i].len = ctypes.cast(buffers[i], ctypes.c_void_p), 2048
            messages[i].hdr.iov, messages[i].hdr.iovlen = ctypes.pointer(iovs[i]), 1
        received, calls, deadline = 0, 0, time.time() + 10
        while received < count and time.time() < deadline:
            if not select.select([s], [], [], 0.2)[0]: continue
            calls += 1
            if how == "recvmmsg":
                got = libc.recvmmsg(s.fileno(), messages, n, 0x10000, None)  # MSG_WAITFORONE
                if got < 0: raise OSError(ctypes.get_errno(), "recvmmsg")
                received += got
            else:
                s.recvfrom(2048)
                received += 1
        print("received", received, "calls", calls)
        """#

        /// ADDRESS PORT COUNT: a UDP socket connected to a closed port sends COUNT datagrams, 0.1 s
        /// apart, and counts the ECONNREFUSED the port unreachables bring; keeps its socket 0.3 s.
        static let closedPortProber = #"""
        import socket, sys, time
        address, port, count = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.connect((address, port))
        s.settimeout(0.5)
        print("ready", flush=True)
        refused = 0
        for _ in range(count):
            s.send(b"x" * 32)
            try:
                s.recv(64)
            except ConnectionRefusedError:
                refused += 1
            except socket.timeout:
                pass
            time.sleep(0.1)
        time.sleep(0.3)
        print("refused", refused)
        """#

        /// ADDRESS PORT COUNT SIZE: sends COUNT datagrams of SIZE bytes, 0.5 ms apart.
        static let udpSender = #"""
        import socket, sys, time
        address, port, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(count):
            s.sendto(b"x" * size, (address, port))
            time.sleep(0.0005)
        """#

        /// ADDRESS COUNT: a ping socket (SOCK_DGRAM, IPPROTO_ICMP) sends COUNT echo requests and
        /// waits for each reply.
        static let pinger = #"""
        import socket, sys, time
        address, count = sys.argv[1], int(sys.argv[2])
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        s.settimeout(2)
        print("ready", flush=True)
        replies = 0
        for seq in range(count):
            s.sendto(bytes([8, 0, 0, 0, 0, 0, 0, seq]) + b"nfowner13" * 6, (address, 0))
            try:
                data, _ = s.recvfrom(2048)
                replies += data[0] == 0
            except socket.timeout:
                pass
            time.sleep(0.05)
        print("replies", replies)
        """#

        /// ADDRESS PORT BYTES: accepts one connection, sends BYTES 0.3 s later (a server at work),
        /// closes it, and goes on listening for 1.5 s like a server that lives on.
        static let tcpServer = #"""
        import socket, sys, time
        address, port, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((address, port))
        listener.listen(1)
        listener.settimeout(10)
        print("ready", flush=True)
        connection, _ = listener.accept()
        time.sleep(0.3)
        connection.sendall(b"d" * size)
        connection.close()
        print("sent", size)
        time.sleep(1.5)
        """#

        /// ADDRESS PORT: connects and reads until EOF.
        static let tcpClient = #"""
        import socket, sys
        s = socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=10)
        print("ready", flush=True)
        received = 0
        while True:
            chunk = s.recv(65536)
            if not chunk: break
            received += len(chunk)
        s.close()
        print("received", received)
        """#

        /// ADDRESS PORT: accepts one connection and reads it slowly (a small receive buffer,
        /// 64 KiB per 20 ms) until EOF.
        static let slowReader = #"""
        import socket, sys, time
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        listener.bind((sys.argv[1], int(sys.argv[2])))
        listener.listen(1)
        listener.settimeout(10)
        print("ready", flush=True)
        connection, _ = listener.accept()
        received = 0
        while True:
            chunk = connection.recv(65536)
            if not chunk: break
            received += len(chunk)
            time.sleep(0.02)
        print("received", received)
        """#

        /// ADDRESS PORT BYTES: connects with a send buffer that holds everything, queues BYTES,
        /// close()s at once and exits.
        static let uploader = #"""
        import socket, sys
        size = int(sys.argv[3])
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)
        s.connect((sys.argv[1], int(sys.argv[2])))
        print("ready", flush=True)
        s.sendall(b"u" * size)
        s.close()
        print("closed")
        """#

        /// ADDRESS PORT: questions only the kernel answers — an echo request (raw socket), a TCP
        /// connection to a closed port, a UDP datagram to one.
        static let askTheKernel = #"""
        import socket, sys, time
        address, port = sys.argv[1], int(sys.argv[2])
        ping = socket.socket(socket.AF_INET, socket.SOCK_DGRAM, socket.IPPROTO_ICMP)
        ping.settimeout(2)
        ping.sendto(bytes([8, 0, 0, 0, 0, 1, 0, 1]) + b"kernel", (address, 0))
        ping.recvfrom(2048)
        tcp = socket.socket()
        tcp.settimeout(2)
        try:
            tcp.connect((address, port))
        except ConnectionRefusedError:
            pass
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.connect((address, port))
        udp.send(b"anyone?")
        time.sleep(0.2)
        try:
            udp.recv(100)
        except ConnectionRefusedError:
            pass
        """#
    }
}
