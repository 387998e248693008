import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct TraceEndToEndTests {
        @Test func traceShowsEveryChildOfAShellScriptAndCleansUp() throws {
            let namespace = try TestNamespace("trace")
            defer { namespace.close() }
            let listener = try namespace.tcpListener(port: 9401)
            defer { listener.stop() }

            // Unrelated traffic at the same time must not show up in the trace.
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9402"])
            let script = "ping -c1 -W1 127.0.0.1 >/dev/null; curl -s -m 2 -o /dev/null http://127.0.0.1:9401/; exit 3"
            let result = try Harness.run(Harness.nfowner, ["trace", "--format", "json", "--netns", namespace.name,
                                                           "--user", "nobody", "--", "/bin/sh", "-c", script])
            #expect(result.status == 3, "trace exits with the command's status")
            let events = result.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let ping = events.first { $0.string("proto") == "icmp" && $0.int("icmp_type") == 8 }
            #expect(ping?.int("uid") == Int(Harness.unprivilegedUID))
            let syn = events.first { $0.int("dport") == 9401 && $0.string("tcp_flags") == "S" }
            #expect(syn?.int("uid") == Int(Harness.unprivilegedUID))
            #expect(events.allSatisfy { ($0.string("cgroup") ?? "").hasPrefix("/nfowner-trace-") })
            #expect(!events.contains { $0.int("dport") == 9402 })
            #expect(result.stderr.contains("nfowner trace summary"))
            #expect(result.stderr.contains("tcp 127.0.0.1 9401"))
            #expect(result.stderr.contains("icmp 127.0.0.1 type 8"))
            #expect(result.stderr.contains("exit_status=3"))
            // Both children are named: curl exactly (its socket is alive), ping among the candidates.
            #expect(events.contains { $0.string("comm") == "curl" && $0.string("confidence") == "exact" })
            let pingProcesses = (ping?["processes"] as? [[String: Any]] ?? []).compactMap { $0.string("comm") }
            #expect(pingProcesses.contains("ping"))
            #expect(result.stderr.contains("curl["))
            // Issue 13: the share of bytes per confidence, and the packets per confidence on the
            // summary line, which add up to what was emitted.
            let confidenceTable = result.stderr.split(separator: "\n").drop { !$0.hasPrefix("CONFIDENCE") }.dropFirst()
                .prefix { !$0.isEmpty && !$0.hasPrefix("received=") }
            #expect(confidenceTable.contains { $0.hasPrefix("exact ") }, "\(result.stderr)")
            let summary = Harness.keyValues(result.stderr.split(separator: "\n").last { $0.hasPrefix("received=") }.map(String.init) ?? "")
            let perConfidence = ["exact", "flow", "single", "program", "candidates", "uid", "none"]
                .compactMap { summary["confidence_\($0)"].flatMap(Int.init) }
            #expect(perConfidence.count == 7 && perConfidence.reduce(0, +) == Int(summary["emitted"] ?? ""), "\(summary)")
            // Its table and its cgroup are gone.
            #expect(!(try namespace.nft(["list", "tables"]).stdout.contains("nfowner_trace")))
            let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
            let root = mountinfo.split(separator: "\n").first { $0.contains(" - cgroup2 ") }.map { String($0.split(separator: " ")[4]) } ?? ""
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            #expect(!leftovers.contains { $0.hasPrefix("nfowner-trace-") })
        }

        /// Issue 12: three one-shot programs in a row, each gone a moment after its packet —
        /// ping (echo), curl (SYN to a closed port, refused at once), python3 (one datagram from a
        /// socket it drops right away): each packet lists its program among its processes, never
        /// names another one, and the SENDER table shows all three.
        @Test func traceListsEachOneShotProgramOnItsPacket() throws {
            let namespace = try TestNamespace("trnames")
            defer { namespace.close() }
            let script = """
                ping -c1 -W1 127.0.0.1 >/dev/null; curl -s -m 1 http://127.0.0.1:1/
                /usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", 9404))'
                """
            let result = try Harness.run(Harness.nfowner, ["trace", "--format", "json", "--netns", namespace.name,
                                                           "--user", "nobody", "--", "/bin/sh", "-c", script])
            let events = result.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            let echo = try #require(events.first { $0.string("proto") == "icmp" && $0.int("icmp_type") == 8 })
            let syn = try #require(events.first { $0.int("dport") == 1 && $0.string("tcp_flags") == "S" })
            let datagram = try #require(events.first { $0.int("dport") == 9404 })
            for (event, comm) in [(echo, "ping"), (syn, "curl"), (datagram, "python3")] {
                let listed = (event["processes"] as? [[String: Any]] ?? []).compactMap { $0.string("comm") }
                #expect(listed.contains(comm), "\(comm): processes \(listed)")
                if ["exact", "single", "program"].contains(event.string("confidence") ?? "") {
                    #expect(event.string("comm") == comm)
                }
            }
            let senderTable = result.stderr.split(separator: "\n").drop { !$0.hasPrefix("SENDER") }.dropFirst()
                .prefix { !$0.isEmpty && !$0.hasPrefix("received=") }.joined(separator: "\n")
            for comm in ["ping", "curl", "python3"] {
                #expect(senderTable.contains(comm), "SENDER table: \(senderTable)")
            }
        }

        @Test func aCommandThatExitsRightAfterSendingIsStillTraced() throws {
            let namespace = try TestNamespace("trfast")
            defer { namespace.close() }
            let result = try Harness.run(Harness.nfowner, ["trace", "--format", "json", "--netns", namespace.name, "--",
                                                           Harness.traffic, "burst-exit", "--to", "127.0.0.1", "--port", "9403",
                                                           "--uid", "65534", "--gid", "65534"])
            #expect(result.status == 0)
            let events = result.stdout.split(separator: "\n").compactMap {
                try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
            }
            #expect(events.contains { $0.int("dport") == 9403 && $0.int("uid") == Int(Harness.unprivilegedUID) })
        }

        @Test func traceWithoutACommandExplainsUsage() throws {
            let result = try Harness.run(Harness.nfowner, ["trace"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("give the command to trace after --"))
        }
    }
}
