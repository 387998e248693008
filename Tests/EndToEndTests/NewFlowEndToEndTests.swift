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
            #expect(monitor.stderr.contains("reading NFLOG group 5"))
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
    }
}
