import Foundation
import TestSupport
import Testing

/// `nfowner enforce` running in the background with a policy file of the test's; stdout holds
/// the audit events.
final class RunningEnforcer: RunningMonitor {
    let policyURL: URL

    /// Writes `policy` to a file, starts the enforcer and waits until it decides packets.
    init(policy: String, _ arguments: [String]) throws {
        policyURL = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-enforce-\(UUID().uuidString).toml")
        try policy.write(to: policyURL, atomically: true, encoding: .utf8)
        try super.init(command: "enforce", ["--policy", policyURL.path] + arguments,
                       readyNote: "deciding packets from NFQUEUE queue", summaryPrefix: "held=")
    }

    deinit { try? FileManager.default.removeItem(at: policyURL) }
}

extension EndToEnd {
    /// `nfowner enforce` in a client namespace joined to a peer namespace whose listeners are real
    /// (`nfowner-traffic listen`); traffic goes only between the two.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    final class EnforceEndToEndTests {
        let client: TestNamespace
        let peer: TestNamespace
        static let clientAddress = "10.231.15.1"
        static let peerAddress = "10.231.15.2"
        static let nobody = Harness.unprivilegedUID
        /// A second unprivileged uid (no passwd entry needed).
        static let other: UInt32 = 4242

        init() throws {
            client = try TestNamespace("enf")
            peer = try TestNamespace("enfp")
            let tag = String(UInt32.random(in: 0...0xFFFF), radix: 16)
            do {
                try client.connect(to: peer, end: "nfen\(tag)", address: Self.clientAddress + "/30",
                                   peerEnd: "nfep\(tag)", peerAddress: Self.peerAddress + "/30")
            } catch {
                client.close()
                peer.close()
                throw error
            }
        }

        deinit {
            client.close()
            peer.close()
        }

        /// Starts `command` inside `namespace` and returns once it printed its first line (a
        /// ready line); the rest of its stdout is in the pipe. The caller ends it (by PID).
        private static func start(in namespace: TestNamespace, _ command: [String]) throws -> (Process, Pipe) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
            process.arguments = ["--net=\(namespace.path)"] + command
            let output = Pipe()
            process.standardOutput = output
            try process.run()
            _ = output.fileHandleForReading.availableData
            return (process, output)
        }

        /// A TCP sink on the peer's address.
        private func listener(port: Int, accept: Int = 20) throws -> BackgroundProcess {
            try BackgroundProcess(["nsenter", "--net=\(peer.path)", Harness.traffic, "listen", "--tcp", "--port", String(port),
                                   "--address", Self.peerAddress, "--timeout", "30", "--accept", String(accept)],
                                  waitForOutput: true)
        }

        /// One TCP connection from the client namespace as `uid`; its result line's keys.
        private func connect(port: Int, uid: UInt32 = nobody, timeout: Double = 2) throws -> [String: String] {
            try client.traffic(["tcp", "--to", Self.peerAddress, "--port", String(port), "--timeout", String(timeout), "--quiet",
                                "--uid", String(uid), "--gid", String(uid)], asUnprivileged: false)
        }

        private func filterRules() throws -> String {
            try client.exec(["iptables", "-S"]).stdout + (try client.exec(["ip6tables", "-S"]).stdout)
        }

        private static func seconds(_ result: [String: String]) -> Double {
            Double(result["elapsed_ns"] ?? "") .map { $0 / 1e9 } ?? .infinity
        }

        /// The issue's first test: uid A may reach only TCP 8080 — 8080 works, 9090 is rejected
        /// within a second (a TCP reset: connect() fails at once) — and another uid is dropped by
        /// the default (in the kernel); each logged decision is an audit event naming its rule;
        /// SIGINT removes the rules.
        @Test func aUidMayReachOnlyTcp8080() throws {
            let web = try listener(port: 8080)
            defer { web.stop() }
            let other = try listener(port: 9090)
            defer { other.stop() }
            let enforcer = try RunningEnforcer(policy: """
                default = "deny"
                fail = "closed"
                [[rule]]
                name = "web-only"
                action = "allow"
                log = true
                uid = [\(Self.nobody)]
                proto = ["tcp"]
                dst_port = [8080, "8000-8001"]
                [[rule]]
                name = "nobody-rest"
                action = "reject"
                log = true
                uid = \(Self.nobody)
                """, ["--netns", client.name])
            defer { enforcer.stop() }
            #expect(enforcer.stderr.contains("via iptables NFQUEUE in the filter table (nft's queue statement is missing") || enforcer.stderr.contains("nft has the queue statement here"), "\(enforcer.stderr)")
            #expect(try filterRules().contains("-A OUTPUT -j NFOWNER-ENFORCE"))

            let allowed = try connect(port: 8080)
            #expect(allowed["sent"] == "1" && allowed["errors"] == "0", "\(allowed)")
            let rejected = try connect(port: 9090)
            #expect(rejected["sent"] == "0" && rejected["errors"] == "1", "\(rejected)")
            #expect(Self.seconds(rejected) < 1, "rejected after \(Self.seconds(rejected)) s")
            let dropped = try connect(port: 8080, uid: Self.other, timeout: 1.5)
            #expect(dropped["sent"] == "0" && dropped["errors"] == "1", "\(dropped)")
            #expect(Self.seconds(dropped) >= 1.4, "a denied SYN is dropped, not answered: \(dropped)")

            let summary = enforcer.stop()
            let events = enforcer.events
            #expect(events.map { $0.string("rule") } == ["web-only", "nobody-rest"], "\(events)")
            #expect(events.map { $0.string("action") } == ["allow", "reject"])
            #expect(events.first?.int("dport") == 8080)
            #expect(events.first?.int("uid") == Int(Self.nobody))
            #expect(events.first?.string("comm") == "nfowner-traffic")
            // The logged rules' flows came to nfowner; the default (deny, not logged) is the
            // kernel's alone (fast path): the other uid's SYNs never reached it.
            #expect(summary["allow"] == "1" && summary["reject"] == "1" && summary["deny"] == "0", "\(summary)")
            #expect(summary["held"] == "2", "\(summary)")
            #expect(summary["verdict_failures"] == "0")
            // Two packets seconds apart: each verdict went out on its own, at once.
            #expect(summary["verdict_sends"] == "2", "\(summary)")
            #expect(!(try filterRules()).contains("NFOWNER"), "rules left after SIGINT")
        }

        /// `nfowner run` with `[enforce] policy`: the daemon accounts and enforces — a rejected
        /// port fails at once, an allowed one connects — counts the decisions in its metrics,
        /// writes the logged rule's audit events, re-reads the policy on SIGHUP (the newly
        /// rejected port fails), and removes enforce mode's rules when stopped.
        @Test func theDaemonEnforcesItsPolicyAndCountsTheDecisions() throws {
            let web = try listener(port: 8080)
            defer { web.stop() }
            let other = try listener(port: 9090)
            defer { other.stop() }
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-runenf-\(UUID().uuidString)")
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            defer { try? FileManager.default.removeItem(at: directory) }
            let policy = directory.appendingPathComponent("policy.toml"), audit = directory.appendingPathComponent("audit.jsonl")
            func writePolicy(_ ports: String) throws {
                try """
                    default = "allow"
                    fail = "open"
                    [[rule]]
                    name = "no-\(ports)"
                    action = "reject"
                    log = true
                    uid = [\(Self.nobody)]
                    proto = ["tcp"]
                    dst_port = [\(ports)]
                    """.write(to: policy, atomically: true, encoding: .utf8)
            }
            try writePolicy("9090")
            let daemon = try RunningDaemon(config: """
                [storage]
                path = "@DB@"
                [metrics]
                listen = "127.0.0.1:@PORT@"
                [enforce]
                policy = "\(policy.path)"
                queue = 17
                audit_log = "\(audit.path)"
                """, in: client)
            defer { daemon.stop() }
            #expect(daemon.log.contains("enforcing 1 rule(s), default allow, mode enforce, fail open"), "\(daemon.log)")
            #expect(try filterRules().contains("-A OUTPUT -j NFOWNER-ENFORCE"))

            let allowed = try connect(port: 8080)
            #expect(allowed["sent"] == "1" && allowed["errors"] == "0", "\(allowed)")
            let rejected = try connect(port: 9090)
            #expect(rejected["sent"] == "0" && rejected["errors"] == "1" && Self.seconds(rejected) < 1, "\(rejected)")
            // The accounting totals are published twice a second: wait for the connection's.
            let deadline = Date().addingTimeInterval(5)
            while RunningDaemon.sum(RunningDaemon.samples(try daemon.scrape()), "nfowner_packets_total",
                                    ["direction": "out", "proto": "tcp", "user": RunDaemonTests.userName(Int(Self.nobody))]) == 0,
                  Date() < deadline {
                usleep(200_000)
            }
            // Each scrape's own connection is a new flow too, allowed by the default: counted
            // below as the allows beyond the one connection to 8080.
            let samples = RunningDaemon.samples(try daemon.scrape())
            let scrapes = (samples[#"nfowner_enforce_decisions_total{action="allow"}"#] ?? 0) - 1
            #expect(scrapes >= 1, "\(samples)")
            #expect(samples[#"nfowner_enforce_decisions_total{action="reject"}"#] == 1, "\(samples)")
            #expect(samples[#"nfowner_enforce_decisions_total{action="deny"}"#] == 0, "\(samples)")
            #expect(samples["nfowner_enforce_audit_events_total"] == 1, "\(samples)")
            // Accounting goes on beside it: the allowed connection's packets are counted.
            #expect(RunningDaemon.sum(samples, "nfowner_packets_total",
                                      ["direction": "out", "proto": "tcp", "user": RunDaemonTests.userName(Int(Self.nobody))]) > 0, "\(samples)")

            try writePolicy("8080, 9090")
            daemon.signal(SIGHUP)
            try daemon.waitForLog("SIGHUP: policy reloaded: 1 rule(s)", timeout: 5)
            let nowRejected = try connect(port: 8080)
            #expect(nowRejected["sent"] == "0" && nowRejected["errors"] == "1", "\(nowRejected)")

            #expect(daemon.stop() == 0, "\(daemon.log)")
            let allows = Int(scrapes) + 1
            #expect(daemon.log.contains("held=\(allows + 2) decided=\(allows + 2) allow=\(allows) deny=0 reject=2"), "\(daemon.log)")
            #expect(!(try filterRules()).contains("NFOWNER"), "enforce rules left after SIGTERM")
            let events = (try String(contentsOf: audit, encoding: .utf8)).split(separator: "\n")
            #expect(events.count == 2 && events.allSatisfy { $0.contains(#""action":"reject""#) }, "\(events)")
        }

        /// The daemon refuses to start with a policy file that has errors, naming the line.
        @Test func theDaemonRefusesABadPolicy() throws {
            let policy = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-badpolicy-\(UUID().uuidString).toml")
            try "default = \"maybe\"\n".write(to: policy, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: policy) }
            // No history, no endpoint: nothing of the host's is touched even if it started.
            let config = policy.appendingPathExtension("config.toml")
            try "[storage]\npath = \"\"\n[metrics]\nlisten = \"\"\n".write(to: config, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: config) }
            let result = try Harness.run("/usr/bin/timeout", ["-s", "KILL", "20", Harness.nfowner, "run", "--netns", client.name,
                                                              "--config", config.path, "--policy", policy.path])
            #expect(result.status != 0)
            #expect(result.stderr.contains("\(policy.path):1:"), "\(result.stderr)")
            #expect(!(try filterRules()).contains("NFOWNER"))
        }

        /// A cgroup denied everything but UDP 53: its datagrams to port 53 arrive, its TCP
        /// connection is rejected at once; the same program outside the cgroup connects.
        @Test func aCgroupDeniedEverythingButUdp53() throws {
            let cgroups = try TestCgroups("enfcg")
            defer { cgroups.close() }
            let box = try cgroups.make(cgroups.top + "/box.service")
            let web = try listener(port: 8080)
            defer { web.stop() }
            let (dns, dnsOutput) = try Self.start(in: peer, [Harness.traffic, "listen", "--udp", "--port", "53",
                                                             "--address", Self.peerAddress, "--count", "2", "--timeout", "10"])
            defer { if dns.isRunning { kill(dns.processIdentifier, SIGKILL) } }
            let enforcer = try RunningEnforcer(policy: """
                default = "allow"
                [[rule]]
                name = "box-dns"
                action = "allow"
                cgroup = "\(cgroups.top)"
                unit = "box*.service"
                proto = "udp"
                dst_port = 53
                [[rule]]
                name = "box-rest"
                action = "reject"
                log = true
                cgroup = "\(cgroups.top)"
                """, ["--netns", client.name])
            defer { enforcer.stop() }
            let udp = try cgroups.traffic(in: box, namespace: client, ["udp", "--to", Self.peerAddress, "--port", "53",
                                                                        "--count", "2", "--quiet"])
            #expect(udp["errors"] == "0", "\(udp)")
            let tcp = try cgroups.traffic(in: box, namespace: client, ["tcp", "--to", Self.peerAddress, "--port", "8080",
                                                                        "--timeout", "2", "--quiet"])
            #expect(tcp["sent"] == "0" && tcp["errors"] == "1", "\(tcp)")
            #expect(Self.seconds(tcp) < 1, "rejected after \(Self.seconds(tcp)) s")
            let outside = try connect(port: 8080)
            #expect(outside["sent"] == "1" && outside["errors"] == "0", "\(outside)")
            let received = String(decoding: dnsOutput.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            dns.waitUntilExit()
            let keys = Harness.keyValues(received.split(separator: "\n").last.map(String.init) ?? "")
            #expect(keys["received"] == "2", "the UDP sink got: \(received)")
            let summary = enforcer.stop()
            #expect(summary["reject"] == "1", "\(summary)")
            let event = enforcer.events.first { $0.string("rule") == "box-rest" }
            #expect(event?.string("cgroup") == box)
            #expect(event?.string("unit") == "box.service")
        }

        /// directions = ["in"]: a connection to a local listener is decided at the input hook by
        /// the listening socket's owner (the packet carries no uid); IPv6 is decided like IPv4.
        @Test func inboundFlowsByTheListenersOwnerAndIPv6() throws {
            try client.exec(["ip", "-6", "addr", "add", "fd15::1/64", "dev", "lo", "nodad"]).check("v6 address")
            let local = try BackgroundProcess(["nsenter", "--net=\(client.path)", Harness.traffic, "listen", "--tcp",
                                               "--port", "7070", "--address", Self.clientAddress, "--timeout", "30",
                                               "--accept", "5", "--uid", String(Self.other), "--gid", String(Self.other)],
                                              waitForOutput: true)
            defer { local.stop() }
            let local6 = try BackgroundProcess(["nsenter", "--net=\(client.path)", Harness.traffic, "listen", "--tcp",
                                                "--port", "9099", "--address", "fd15::1", "--timeout", "30", "--accept", "5"],
                                               waitForOutput: true)
            defer { local6.stop() }
            let enforcer = try RunningEnforcer(policy: """
                default = "allow"
                directions = ["out", "in"]
                [[rule]]
                name = "no-inbound-to-4242"
                action = "reject"
                log = true
                direction = "in"
                uid = \(Self.other)
                [[rule]]
                name = "no-v6-9099"
                action = "reject"
                direction = "out"
                dst = "fd15::/64"
                dst_port = 9099
                """, ["--netns", client.name])
            defer { enforcer.stop() }
            #expect(try filterRules().contains("-A INPUT -j NFOWNER-ENFORCE"))
            let inbound = try peer.traffic(["tcp", "--to", Self.clientAddress, "--port", "7070", "--timeout", "2", "--quiet"])
            #expect(inbound["sent"] == "0" && inbound["errors"] == "1", "\(inbound)")
            #expect(Self.seconds(inbound) < 1)
            let v6 = try client.traffic(["tcp", "--to", "fd15::1", "--port", "9099", "--timeout", "2", "--quiet"])
            #expect(v6["errors"] == "1" && Self.seconds(v6) < 1, "\(v6)")
            let summary = enforcer.stop()
            #expect(summary["reject"] == "2", "\(summary)")
            let event = enforcer.events.first
            #expect(event?.string("rule") == "no-inbound-to-4242")
            #expect(event?.string("dir") == "in")
            #expect(event?.int("owner_uid") == Int(Self.other))
            #expect(!(try filterRules()).contains("NFOWNER"))
        }

        /// An exe rule rejects one program (python3) while another of the same uid
        /// (nfowner-traffic) passes.
        /// `--queues 2`: new flows are spread over two queues by the CPU they are sent on, each
        /// decided by its own reader; every connection is decided once (an exe rule, so none is
        /// the kernel's alone), both queues take part (the connects are pinned to CPU 0 and 1 in
        /// turn), and the verdicts are right on both.
        @Test func twoQueuesShareTheFlows() throws {
            let web = try listener(port: 8080, accept: 20)
            defer { web.stop() }
            let enforcer = try RunningEnforcer(policy: """
                default = "deny"
                fail = "closed"
                [[rule]]
                name = "traffic-tool"
                action = "allow"
                exe = ["\(Harness.traffic)"]
                """, ["--netns", client.name, "--queues", "2", "--no-audit"])
            defer { enforcer.stop() }
            #expect(enforcer.stderr.contains("NFQUEUE queues 10-11 (spread by CPU, one reader each)"), "\(enforcer.stderr)")
            let rules = try filterRules()
            #expect(rules.contains("-j NFQUEUE --queue-balance 10:11 --queue-cpu-fanout"), "\(rules)")
            for index in 0..<16 {
                let output = try client.exec(["taskset", "-c", String(index % 2), Harness.traffic, "tcp", "--to", Self.peerAddress,
                                              "--port", "8080", "--timeout", "2", "--quiet",
                                              "--uid", String(Self.nobody), "--gid", String(Self.nobody)]).stdout
                let result = Harness.keyValues(output.split(separator: "\n").last.map(String.init) ?? "")
                #expect(result["sent"] == "1" && result["errors"] == "0", "\(output)")
            }
            let summary = enforcer.stop()
            #expect(summary["allow"] == "16" && summary["decided"] == "16", "\(summary)")
            let perQueue = (summary["held_per_queue"] ?? "").split(separator: ",").compactMap { Int($0) }
            #expect(perQueue.count == 2 && perQueue.allSatisfy { $0 > 0 } && perQueue.reduce(0, +) == 16, "\(summary)")
            #expect(!(try filterRules()).contains("NFOWNER"), "rules left after SIGINT")
        }

        @Test func anExeRuleRejectsOneProgramWhileAnotherOfTheSameUidPasses() throws {
            let web = try listener(port: 8080)
            defer { web.stop() }
            let enforcer = try RunningEnforcer(policy: """
                default = "allow"
                [[rule]]
                name = "no-python"
                action = "reject"
                log = true
                exe = ["*/python3*"]
                """, ["--netns", client.name])
            defer { enforcer.stop() }
            let python = """
                import socket, time, sys
                s = socket.socket(); s.settimeout(3); start = time.time()
                code = s.connect_ex(("\(Self.peerAddress)", 8080))
                print("code=%d seconds=%.3f" % (code, time.time() - start))
                """
            let result = try client.exec(["setpriv", "--reuid=\(Self.nobody)", "--regid=\(Self.nobody)", "--clear-groups",
                                          "/usr/bin/python3", "-c", python])
            let keys = Harness.keyValues(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
            #expect(keys["code"] == "111", "python3 connect: \(result.stdout) \(result.stderr)")
            #expect(Double(keys["seconds"] ?? "") ?? 9 < 1)
            let traffic = try connect(port: 8080)
            #expect(traffic["sent"] == "1" && traffic["errors"] == "0", "\(traffic)")
            enforcer.stop()
            let rejected = enforcer.events.filter { $0.string("rule") == "no-python" }
            #expect(rejected.count == 1, "\(enforcer.events)")
            #expect(rejected.first?.string("exe")?.contains("python3") == true)
            #expect(rejected.first?.int("uid") == Int(Self.nobody))
        }

        /// One-shot UDP senders whose socket is gone by the time their datagram is decided (each
        /// closes it right after the send): 5 rounds of a python3 and a perl datagram, one uid;
        /// each sender writes its source port after its send. The exe rules deny python3 and
        /// log perl: no datagram is decided by the other program's rule, and most are decided by
        /// their own although the socket lookup often finds nothing — the process table names
        /// the sender, since the program before it exited before the queue was last seen empty.
        @Test func exeRulesDecideOneShotUdpSendersWhoseSocketsAreGone() throws {
            let sink = try BackgroundProcess(["nsenter", "--net=\(peer.path)", Harness.traffic, "listen", "--udp", "--port", "5300",
                                              "--address", Self.peerAddress, "--timeout", "30", "--accept", "100"],
                                             waitForOutput: true)
            defer { sink.stop() }
            let portFile = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-oneshot-\(UUID().uuidString).ports")
            FileManager.default.createFile(atPath: portFile.path, contents: nil, attributes: [.posixPermissions: 0o666])
            defer { try? FileManager.default.removeItem(at: portFile) }
            let enforcer = try RunningEnforcer(policy: """
                default = "allow"
                [[rule]]
                name = "no-python"
                action = "deny"
                log = true
                exe = ["*/python3*"]
                [[rule]]
                name = "perl-ok"
                action = "allow"
                log = true
                exe = ["*/perl"]
                [[rule]]
                name = "neither"
                action = "allow"
                log = true
                proto = ["udp"]
                """, ["--netns", client.name])
            defer { enforcer.stop() }
            let loop = """
                for round in 1 2 3 4 5; do
                  /usr/bin/python3 -c 'import os, socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.sendto(b"python3", ("\(Self.peerAddress)", 5300)); port = s.getsockname()[1]; s.close(); open(os.environ["P"], "a").write("python3 %d\\n" % port)'
                  perl -MIO::Socket::INET -e '$s = IO::Socket::INET->new(PeerAddr => "\(Self.peerAddress):5300", Proto => "udp") or die; $s->send("perl"); $p = $s->sockport; close $s; open my $f, ">>", $ENV{P}; print $f "perl $p\\n"'
                done
                """
            let result = try client.exec(["env", "P=\(portFile.path)", "setpriv", "--reuid=\(Self.nobody)", "--regid=\(Self.nobody)",
                                          "--clear-groups", "/bin/sh", "-c", loop])
            #expect(result.status == 0, "the loop: \(result.stderr)")
            let summary = enforcer.stop()
            var programOf: [Int: String] = [:]
            for line in (try String(contentsOf: portFile, encoding: .utf8)).split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count == 2, let port = Int(words[1]) { programOf[port] = String(words[0]) }
            }
            #expect(programOf.count == 10, "ports written: \(programOf)")
            let datagrams = enforcer.events.filter { $0.int("dport") == 5300 }
            #expect(datagrams.count == 10 && summary["decided"] == "10", "\(datagrams.count) decisions; \(summary)")
            func decisions(of program: String) -> [String] {
                datagrams.filter { $0.int("sport").flatMap { programOf[$0] } == program }.map { $0.string("rule") ?? "-" }
            }
            let python = decisions(of: "python3"), perl = decisions(of: "perl")
            // Never the other program's rule …
            #expect(!python.contains("perl-ok") && !perl.contains("no-python"), "python3: \(python); perl: \(perl)")
            // … and, on most, their own: the rest are `neither` (sender among candidates).
            #expect(python.filter { $0 == "no-python" }.count >= 4, "python3: \(python)")
            #expect(perl.filter { $0 == "perl-ok" }.count >= 4, "perl: \(perl)")
            let confidences = datagrams.map { $0.string("confidence") ?? "-" }
            print("one-shot UDP under enforce: python3 \(python), perl \(perl); confidences \(confidences)")
        }

        /// ICMP echo allowed for one uid, denied for another: every echo request is decided (an
        /// echo flow's later requests too).
        @Test func pingAllowedForOneUidDeniedForAnother() throws {
            let enforcer = try RunningEnforcer(policy: """
                default = "deny"
                [[rule]]
                name = "nobody-may-ping"
                action = "allow"
                uid = \(Self.nobody)
                proto = "icmp"
                icmp_type = "echo-request"
                """, ["--netns", client.name])
            defer { enforcer.stop() }
            let allowed = try client.traffic(["ping", "--to", Self.peerAddress, "--count", "3", "--quiet",
                                              "--uid", String(Self.nobody), "--gid", String(Self.nobody)], asUnprivileged: false)
            #expect(allowed["replies"] == "3", "\(allowed)")
            let denied = try client.traffic(["ping", "--to", Self.peerAddress, "--count", "2", "--quiet",
                                             "--uid", String(Self.other), "--gid", String(Self.other)], asUnprivileged: false)
            #expect(denied["replies"] == "0", "\(denied)")
            let summary = enforcer.stop()
            // uid and ICMP type: the kernel decides alone (fast path); nothing reached nfowner.
            #expect(summary["held"] == "0", "\(summary)")
        }

        /// The kernel fast path: a policy of uid, protocol and port rules is compiled into the
        /// decision chain; the same flows are allowed, rejected and dropped as when nfowner decides
        /// them (`--no-fast-path`), but none reaches userspace.
        @Test func theKernelFastPathDecidesWithoutNfowner() throws {
            let web = try listener(port: 8080)
            defer { web.stop() }
            let other = try listener(port: 9090)
            defer { other.stop() }
            let policy = """
                default = "deny"
                [[rule]]
                action = "allow"
                uid = \(Self.nobody)
                proto = "tcp"
                dst = "\(Self.peerAddress)/32"
                dst_port = [8080, "8000-8001"]
                [[rule]]
                action = "reject"
                uid = \(Self.nobody)
                """
            for fastPath in [true, false] {
                let enforcer = try RunningEnforcer(policy: policy, ["--netns", client.name] + (fastPath ? [] : ["--no-fast-path"]))
                defer { enforcer.stop() }
                let decide = try client.exec(["iptables", "-S", "NFOWNER-ENFORCE-DECIDE"]).stdout
                #expect(decide.contains("--uid-owner \(Self.nobody)") == fastPath, "\(decide)")
                let allowed = try connect(port: 8080)
                #expect(allowed["sent"] == "1" && allowed["errors"] == "0", "fast path \(fastPath): \(allowed)")
                let rejected = try connect(port: 9090)
                #expect(rejected["errors"] == "1" && Self.seconds(rejected) < 1, "fast path \(fastPath): \(rejected)")
                let dropped = try connect(port: 8080, uid: Self.other, timeout: 1)
                #expect(dropped["errors"] == "1" && Self.seconds(dropped) >= 0.9, "fast path \(fastPath): \(dropped)")
                let summary = enforcer.stop()
                if fastPath {
                    #expect(summary["held"] == "0", "\(summary)")
                } else {
                    #expect(summary["allow"] == "1" && summary["reject"] == "1", "\(summary)")
                    #expect(Int(summary["deny"] ?? "") ?? 0 >= 1, "\(summary)")
                }
            }
        }

        /// Traffic conntrack does not track (a raw-table NOTRACK) is decided packet by packet.
        @Test func untrackedTrafficIsDecidedEveryPacket() throws {
            try client.exec(["iptables", "-t", "raw", "-A", "OUTPUT", "-p", "udp", "--dport", "5353", "-j", "NOTRACK"])
                .check("NOTRACK")
            let enforcer = try RunningEnforcer(policy: """
                default = "allow"
                [[rule]]
                action = "deny"
                proto = "udp"
                dst_port = 5353
                """, ["--netns", client.name, "--no-fast-path"])
            defer { enforcer.stop() }
            try client.traffic(["udp", "--to", Self.peerAddress, "--port", "5353", "--count", "3", "--quiet"])
            let summary = enforcer.stop()
            #expect(summary["held"] == "3" && summary["deny"] == "3", "\(summary)")
        }

        /// Audit mode blocks nothing and writes what it would have denied.
        @Test func auditModeBlocksNothingAndWritesWouldDenyEvents() throws {
            let other = try listener(port: 9090)
            defer { other.stop() }
            let enforcer = try RunningEnforcer(policy: """
                default = "deny"
                mode = "audit"
                fail = "closed"
                [[rule]]
                name = "web-only"
                action = "allow"
                dst_port = 8080
                """, ["--netns", client.name])
            defer { enforcer.stop() }
            #expect(enforcer.stderr.contains("audit mode never blocks"))
            // Audit mode fails open whatever the file says: it must never block.
            #expect(try filterRules().contains("--queue-bypass"))
            let passed = try connect(port: 9090)
            #expect(passed["sent"] == "1" && passed["errors"] == "0", "\(passed)")
            let summary = enforcer.stop()
            let events = enforcer.events
            #expect(events.count == 1, "\(events)")
            #expect(events.first?.string("rule") == "default")
            #expect(events.first?.string("action") == "deny")
            #expect(events.first?.string("verdict") == "accept")
            #expect(events.first?.string("mode") == "audit")
            #expect(summary["deny"] == "1" && summary["audit_events"] == "1", "\(summary)")
        }

        /// kill -9 under fail = "open": the rules stay and let traffic through (queue bypass); the
        /// next run takes over; `nfowner rules remove` deletes what a killed run left.
        @Test func killedUnderFailOpenTrafficPasses() throws {
            let web = try listener(port: 9090)
            defer { web.stop() }
            let policy = "default = \"deny\"\nfail = \"open\"\n"
            let enforcer = try RunningEnforcer(policy: policy, ["--netns", client.name])
            let blocked = try connect(port: 9090, timeout: 1)
            #expect(blocked["errors"] == "1", "denied while running: \(blocked)")
            enforcer.stop(with: SIGKILL)
            #expect(try filterRules().contains("NFOWNER-ENFORCE-QUEUE"), "the rules stay after kill -9")
            let passed = try connect(port: 9090)
            #expect(passed["sent"] == "1" && passed["errors"] == "0", "fail-open with nfowner dead: \(passed)")
            #expect(Self.seconds(passed) < 1)
            let next = try RunningEnforcer(policy: policy, ["--netns", client.name])
            let again = try connect(port: 9090, timeout: 1)
            #expect(again["errors"] == "1", "the restarted enforcer decides again: \(again)")
            // Killed again: `nfowner rules remove` deletes what it left.
            next.stop(with: SIGKILL)
            #expect(try filterRules().contains("NFOWNER-ENFORCE"))
            let removed = try Harness.run(Harness.nfowner, ["rules", "remove", "--netns", client.name])
            #expect(removed.stderr.contains("removed enforce mode's chains"), "\(removed.stderr)")
            #expect(!(try filterRules()).contains("NFOWNER"))
        }

        /// kill -9 under fail = "closed": the rules stay and nothing they queue passes until the
        /// next run, which enforces again (allowed traffic flows) and removes them at exit.
        @Test func killedUnderFailClosedTrafficIsBlockedUntilTheNextRun() throws {
            let web = try listener(port: 8080)
            defer { web.stop() }
            let policy = "default = \"deny\"\nfail = \"closed\"\n[[rule]]\naction = \"allow\"\ndst_port = 8080\n"
            let enforcer = try RunningEnforcer(policy: policy, ["--netns", client.name])
            let allowed = try connect(port: 8080)
            #expect(allowed["sent"] == "1", "\(allowed)")
            enforcer.stop(with: SIGKILL)
            let blocked = try connect(port: 8080, timeout: 1)
            #expect(blocked["sent"] == "0" && blocked["errors"] == "1", "fail-closed with nfowner dead: \(blocked)")
            let ping = try client.exec(["ping", "-c1", "-W1", Self.peerAddress])
            #expect(ping.status != 0, "a ping passed the fail-closed rules")
            let next = try RunningEnforcer(policy: policy, ["--netns", client.name])
            let resumed = try connect(port: 8080)
            #expect(resumed["sent"] == "1" && resumed["errors"] == "0", "after the restart: \(resumed)")
            next.stop()
            #expect(!(try filterRules()).contains("NFOWNER"))
        }

        /// SIGHUP with `--reset-flows` cuts an established connection the new policy rejects (its
        /// conntrack entry goes, its next packet is a new flow and meets the REJECT); without it
        /// the connection outlives the reload.
        @Test func resetFlowsCutsEstablishedFlowsTheNewPolicyDenies() throws {
            let web = try listener(port: 8080, accept: 4)
            defer { web.stop() }
            let sender = """
                import socket, time
                s = socket.create_connection(("\(Self.peerAddress)", 8080), timeout=2)
                print("connected", flush=True)
                ok, err, start = 0, None, time.time()
                while time.time() - start < 3:
                    try:
                        s.send(b"x"); ok += 1
                    except OSError as e:
                        err = e.errno; break
                    time.sleep(0.05)
                print("ok=%d errno=%s seconds=%.2f" % (ok, err, time.time() - start), flush=True)
                """
            for reset in [true, false] {
                let enforcer = try RunningEnforcer(policy: "default = \"allow\"\n",
                                                   ["--netns", client.name] + (reset ? ["--reset-flows"] : []))
                defer { enforcer.stop() }
                let (process, output) = try Self.start(in: client, ["/usr/bin/python3", "-c", sender])
                defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
                try "default = \"allow\"\n[[rule]]\naction = \"reject\"\nproto = \"tcp\"\ndst_port = 8080\n"
                    .write(to: enforcer.policyURL, atomically: true, encoding: .utf8)
                usleep(300_000)
                kill(enforcer.process.processIdentifier, SIGHUP)
                let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
                process.waitUntilExit()
                let keys = Harness.keyValues(text.split(separator: "\n").last.map(String.init) ?? "")
                if reset {
                    // ECONNABORTED: its socket was closed; ECONNRESET/EPIPE: the REJECT's reset came first.
                    #expect(["103", "104", "32"].contains(keys["errno"] ?? ""), "the connection survived --reset-flows: \(text)")
                    #expect(enforcer.stderr.contains("--reset-flows: 1 of"), "\(enforcer.stderr)")
                    #expect(enforcer.stderr.contains("; 1 local TCP sockets of them closed"), "\(enforcer.stderr)")
                    #expect(enforcer.stop()["flows_reset"] == "1")
                } else {
                    #expect(keys["errno"] == "None", "without --reset-flows the flow goes on: \(text)")
                }
            }
        }

        /// A second enforcer on the same queue is refused with the way out, and changes nothing.
        @Test func aTakenQueueIsNamedWithTheWayOut() throws {
            let first = try RunningEnforcer(policy: "default = \"allow\"\n", ["--netns", client.name])
            defer { first.stop() }
            let policy = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-second-\(UUID().uuidString).toml")
            try "default = \"deny\"\n".write(to: policy, atomically: true, encoding: .utf8)
            defer { try? FileManager.default.removeItem(at: policy) }
            let second = try Harness.run(Harness.nfowner, ["enforce", "--policy", policy.path, "--netns", client.name])
            #expect(second.status != 0)
            #expect(second.stderr.contains("cannot bind NFQUEUE queue 10: another process already holds it"), "\(second.stderr)")
            #expect(second.stderr.contains("choose another with --queue"))
            #expect(first.process.isRunning)
            #expect(try filterRules().contains("NFOWNER-ENFORCE-DECIDE -j RETURN"), "the first run's rules are untouched")
        }

        /// SIGHUP re-reads the policy: a bad file is refused (the old policy kept), a good one
        /// decides the next new flow.
        @Test func sighupReloadsThePolicyAndRefusesABadOne() throws {
            let web = try listener(port: 9090)
            defer { web.stop() }
            let enforcer = try RunningEnforcer(policy: "default = \"allow\"\n", ["--netns", client.name])
            defer { enforcer.stop() }
            #expect(try connect(port: 9090)["sent"] == "1")
            try "default = \"allow\"\n[[rule]]\naction = \"reject\"\ndst = \"10.0.0.1/8\"\n"
                .write(to: enforcer.policyURL, atomically: true, encoding: .utf8)
            kill(enforcer.process.processIdentifier, SIGHUP)
            usleep(500_000)
            #expect(enforcer.stderr.contains("has host bits set"), "\(enforcer.stderr)")
            #expect(try connect(port: 9090)["sent"] == "1", "the old policy stays after a bad reload")
            try "default = \"allow\"\n[[rule]]\naction = \"reject\"\ndst_port = 9090\n"
                .write(to: enforcer.policyURL, atomically: true, encoding: .utf8)
            kill(enforcer.process.processIdentifier, SIGHUP)
            usleep(500_000)
            #expect(enforcer.stderr.contains("policy reloaded"))
            let rejected = try connect(port: 9090)
            #expect(rejected["errors"] == "1" && Self.seconds(rejected) < 1, "\(rejected)")
        }
    }
}

/// `nfowner policy check` and `nfowner enforce` on policy files with errors: every message
/// carries its line; nothing is installed. No root needed.
@Suite struct PolicyFileErrorTests {
    private func write(_ text: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-policy-\(UUID().uuidString).toml")
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url
    }

    @Test func eachErrorAndTheShadowedRuleCarryTheirLine() throws {
        let file = try write("""
            default = "deny"
            [[rule]]
            name = "all-tcp"
            action = "allow"
            proto = "tcp"
            [[rule]]
            name = "ssh"
            action = "deny"
            proto = "tcp"
            dst_port = 22
            """)
        defer { try? FileManager.default.removeItem(at: file) }
        let ok = try Harness.run(Harness.nfowner, ["policy", "check", file.path])
        #expect(ok.status == 0)
        #expect(ok.stdout.contains("\(file.path):6: warning: rule \"ssh\" can never match: rule \"all-tcp\" (line 2)"), "\(ok.stdout)")

        let bad = try write("""
            default = "deny"
            [[rule]]
            action = "allow"
            dst = "10.0.0.300/8"
            dst_prot = 22
            [[rule]]
            action = "reject"
            src_port = "2000-1000"
            """)
        defer { try? FileManager.default.removeItem(at: bad) }
        let errors = try Harness.run(Harness.nfowner, ["policy", "check", bad.path])
        #expect(errors.status == 1)
        #expect(errors.stdout.contains("\(bad.path):4: rule 1 dst: \"10.0.0.300/8\" is not a valid CIDR block"), "\(errors.stdout)")
        #expect(errors.stdout.contains("\(bad.path):5: unknown key dst_prot in rule 1 (did you mean dst_port?)"))
        #expect(errors.stdout.contains("\(bad.path):8: rule 2 src_port: \"2000-1000\" is not a port range"))

        let syntax = try write("default = \"deny\"\n[[rule]\naction = \"allow\"\n")
        defer { try? FileManager.default.removeItem(at: syntax) }
        let broken = try Harness.run(Harness.nfowner, ["policy", "check", syntax.path])
        #expect(broken.status == 1)
        #expect(broken.stdout.hasPrefix("\(syntax.path):2: invalid TOML"), "\(broken.stdout)")
    }

    @Test func enforceRefusesABadFileBeforeTouchingAnything() throws {
        let bad = try write("[[rule]]\naction = \"deny\"\nuid = \"alice\"\n")
        defer { try? FileManager.default.removeItem(at: bad) }
        let result = try Harness.run(Harness.nfowner, ["enforce", "--policy", bad.path, "--netns", "nfowner-no-such-namespace"])
        #expect(result.status != 0)
        #expect(result.stderr.contains("\(bad.path):3: rule 1 uid: must be an integer, got \"alice\""), "\(result.stderr)")
    }
}
