import Foundation
import TestSupport
import Testing

extension EndToEnd {
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct RulesEndToEndTests {
        static let unrelated = """
            table ip other {
                chain c {
                    type filter hook output priority 0; policy accept;
                    counter
                    meta l4proto udp counter
                }
            }
            table inet keepme {
                set blocked {
                    type ipv4_addr
                    elements = { 192.0.2.1, 192.0.2.7 }
                }
                chain in {
                    type filter hook input priority -5; policy accept;
                    ip saddr @blocked drop
                }
            }

            """

        @Test func installAndRemoveLeaveOtherTablesByteForByteIntact() throws {
            let namespace = try TestNamespace("rules")
            defer { namespace.close() }
            try namespace.nft(["-f", "-"], input: Self.unrelated).check("create unrelated tables")
            let before = try namespace.nft(["list", "ruleset"]).check("list").stdout

            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name, "--uid", "65534"]).check("install")
            let installed = try namespace.nft(["list", "ruleset"]).check("list").stdout
            #expect(installed.contains("table inet nfowner"))
            #expect(installed.contains("log prefix \"nfowner\" group 5 snaplen 128"))
            #expect(installed.contains(before.trimmingCharacters(in: .newlines)))

            // Installing again replaces atomically, still touching nothing else.
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("reinstall")
            let status = try Harness.run(Harness.nfowner, ["rules", "status", "--netns", namespace.name]).check("status")
            #expect(status.stdout.contains("installed"))

            try Harness.run(Harness.nfowner, ["rules", "remove", "--netns", namespace.name]).check("remove")
            let after = try namespace.nft(["list", "ruleset"]).check("list").stdout
            #expect(after == before)

            // Removing again is not an error.
            let again = try Harness.run(Harness.nfowner, ["rules", "remove", "--netns", namespace.name])
            #expect(again.status == 0)
            #expect(again.stderr.contains("was not installed"))
        }

        @Test func monitorInstallsRulesForItsLifetimeOnly() throws {
            let namespace = try TestNamespace("life")
            defer { namespace.close() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            #expect(try namespace.nft(["list", "tables"]).stdout.contains("inet nfowner"))
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9201", "--count", "1"])
            let seen = monitor.waitForEvents { $0.contains { $0.int("dport") == 9201 } }
            #expect(seen.contains { $0.int("dport") == 9201 && $0.int("uid") == Int(Harness.unprivilegedUID) })
            monitor.stop()
            #expect(!(try namespace.nft(["list", "tables"]).stdout.contains("nfowner")))
        }

        @Test func countStopsTheMonitorAndTextFormatShowsOwners() throws {
            let namespace = try TestNamespace("count")
            defer { namespace.close() }
            let monitor = try RunningMonitor(["--count", "2", "--netns", namespace.name, "--user", "nobody"])
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9202", "--count", "5"])
            let deadline = Date().addingTimeInterval(10)
            while monitor.process.isRunning, Date() < deadline { usleep(50_000) }
            #expect(!monitor.process.isRunning)
            let lines = monitor.stdout.split(separator: "\n")
            #expect(lines.first?.hasPrefix("TIME") == true)
            #expect(lines.count == 3)
            #expect(lines.dropFirst().allSatisfy { $0.contains("nobody(65534)") && $0.contains(":9202") })
            #expect(monitor.stop()["emitted"] == "2")
        }

        @Test func aSecondMonitorOnTheSameGroupGetsAClearError() throws {
            let namespace = try TestNamespace("busy")
            defer { namespace.close() }
            let first = try RunningMonitor(["--format", "none", "--netns", namespace.name])
            defer { first.stop() }
            let second = try Harness.run(Harness.nfowner, ["monitor", "--netns", namespace.name, "--no-rules"])
            #expect(second.status != 0)
            #expect(second.stderr.contains("cannot bind NFLOG group 5: another process already holds it"))
            #expect(second.stderr.contains("pid \(first.process.processIdentifier)"))
            #expect(second.stderr.contains("--group"))
        }

        @Test func unknownNamespaceIsExplained() throws {
            let result = try Harness.run(Harness.nfowner, ["rules", "install", "--netns", "nfo-does-not-exist"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("does not exist"))
        }
    }
}
