import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// A monitor started on a table it did not install (issue 12 item 5): it adopts nfowner's
    /// own table, follows cgroups in it, and removes it at exit only when a monitor installed it.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct AdoptTableTests {
        @Test func aMonitorFollowsCgroupsInTheTableRulesInstallLeftAndLeavesIt() throws {
            let namespace = try TestNamespace("adopt")
            defer { namespace.close() }
            let cgroups = try TestCgroups("adopt")
            defer { cgroups.close() }
            let early = try cgroups.make(cgroups.top + "/early")
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("rules install")
            let installed = try namespace.nft(["list", "table", "inet", "nfowner"]).check("list").stdout
            #expect(installed.contains(" by=rules-install\""))

            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            #expect(monitor.stderr.contains(
                "using table inet nfowner installed by `nfowner rules install`; following cgroups; it stays installed"))
            #expect(monitor.stderr.contains("; following cgroups; stop with Ctrl-C"))

            let late = try cgroups.make(cgroups.top + "/late/svc")
            Thread.sleep(forTimeInterval: 1.0)
            try cgroups.traffic(in: late, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9311"])
            try cgroups.traffic(in: early, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9312"])
            let events = monitor.waitForEvents { $0.contains { $0.int("dport") == 9311 } && $0.contains { $0.int("dport") == 9312 } }
            let summary = monitor.stop()
            let event = try #require(events.first { $0.int("dport") == 9311 })
            #expect(event.string("cgroup") == late)
            #expect(event.string("prefix") == "nfowner cg=\(try cgroups.id(late))")
            #expect(events.first { $0.int("dport") == 9312 }?.string("cgroup") == early)
            #expect(Int(summary["cgroups_added"] ?? "") ?? 0 >= 2)  // late and late/svc
            #expect(summary["cgroup_update_failures"] == "0")
            #expect(monitor.process.terminationStatus == 0)

            // `rules install`'s table outlives the monitor, with its comment unchanged.
            let after = try namespace.nft(["list", "table", "inet", "nfowner"]).check("table still installed").stdout
            #expect(after.contains(" by=rules-install\""))
            try Harness.run(Harness.nfowner, ["rules", "remove", "--netns", namespace.name]).check("rules remove")
        }

        @Test func aMonitorAdoptsTheTableOfAKilledMonitorFollowsAndRemovesIt() throws {
            let namespace = try TestNamespace("adoptk")
            defer { namespace.close() }
            let cgroups = try TestCgroups("adoptk")
            defer { cgroups.close() }

            let first = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            let firstPID = first.process.processIdentifier
            let listing = try namespace.nft(["list", "table", "inet", "nfowner"]).check("list").stdout
            #expect(listing.contains(" by=monitor pid=\(firstPID) start="))
            first.stop(with: SIGKILL)
            #expect(try namespace.nft(["list", "table", "inet", "nfowner"]).status == 0)

            let status = try Harness.run(Harness.nfowner, ["rules", "status", "--netns", namespace.name]).check("status")
            #expect(status.stdout.contains("installed by monitor pid \(firstPID) (not running"))

            let second = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            #expect(second.stderr.contains("adopted table inet nfowner left by monitor pid \(firstPID) (not running); "
                                           + "following cgroups; it is removed on exit"))
            let late = try cgroups.make(cgroups.top + "/late")
            Thread.sleep(forTimeInterval: 1.0)
            try cgroups.traffic(in: late, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9313"])
            let events = second.waitForEvents { $0.contains { $0.int("dport") == 9313 } }
            let summary = second.stop()
            #expect(events.first { $0.int("dport") == 9313 }?.string("cgroup") == late)
            #expect(summary["cgroup_update_failures"] == "0")
            #expect(second.process.terminationStatus == 0)
            // The stale table went with the monitor that adopted it.
            #expect(try namespace.nft(["list", "table", "inet", "nfowner"]).status != 0)
        }

        @Test func aMonitorRefusesTheTableOfAMonitorStillRunning() throws {
            let namespace = try TestNamespace("adoptr")
            defer { namespace.close() }
            let first = try RunningMonitor(["--format", "none", "--netns", namespace.name])
            let firstPID = first.process.processIdentifier
            // Other groups (the first monitor reads 5, and 6 for new flows), so binding succeeds and the
            // table is what stops it.
            #expect(throws: (any Error).self) {
                _ = try RunningMonitor(["--format", "none", "--netns", namespace.name, "--group", "7"])
            }
            let result = try Harness.run(Harness.nfowner, ["monitor", "--format", "none", "--netns", namespace.name,
                                                           "--group", "7", "--count", "1"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("another monitor still running holds it (pid \(firstPID) nfowner)"))
            #expect(result.stderr.contains("kill \(firstPID)"))
            first.stop()
            #expect(first.process.terminationStatus == 0)
            #expect(try namespace.nft(["list", "table", "inet", "nfowner"]).status != 0)
        }

        @Test func aTableRulesInstallReplacedUnderARunningMonitorStaysAfterIt() throws {
            let namespace = try TestNamespace("adoptrep")
            defer { namespace.close() }
            let monitor = try RunningMonitor(["--format", "none", "--netns", namespace.name])
            #expect(monitor.stderr.contains("installed table inet nfowner for this run; it is removed on exit"))
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("rules install")
            monitor.stop()
            #expect(monitor.process.terminationStatus == 0)
            #expect(monitor.stderr.contains("left table inet nfowner installed: it was replaced meanwhile, now installed by "
                                            + "`nfowner rules install`"))
            let listing = try namespace.nft(["list", "table", "inet", "nfowner"]).check("table still installed").stdout
            #expect(listing.contains(" by=rules-install\""))
            try Harness.run(Harness.nfowner, ["rules", "remove", "--netns", namespace.name]).check("rules remove")
        }
    }
}
