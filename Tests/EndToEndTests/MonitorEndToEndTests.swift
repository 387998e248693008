import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// The real pipeline against the real kernel: `nfowner rules install --netns`, `nfowner monitor
    /// --format json --netns`, and traffic sent inside the namespace as an unprivileged user.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    final class MonitorEndToEndTests {
        let namespace: TestNamespace
        let monitor: RunningMonitor
        let nobody = Int(Harness.unprivilegedUID)
        let nogroup = Int(Harness.unprivilegedGID)

        init() throws {
            namespace = try TestNamespace("mon")
            do {
                try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("rules install")
                monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--no-rules"])
            } catch {
                namespace.close()
                throw error
            }
        }

        deinit {
            monitor.stop()
            namespace.close()
        }

        private func events(where predicate: @escaping ([String: Any]) -> Bool, atLeast count: Int = 1,
                            timeout: TimeInterval = 5) -> [[String: Any]] {
            monitor.waitForEvents(timeout: timeout) { $0.filter(predicate).count >= count }.filter(predicate)
        }

        @Test func udpOverIPv4IsAttributedToItsSender() throws {
            let sent = try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9101", "--count", "3", "--size", "64"])
            #expect(sent["sent"] == "3")
            let found = events(where: { $0.int("dport") == 9101 && $0.string("proto") == "udp" }, atLeast: 3)
            #expect(found.count == 3)
            for event in found {
                #expect(event.int("uid") == nobody)
                #expect(event.int("gid") == nogroup)
                #expect(event.string("user") == "nobody")
                #expect(event.string("family") == "ipv4")
                #expect(event.string("dir") == "out")
                #expect(event.string("hook") == "output")
                #expect(event.int("len") == 20 + 8 + 64)
                #expect(event.string("src") == "127.0.0.1")
                #expect(event.string("dst") == "127.0.0.1")
                #expect(event.string("iface_out") == "lo")
                #expect(event.int("proto_num") == 17)
                if let local = sent["local"], let port = local.split(separator: ":").last.flatMap({ Int($0) }) {
                    #expect(event.int("sport") == port)
                }
            }
            let sequences = found.compactMap { $0.int("seq") }
            #expect(sequences.count == 3)
        }

        @Test func udpOverIPv6IsAttributedToItsSender() throws {
            try namespace.traffic(["udp", "--to", "::1", "--port", "9102", "--count", "2", "--size", "100"])
            let found = events(where: { $0.int("dport") == 9102 }, atLeast: 2)
            #expect(found.count == 2)
            for event in found {
                #expect(event.string("family") == "ipv6")
                #expect(event.string("proto") == "udp")
                #expect(event.string("src") == "::1")
                #expect(event.int("uid") == nobody)
                #expect(event.int("gid") == nogroup)
                #expect(event.int("len") == 40 + 8 + 100)
            }
        }

        @Test func tcpConnectionPacketsCarryTheClientOwner() throws {
            let listener = try namespace.tcpListener(port: 9103)
            defer { listener.stop() }
            let sent = try namespace.traffic(["tcp", "--to", "127.0.0.1", "--port", "9103", "--bytes", "300"])
            #expect(sent["sent"] == "1")
            let client = events(where: { $0.int("dport") == 9103 && $0.string("proto") == "tcp" }, atLeast: 3)
            let syn = client.first { $0.string("tcp_flags") == "S" }
            #expect(syn?.int("uid") == nobody)
            #expect(syn?.int("gid") == nogroup)
            let data = client.first { ($0.int("len") ?? 0) > 300 }
            #expect(data?.int("uid") == nobody)
            #expect(client.contains { ($0.string("tcp_flags") ?? "").contains("F") })
        }

        @Test func icmpEchoFromAPingSocketIsAttributed() throws {
            let sent = try namespace.traffic(["ping", "--to", "127.0.0.1", "--count", "1"])
            #expect(sent["sent"] == "1")
            let requests = events { $0.string("proto") == "icmp" && $0.int("icmp_type") == 8 }
            let request = try #require(requests.first)
            #expect(request.int("uid") == nobody)
            #expect(request.int("gid") == nogroup)
            #expect(request.int("icmp_code") == 0)
            #expect(request.int("icmp_id") != nil)
            #expect(request.isNull("sport"))
            // The kernel answers the echo itself: no socket, so no owner.
            let reply = events { $0.string("proto") == "icmp" && $0.int("icmp_type") == 0 }.first
            #expect(reply?.isNull("uid") == true)
        }

        @Test func icmpv6EchoIsAttributed() throws {
            try namespace.traffic(["ping", "--to", "::1", "--count", "1"])
            let request = try #require(events { $0.string("proto") == "icmpv6" && $0.int("icmp_type") == 128 }.first)
            #expect(request.int("uid") == nobody)
            #expect(request.string("family") == "ipv6")
            #expect(request.int("proto_num") == 58)
        }

        @Test func rawSocketWithProtocol253IsAttributedToRoot() throws {
            try namespace.traffic(["raw", "--to", "127.0.0.1", "--protocol", "253", "--count", "1", "--size", "32"],
                                  asUnprivileged: false)
            let raw = try #require(events { $0.int("proto_num") == 253 }.first)
            #expect(raw.string("proto") == "253")
            #expect(raw.int("uid") == 0)
            #expect(raw.int("gid") == 0)
            #expect(raw.string("user") == "root")
            #expect(raw.int("len") == 20 + 32)
            #expect(raw.isNull("sport"))
        }

        @Test func fiftyShortLivedProcessesAreAllAttributed() throws {
            var ports: [Int] = []
            for _ in 0..<50 {
                let sent = try namespace.traffic(["burst-exit", "--to", "127.0.0.1", "--port", "9104"])
                if let port = sent["local"]?.split(separator: ":").last.flatMap({ Int($0) }) { ports.append(port) }
            }
            let found = events(where: { $0.int("dport") == 9104 && $0.string("proto") == "udp" }, atLeast: 50, timeout: 10)
            #expect(found.count == 50)
            #expect(found.filter { $0.int("uid") == nobody && $0.int("gid") == nogroup }.count == 50)
            // One event per sender, from its own port (the kernel may give two senders the same one).
            #expect(ports.count == 50)
            #expect(found.compactMap { $0.int("sport") }.sorted() == ports.sorted())
        }

        @Test func kernelGeneratedPacketsHaveNoOwner() throws {
            // UDP to a closed port: the kernel answers with ICMP port unreachable.
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9105", "--count", "1"])
            let unreachable = try #require(events {
                $0.string("proto") == "icmp" && $0.int("icmp_type") == 3 && $0.int("icmp_code") == 3
            }.first)
            #expect(unreachable.isNull("uid"))
            #expect(unreachable.isNull("gid"))
            #expect(unreachable.isNull("user"))
            // TCP to a closed port: the kernel answers the SYN with a RST.
            try namespace.traffic(["tcp", "--to", "127.0.0.1", "--port", "9106", "--bytes", "1"])
            let reset = try #require(events {
                $0.int("sport") == 9106 && ($0.string("tcp_flags") ?? "").contains("R")
            }.first)
            #expect(reset.isNull("uid"))
            let syn = events { $0.int("dport") == 9106 && $0.string("tcp_flags") == "S" }.first
            #expect(syn?.int("uid") == nobody)
        }

        @Test func summaryLineCountsEverythingAndNothingIsLost() throws {
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9107", "--count", "20"])
            _ = events(where: { $0.int("dport") == 9107 }, atLeast: 20)
            let summary = monitor.stop()
            #expect(Int(summary["received"] ?? "") ?? 0 >= 20)
            #expect(summary["lost"] == "0")
            #expect(summary["enobufs"] == "0")
            #expect(summary["parse_errors"] == "0")
            #expect(summary["emitted"] == summary["received"])
            #expect(monitor.process.terminationStatus == 0)
        }
    }
}
