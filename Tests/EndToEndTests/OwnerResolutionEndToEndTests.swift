import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// Owner resolution against the real kernel: process events, sock_diag, /proc.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct OwnerResolutionEndToEndTests {
        @Test func fiftyShortLivedSendersAreNamedWithTheirExe() throws {
            let namespace = try TestNamespace("own50")
            defer { namespace.close() }
            let cgroups = try TestCgroups("own50")
            defer { cgroups.close() }
            let cgroup = try cgroups.make(cgroups.top + "/burst")
            // 10 ms batches: a packet is matched to the processes alive within that window.
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--flush-timeout", "1"])
            var senders: [Int] = []
            for _ in 0..<50 {
                let result = try cgroups.traffic(in: cgroup, namespace: namespace,
                                                 ["burst-exit", "--to", "127.0.0.1", "--port", "9501"])
                if let pid = result["pid"].flatMap(Int.init) { senders.append(pid) }
                Thread.sleep(forTimeInterval: 0.03)
            }
            let events = monitor.waitForEvents(timeout: 10) { $0.filter { $0.int("dport") == 9501 }.count >= 50 }
                .filter { $0.int("dport") == 9501 }
            monitor.stop()
            #expect(events.count == 50)
            let named = events.filter {
                ["single", "exact"].contains($0.string("confidence") ?? "")
                    && ($0.string("exe") ?? "").hasSuffix("/nfowner-traffic")
            }
            #expect(named.count == 50, "\(50 - named.count) of 50 not named: \(events.filter { !named.map { $0.int("sport") }.contains($0.int("sport")) }.map { "\($0.string("confidence") ?? "-"): \($0.string("reason") ?? "")" })")
            #expect(Set(named.compactMap { $0.int("pid") }).isSubset(of: Set(senders)))
        }

        /// A root HTTP server in the root cgroup (which no rule classifies) answers and closes the
        /// connection before its reply is read (batched); a root process starts meanwhile. Without
        /// a cgroup the candidates are the processes that started or exited around the packet,
        /// which named the newcomer `single`; the reply is the server's — the connection's owner or
        /// the listener's — on every packet.
        @Test func aServersReplyReadAfterItClosedNamesTheServerNotANewcomer() throws {
            let namespace = try TestNamespace("ownsrv")
            defer { namespace.close() }
            let cgroups = try TestCgroups("ownsrv")
            defer { cgroups.close() }
            let client = try cgroups.make(cgroups.top + "/client")
            let server = Process()
            server.executableURL = URL(fileURLWithPath: "/bin/bash")
            server.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec nsenter --net=\"$2\" python3 -m http.server 9503 --bind 127.0.0.1",
                                "nfowner-test", cgroups.mountPoint, namespace.path]
            server.standardOutput = FileHandle.nullDevice
            server.standardError = FileHandle.nullDevice
            try server.run()
            defer {
                kill(server.processIdentifier, SIGKILL)
                server.waitUntilExit()
            }
            let serverPID = Int(server.processIdentifier)
            for _ in 0..<100 where !(try namespace.exec(["ss", "-ltn"]).stdout.contains("127.0.0.1:9503")) {
                Thread.sleep(forTimeInterval: 0.05)
            }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/bin/bash")
            curl.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec nsenter --net=\"$2\" setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -m 3 -o /dev/null http://127.0.0.1:9503/",
                              "nfowner-test", cgroups.directory(client), namespace.path]
            try curl.run()
            curl.waitUntilExit()
            // The newcomer: root, in the root cgroup, started before the reply's batch is read.
            let newcomer = Process()
            newcomer.executableURL = URL(fileURLWithPath: "/bin/bash")
            newcomer.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec sleep 1", "nfowner-test", cgroups.mountPoint]
            try newcomer.run()
            defer { newcomer.waitUntilExit() }
            let events = monitor.waitForEvents { events in
                events.contains { $0.int("sport") == 9503 && ($0.string("tcp_flags") ?? "").contains("F") }
            }
            monitor.stop()
            let replies = events.filter { $0.int("sport") == 9503 }
            #expect(replies.count >= 3, "\(replies.count) packets from the server")
            for reply in replies {
                #expect(reply.int("pid") == serverPID,
                        "\(reply.string("tcp_flags") ?? ""): pid \(reply.int("pid") ?? -1) \(reply.string("comm") ?? "-") \(reply.string("confidence") ?? "-"): \(reply.string("reason") ?? ""); the server is \(serverPID), the newcomer \(newcomer.processIdentifier)")
            }
        }

        @Test func twoProgramsOfOneUserInOneCgroupAreToldApartExactlyOverTCP() throws {
            let namespace = try TestNamespace("ownx")
            defer { namespace.close() }
            let cgroups = try TestCgroups("ownx")
            defer { cgroups.close() }
            let cgroup = try cgroups.make(cgroups.top + "/shared")
            let listener = try namespace.tcpListener(port: 9502, accept: 2)
            defer { listener.stop() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--flush-timeout", "1"])

            // curl and bash (/dev/tcp), same uid, same cgroup, at the same time; both hold their
            // connection open for a moment, as a real client does.
            let curl = Process()
            curl.executableURL = URL(fileURLWithPath: "/bin/bash")
            curl.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec nsenter --net=\"$2\" setpriv --reuid=65534 --regid=65534 --clear-groups curl -s -m 3 -o /dev/null --data-binary @/etc/services http://127.0.0.1:9502/",
                              "nfowner-test", cgroups.directory(cgroup), namespace.path]
            try curl.run()
            let bash = Process()
            bash.executableURL = URL(fileURLWithPath: "/bin/bash")
            bash.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec nsenter --net=\"$2\" setpriv --reuid=65534 --regid=65534 --clear-groups bash -c 'exec 3<>/dev/tcp/127.0.0.1/9502; echo hello >&3; read -t 1 -u 3; :'",
                              "nfowner-test", cgroups.directory(cgroup), namespace.path]
            try bash.run()
            let bashPID = Int(bash.processIdentifier)
            curl.waitUntilExit()
            bash.waitUntilExit()
            let events = monitor.waitForEvents { events in
                events.contains { $0.string("comm") == "curl" } && events.contains { $0.string("comm") == "bash" }
            }
            monitor.stop()
            let client = events.filter { $0.int("dport") == 9502 && $0.string("tcp_flags") == "S" }
            #expect(client.count == 2)
            for syn in client {
                #expect(syn.string("confidence") == "exact")
                #expect(syn.int("uid") == Int(Harness.unprivilegedUID))
            }
            // bash was exec'd by the wrapper chain (bash → nsenter → setpriv → bash): same pid. It
            // waits with the builtin `read`, so no child shares its socket.
            let fromBash = events.filter { $0.int("dport") == 9502 && $0.string("comm") == "bash" }
            #expect(!fromBash.isEmpty)
            #expect(fromBash.allSatisfy { $0.int("pid") == bashPID && $0.string("exe") == "/usr/bin/bash" })
            #expect(events.contains { $0.int("dport") == 9502 && $0.string("comm") == "curl" && $0.string("exe") == "/usr/bin/curl" })
        }

        @Test func pingAndRawSendersFromDistinctCgroupsAreAmongTheCandidates() throws {
            let namespace = try TestNamespace("ownicmp")
            defer { namespace.close() }
            let cgroups = try TestCgroups("ownicmp")
            defer { cgroups.close() }
            let pingCgroup = try cgroups.make(cgroups.top + "/pinger")
            let rawCgroup = try cgroups.make(cgroups.top + "/raw")
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--flush-timeout", "1"])
            let ping = try cgroups.traffic(in: pingCgroup, namespace: namespace, ["ping", "--to", "127.0.0.1"])
            let raw = try cgroups.traffic(in: rawCgroup, namespace: namespace,
                                          ["raw", "--to", "127.0.0.1", "--protocol", "253"], asUnprivileged: false)
            let events = monitor.waitForEvents {
                $0.contains { $0.int("icmp_type") == 8 } && $0.contains { $0.int("proto_num") == 253 }
            }
            monitor.stop()
            let echo = try #require(events.first { $0.int("icmp_type") == 8 })
            #expect(echo.string("cgroup") == pingCgroup)
            let echoPIDs = (echo["processes"] as? [[String: Any]] ?? []).compactMap { $0.int("pid") }
            #expect(echoPIDs.contains(Int(ping["pid"] ?? "") ?? -1))
            let rawEvent = try #require(events.first { $0.int("proto_num") == 253 })
            #expect(rawEvent.string("cgroup") == rawCgroup)
            let rawPIDs = (rawEvent["processes"] as? [[String: Any]] ?? []).compactMap { $0.int("pid") }
            #expect(rawPIDs.contains(Int(raw["pid"] ?? "") ?? -1))
        }

        @Test func kernelMadePacketsHaveConfidenceNoneWithAReason() throws {
            let namespace = try TestNamespace("ownk")
            defer { namespace.close() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9503"])
            try namespace.traffic(["tcp", "--to", "127.0.0.1", "--port", "9504", "--bytes", "1"])
            let events = monitor.waitForEvents {
                $0.contains { $0.int("icmp_type") == 3 } && $0.contains { ($0.string("tcp_flags") ?? "").contains("R") }
            }
            monitor.stop()
            let unreachable = try #require(events.first { $0.int("icmp_type") == 3 })
            #expect(unreachable.string("confidence") == "none")
            #expect(unreachable.string("reason") == "no socket: kernel-generated")
            #expect((unreachable["processes"] as? [Any])?.isEmpty == true)
            let reset = try #require(events.first { ($0.string("tcp_flags") ?? "").contains("R") })
            #expect(reset.string("confidence") == "none")
            #expect((reset.string("reason") ?? "").hasPrefix("no socket"))
        }
    }
}
