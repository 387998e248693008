import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// One-shot senders started together (issue 12 items 3 and 4): their sockets are gone when
    /// their packets are resolved, so the process table has to name them — leaves over the shell
    /// that started them, one program when they all run one executable — in a classified cgroup,
    /// in the root cgroup (no classification at all), and below the deepest classified level
    /// (where the owner's cgroup is the process's own, counted as a correction).
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct ShortLivedSenderTests {
        /// What one burst produced: the senders' pids and the monitor's events for the port.
        struct Burst {
            var senders: Set<Int>
            var events: [[String: Any]]
            var summary: [String: String]

            /// Events whose `exe` is the traffic generator, by a confidence that names it.
            var named: [[String: Any]] {
                events.filter {
                    ["exact", "single", "program"].contains($0.string("confidence") ?? "")
                        && ($0.string("exe") ?? "").hasSuffix("/nfowner-traffic")
                }
            }

            var confidenceMix: [String: Int] {
                events.reduce(into: [:]) { $0[$1.string("confidence") ?? "null", default: 0] += 1 }
            }

            func unnamed() -> [String] {
                let ports = Set(named.compactMap { $0.int("sport") })
                return events.filter { !ports.contains($0.int("sport") ?? -1) }.map {
                    let listed = ($0["processes"] as? [[String: Any]] ?? []).filter { !($0.string("exe") ?? "").hasSuffix("/nfowner-traffic") }.map {
                        "\($0.int("pid") ?? -1):\($0.string("comm") ?? "-"):\($0.string("exe") ?? "-")"
                    }
                    return "\($0.string("confidence") ?? "-") exe=\($0.string("exe") ?? "-"): \($0.string("reason") ?? "") \(listed)"
                }
            }
        }

        /// Starts `count` `burst-exit` senders at once from one shell that first moves itself into
        /// `cgroupDirectory` (the senders are its children there) and waits for them.
        /// With `sendAfter` (seconds), every sender opens its socket and waits until that long after
        /// now before sending (`burst-exit --send-at`): none is still starting when the others send.
        static func burst(count: Int, port: Int, cgroupDirectory: String, namespace: TestNamespace,
                          unprivileged: Bool, sendAfter: Double? = nil, monitor: RunningMonitor) throws -> Burst {
            let script = """
                echo $$ > "$1/cgroup.procs" || exit 1
                ns=$2; traffic=$3; port=$4; n=$5; shift 5
                for i in $(seq "$n"); do nsenter --net="$ns" "$traffic" burst-exit --to 127.0.0.1 --port "$port" "$@" & done
                wait
                """
            var arguments = ["-c", script, "nfowner-test", cgroupDirectory, namespace.path, Harness.traffic,
                             String(port), String(count)]
            if unprivileged {
                arguments += ["--uid", String(Harness.unprivilegedUID), "--gid", String(Harness.unprivilegedGID)]
            }
            if let sendAfter {
                var now = timespec()
                clock_gettime(CLOCK_MONOTONIC, &now)
                let at = UInt64(now.tv_sec) * 1_000_000_000 + UInt64(now.tv_nsec) + UInt64(sendAfter * 1e9)
                arguments += ["--send-at", String(at)]
            }
            let result = try Harness.run("/bin/bash", arguments)
            try result.check("\(count) burst-exit senders")
            let senders = Set(result.stdout.split(separator: "\n").filter { $0.hasPrefix("mode=burst-exit") }
                .compactMap { Harness.keyValues(String($0))["pid"].flatMap(Int.init) })
            let events = monitor.waitForEvents(timeout: 15) {
                $0.filter { $0.int("dport") == port && $0.string("proto") == "udp" }.count >= count
            }.filter { $0.int("dport") == port && $0.string("proto") == "udp" }
            let summary = monitor.stop()
            return Burst(senders: senders, events: events, summary: summary)
        }

        /// Each named event names a sender: its pid (exact, single), or no pid (program) with every
        /// listed process a sender.
        static func expectNamesSenders(_ burst: Burst) {
            for event in burst.named {
                if event.string("confidence") == "program" {
                    #expect(event.isNull("pid"))
                    let listed = (event["processes"] as? [[String: Any]] ?? []).compactMap { $0.int("pid") }
                    #expect(!listed.isEmpty && Set(listed).isSubset(of: burst.senders),
                            "program lists non-senders: \(listed)")
                } else {
                    #expect(burst.senders.contains(event.int("pid") ?? -1), "pid \(event.int("pid") ?? -1) is no sender")
                }
            }
        }

        /// As root: the shell that starts them (uid 0, in the cgroup, waiting) is a candidate too,
        /// and must lose to its children. They send together (`--send-at`, 1.5 s after the start):
        /// a root sender still starting when the others send would be a bash or nsenter alive in
        /// the cgroup at packet time — an honest candidate, and then no single program.
        @Test func fortySendersOfOneProgramInOneCgroupAreNamed() throws {
            let namespace = try TestNamespace("burst40")
            defer { namespace.close() }
            let cgroups = try TestCgroups("burst40")
            defer { cgroups.close() }
            let cgroup = try cgroups.make(cgroups.top + "/forty")
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--flush-timeout", "1"])
            let burst = try Self.burst(count: 40, port: 9511, cgroupDirectory: cgroups.directory(cgroup),
                                       namespace: namespace, unprivileged: false, sendAfter: 1.5, monitor: monitor)
            print("40 senders in one cgroup, sending together: \(burst.named.count)/\(burst.events.count) named, \(burst.confidenceMix)")
            #expect(burst.senders.count == 40)
            #expect(burst.events.count == 40)
            #expect(burst.named.count == 40, "\(40 - burst.named.count) of 40 not named: \(burst.unnamed())")
            Self.expectNamesSenders(burst)
            let id = try cgroups.id(cgroup)
            #expect(burst.events.allSatisfy { $0.string("cgroup") == cgroup && $0.int("cgroup_id") == id })
            #expect(burst.summary["cgroup_corrections"] == "0")
        }

        /// Started at once and sending as soon as each is up, most exit before the table reads
        /// their exec: the race with reaping. Unprivileged, so the senders still starting (uid 0
        /// until they drop it) are no candidates.
        @Test func fortySendersStartedAtOnceAreNamed() throws {
            let namespace = try TestNamespace("burst40u")
            defer { namespace.close() }
            let cgroups = try TestCgroups("burst40u")
            defer { cgroups.close() }
            let cgroup = try cgroups.make(cgroups.top + "/forty")
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--flush-timeout", "1"])
            let burst = try Self.burst(count: 40, port: 9514, cgroupDirectory: cgroups.directory(cgroup),
                                       namespace: namespace, unprivileged: true, monitor: monitor)
            print("40 senders in one cgroup, started at once: \(burst.named.count)/\(burst.events.count) named, \(burst.confidenceMix)")
            #expect(burst.senders.count == 40)
            #expect(burst.events.count == 40)
            #expect(burst.named.count == 40, "\(40 - burst.named.count) of 40 not named: \(burst.unnamed())")
            Self.expectNamesSenders(burst)
            #expect(burst.named.allSatisfy { $0.string("cgroup") == cgroup })
        }

        @Test func tenSendersInTheRootCgroupAreNamedWithTheRootCgroup() throws {
            let namespace = try TestNamespace("burstroot")
            defer { namespace.close() }
            let cgroups = try TestCgroups("burstroot")
            defer { cgroups.close() }
            let rootID = try #require((try FileManager.default.attributesOfItem(atPath: cgroups.mountPoint)[.systemFileNumber]) as? Int)
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--flush-timeout", "1"])
            // Unprivileged: without a cgroup the candidates are every process of the uid that
            // started or exited at packet time, machine-wide; root's would include whatever else
            // runs as root here.
            let burst = try Self.burst(count: 10, port: 9512, cgroupDirectory: cgroups.mountPoint,
                                       namespace: namespace, unprivileged: true, monitor: monitor)
            print("10 senders in the root cgroup: \(burst.named.count)/\(burst.events.count) named, \(burst.confidenceMix)")
            #expect(burst.senders.count == 10)
            #expect(burst.events.count == 10)
            #expect(burst.named.count == 10, "\(10 - burst.named.count) of 10 not named: \(burst.unnamed())")
            Self.expectNamesSenders(burst)
            #expect(burst.events.allSatisfy { $0.string("cgroup") == "/" && $0.int("cgroup_id") == rootID },
                    "\(burst.events.map { "\($0.string("cgroup") ?? "null") \($0.int("cgroup_id") ?? -1)" })")
            #expect(burst.summary["cgroup_corrections"] == "0")
        }

        @Test func sendersBelowTheClassifiedLevelsGetTheirOwnCgroup() throws {
            let namespace = try TestNamespace("burstdeep")
            defer { namespace.close() }
            let cgroups = try TestCgroups("burstdeep")
            defer { cgroups.close() }
            // Levels 1–3 are classified (the default); level 4 is the process's own.
            let classified = try cgroups.make(cgroups.top + "/a/b")
            let deep = try cgroups.make(classified + "/c")
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--flush-timeout", "1"])
            let burst = try Self.burst(count: 5, port: 9513, cgroupDirectory: cgroups.directory(deep),
                                       namespace: namespace, unprivileged: true, monitor: monitor)
            print("5 senders at level 4: \(burst.named.count)/\(burst.events.count) named, \(burst.confidenceMix), cgroup_corrections=\(burst.summary["cgroup_corrections"] ?? "-")")
            #expect(burst.events.count == 5)
            #expect(burst.named.count == 5, "\(5 - burst.named.count) of 5 not named: \(burst.unnamed())")
            let id = try cgroups.id(deep)
            #expect(burst.named.allSatisfy { $0.string("cgroup") == deep && $0.int("cgroup_id") == id },
                    "\(burst.events.map { "\($0.string("cgroup") ?? "null") \($0.int("cgroup_id") ?? -1)" })")
            // One correction per resolved flow (a flow per sender; none is cached).
            #expect(burst.summary["cgroup_corrections"] == String(burst.named.count))
        }
    }
}
