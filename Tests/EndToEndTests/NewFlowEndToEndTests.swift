import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// Each flow's first packet is delivered at once on the new-flow group while the rest is
    /// batched: `nfowner monitor` installing its own ruleset in a namespace of the test's, with a
    /// flush timeout long enough (5 s) that a batched packet cannot arrive within the waits below.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    final class NewFlowEndToEndTests {
        let namespace: TestNamespace

        init() throws {
            namespace = try TestNamespace("newflow")
        }

        deinit {
            namespace.close()
        }

        private func udpEvents(_ monitor: RunningMonitor, port: Int) -> [[String: Any]] {
            monitor.events.filter { $0.int("dport") == port && $0.string("proto") == "udp" }
        }

        @Test func aFlowsFirstPacketComesAtOnceOnItsOwnGroupAndTheRestIsBatched() throws {
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--no-cgroups",
                                              "--flush-timeout", "500"])
            defer { monitor.stop() }
            #expect(monitor.stderr.contains("reading NFLOG group 5 (each flow's first packet at once on 6)"))
            let status = try Harness.run(Harness.nfowner, ["rules", "status", "--netns", namespace.name, "--no-cgroups"])
            #expect(status.stdout.contains("NFLOG group 6 (each flow's first packet): bound by pid \(monitor.process.processIdentifier)"),
                    "rules status: \(status.stdout)")
            // One socket, three datagrams half a second apart: the sender is alive to be looked up.
            let sender = try BackgroundProcess([
                "nsenter", "--net=\(namespace.path)", Harness.traffic, "udp", "--to", "127.0.0.1", "--port", "9301",
                "--count", "3", "--rate", "2", "--quiet",
            ])
            defer { sender.stop() }
            let first = monitor.waitForEvents(timeout: 2) { _ in !self.udpEvents(monitor, port: 9301).isEmpty }
            let early = first.filter { $0.int("dport") == 9301 && $0.string("proto") == "udp" }
            // Within 2 s of a 5 s flush timeout: only the packet sent at once.
            #expect(early.count == 1)
            let event = try #require(early.first)
            #expect(event.int("group") == 6)
            #expect(event.string("confidence") == "exact")
            #expect(event.int("pid") == Int(sender.process.processIdentifier))
            #expect(event.string("exe")?.hasSuffix("nfowner-traffic") == true)
            // The other two come with the batch: at the flush timeout, or when the monitor stops.
            sender.waitUntilExit()
            let summary = monitor.stop()
            let all = udpEvents(monitor, port: 9301)
            #expect(all.count == 3)
            #expect(all.filter { $0.int("group") == 5 }.count == 2)
            #expect(summary["lost"] == "0")
        }

        @Test func withNewFlowSecondsZeroEveryPacketIsBatched() throws {
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--no-cgroups",
                                              "--flush-timeout", "500", "--new-flow-seconds", "0"])
            defer { monitor.stop() }
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9302", "--count", "1"])
            let seen = monitor.waitForEvents(timeout: 1.5) { events in
                events.contains { $0.int("dport") == 9302 }
            }
            #expect(!seen.contains { $0.int("dport") == 9302 })
            monitor.stop()
            let all = udpEvents(monitor, port: 9302)
            #expect(all.count == 1)
            #expect(all.first?.int("group") == 5)
            // No new-flow sets were installed.
            #expect(!(try namespace.nft(["list", "ruleset"]).stdout.contains("new_flows")))
        }

        @Test func aTakenNewFlowGroupIsNamedWithTheWayOut() throws {
            let holder = try RunningMonitor(["--format", "none", "--netns", namespace.name, "--no-rules",
                                             "--group", "6", "--new-flow-seconds", "0"])
            defer { holder.stop() }
            let result = try Harness.run(Harness.nfowner, ["monitor", "--format", "none", "--netns", namespace.name,
                                                           "--count", "1"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("cannot bind NFLOG group 6 for new flows: another process already holds it"))
            #expect(result.stderr.contains("--new-flow-seconds 0"))
        }

        /// Issue 12's shell loop: 5 rounds of a ping, a TCP connection that sends 512 bytes and
        /// closes (perl), and one UDP datagram (python3) — each step another executable, one uid,
        /// one cgroup, each sender gone a moment after it sent; each step writes its pid before it
        /// sends. Every packet that carries the sender's uid lists its sender (by pid, or by
        /// program for a `program`), and none names a wrong process or program: what cannot be
        /// told apart stays `candidates`. The datagrams, whose sockets are gone at lookup, are
        /// named `single` with the pid: the programs before python3 exited before a moment the
        /// new-flow queue was seen empty, and the datagram came after it.
        @Test func aShellLoopOfOneShotSendersNamesEachProgram() throws {
            let cgroups = try TestCgroups("loop")
            defer { cgroups.close() }
            let cgroup = try cgroups.make(cgroups.top + "/loop")
            let listener = try namespace.tcpListener(port: 9310, accept: 5)
            defer { listener.stop() }
            let pidFile = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-loop-\(UUID().uuidString).pids")
            FileManager.default.createFile(atPath: pidFile.path, contents: nil, attributes: [.posixPermissions: 0o666])
            defer { try? FileManager.default.removeItem(at: pidFile) }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            defer { monitor.stop() }
            let loop = """
                for round in 1 2 3 4 5; do
                  sh -c 'echo "ping $$" >> "$P"; exec ping -c1 -W1 127.0.0.1 >/dev/null'
                  perl -MIO::Socket::INET -e 'open my $f, ">>", $ENV{P}; print $f "perl $$\\n"; close $f; $s = IO::Socket::INET->new("127.0.0.1:9310") or die; print $s "x" x 512; close $s'
                  /usr/bin/python3 -c 'import os, socket; open(os.environ["P"], "a").write("python3 %d\\n" % os.getpid()); socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9311))'
                done
                """
            let script = """
                echo $$ > "$1/cgroup.procs" || exit 1
                export P="$4"
                exec nsenter --net="$2" setpriv --reuid=\(Harness.unprivilegedUID) --regid=\(Harness.unprivilegedGID) --clear-groups /bin/sh -c "$3"
                """
            let result = try Harness.run("/bin/sh", ["-c", script, "nfowner-test", cgroups.directory(cgroup), namespace.path,
                                                     loop, pidFile.path])
            try result.check("the shell loop")
            var programOf: [Int: String] = [:]
            for line in (try String(contentsOf: pidFile, encoding: .utf8)).split(separator: "\n") {
                let words = line.split(separator: " ")
                if words.count == 2, let pid = Int(words[1]) { programOf[pid] = String(words[0]) }
            }
            #expect(programOf.count == 15, "pids written: \(programOf)")
            let nobody = Int(Harness.unprivilegedUID)
            func isEcho(_ event: [String: Any]) -> Bool { event.string("proto") == "icmp" && event.int("icmp_type") == 8 }
            func isTCP(_ event: [String: Any]) -> Bool { event.string("proto") == "tcp" && event.int("dport") == 9310 }
            func isUDP(_ event: [String: Any]) -> Bool { event.string("proto") == "udp" && event.int("dport") == 9311 }
            let events = monitor.waitForEvents(timeout: 5) { events in
                events.filter { isEcho($0) }.count >= 5 && events.filter { isUDP($0) }.count >= 5
                    && events.filter { isTCP($0) && $0.string("tcp_flags") == "S" }.count >= 5
            }.filter { $0.int("uid") == nobody && (isEcho($0) || isTCP($0) || isUDP($0)) }
            let expected: [(String, ([String: Any]) -> Bool, String)] = [
                ("ping", isEcho, "/ping"), ("perl", isTCP, "/perl"), ("python3", isUDP, "/python3"),
            ]
            var figures: [String] = []
            for (name, matches, exeSuffix) in expected {
                let sent = events.filter(matches)
                func isRight(_ exe: String?) -> Bool {
                    guard let exe else { return false }
                    return exe.hasSuffix(exeSuffix) || exe.contains(exeSuffix + ".")
                }
                func describe(_ event: [String: Any]) -> String {
                    let listed = (event["processes"] as? [[String: Any]] ?? []).map { process in
                        "\(process.int("pid") ?? -1):\(process.string("comm") ?? "-")"
                    }
                    return "\(event.string("confidence") ?? "-") [\(listed.joined(separator: " "))]"
                }
                #expect(sent.count >= 5, "\(name): \(sent.count) packets")
                #expect(sent.allSatisfy { $0.string("cgroup") == cgroup })
                // A name is never a wrong one: a pid named outright is the sender's, a program
                // named is the sender's program, and every process listed with a name is a
                // program of the loop …
                let naming = sent.filter { ["exact", "single", "program"].contains($0.string("confidence") ?? "") }
                let wrong = naming.filter { event in
                    let wrongPID = event.int("pid").map { programOf[$0] != name } ?? false
                    let wrongExe = event.string("exe").map { !isRight($0) } ?? false
                    let wrongComm = event.string("exe") == nil && event.string("comm").map { $0 != name } ?? false
                    return wrongPID || wrongExe || wrongComm
                }
                #expect(wrong.isEmpty, "\(name): named wrongly: \(wrong.map(describe))")
                // … and the sender is always among the processes listed: by its pid, or for a
                // program of several processes by its executable.
                let missing = sent.filter { event in
                    let listed = event["processes"] as? [[String: Any]] ?? []
                    let byPID = listed.contains { $0.int("pid").flatMap { programOf[$0] } == name }
                    let byProgram = event.string("confidence") == "program" && isRight(event.string("exe"))
                    return !byPID && !byProgram
                }
                #expect(missing.isEmpty, "\(name): sender not listed on \(missing.count) of \(sent.count) packets: \(missing.map(describe))")
                let right = naming.filter { isRight($0.string("exe")) }.count
                let withPID = sent.filter { $0.int("pid").flatMap { programOf[$0] } == name }.count
                figures.append("\(name) \(right)/\(sent.count) named (\(withPID) with its pid)")
                if name == "python3" {
                    // Named on most: what is left unnamed is a python3 the event thread saw exec
                    // too late to read its executable (reaped first), or a look at the queue that
                    // came too late.
                    #expect(right >= 4, "python3 named on \(right) of \(sent.count): \(sent.map(describe))")
                }
            }
            print("shell loop: \(figures.joined(separator: ", "))")
        }
    }
}
