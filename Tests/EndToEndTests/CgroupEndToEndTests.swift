import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// cgroup classification against the real kernel: cgroups the tests create under the real
    /// cgroup2 root, traffic from processes placed in them, the monitor's `cgroup` field.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct CgroupEndToEndTests {
        @Test func sameUserInTwoCgroupsGetsEachPacketsOwnCgroup() throws {
            let namespace = try TestNamespace("cg")
            defer { namespace.close() }
            let cgroups = try TestCgroups("cg")
            defer { cgroups.close() }
            let first = try cgroups.make(cgroups.top + "/web/a")
            let second = try cgroups.make(cgroups.top + "/batch/b")

            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            try cgroups.traffic(in: first, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9301", "--count", "2"])
            try cgroups.traffic(in: second, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9302", "--count", "2"])
            try cgroups.traffic(in: first, namespace: namespace, ["ping", "--to", "127.0.0.1"])
            try cgroups.traffic(in: second, namespace: namespace, ["ping", "--to", "::1"])
            let events = monitor.waitForEvents {
                $0.filter { $0.int("dport") == 9301 || $0.int("dport") == 9302 }.count >= 4
                    && $0.filter { $0.int("icmp_type") == 8 || $0.int("icmp_type") == 128 }.count >= 2
            }
            monitor.stop()
            let fromFirst = events.filter { $0.int("dport") == 9301 || $0.int("icmp_type") == 8 }
            let fromSecond = events.filter { $0.int("dport") == 9302 || $0.int("icmp_type") == 128 }
            #expect(fromFirst.count == 3)
            #expect(fromSecond.count == 3)
            #expect(fromFirst.allSatisfy { $0.string("cgroup") == first && $0.int("uid") == Int(Harness.unprivilegedUID) })
            #expect(fromSecond.allSatisfy { $0.string("cgroup") == second && $0.int("uid") == Int(Harness.unprivilegedUID) })
            #expect(fromFirst.allSatisfy { $0.int("cgroup_id") == (try? cgroups.id(first)) })
            #expect(fromFirst.allSatisfy { $0.string("prefix") == "nfowner cg=\((try? cgroups.id(first)) ?? 0)" })
            // Kernel-made packets belong to no cgroup.
            let replies = events.filter { $0.int("icmp_type") == 0 || $0.int("icmp_type") == 129 }
            #expect(replies.allSatisfy { $0.isNull("cgroup") && $0.isNull("cgroup_id") })
        }

        @Test func aCgroupCreatedWhileTheMonitorRunsIsClassifiedWithinOneSecond() throws {
            let namespace = try TestNamespace("cgnew")
            defer { namespace.close() }
            let cgroups = try TestCgroups("cgnew")
            defer { cgroups.close() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            #expect(monitor.stderr.contains("following cgroups"))

            let late = try cgroups.make(cgroups.top + "/late/svc")
            Thread.sleep(forTimeInterval: 1.0)
            try cgroups.traffic(in: late, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9303"])
            let events = monitor.waitForEvents { $0.contains { $0.int("dport") == 9303 } }
            let summary = monitor.stop()
            let event = try #require(events.first { $0.int("dport") == 9303 })
            #expect(event.string("cgroup") == late)
            #expect(Int(summary["cgroups_added"] ?? "") ?? 0 >= 2) // late and late/svc
            #expect(summary["cgroup_update_failures"] == "0")
        }

        @Test func removingACgroupWhileTrafficFlowsIsHandledCleanly() throws {
            let namespace = try TestNamespace("cggone")
            defer { namespace.close() }
            let cgroups = try TestCgroups("cggone")
            defer { cgroups.close() }
            let steady = try cgroups.make(cgroups.top + "/steady")
            let doomed = try cgroups.make(cgroups.top + "/doomed/x")
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name])
            try cgroups.traffic(in: doomed, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9304"])

            // Steady traffic in one cgroup while the other is removed.
            let sender = Process()
            sender.executableURL = URL(fileURLWithPath: "/bin/bash")
            sender.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec nsenter --net=\"$2\" \"$3\" udp --to 127.0.0.1 --port 9305 --rate 100 --duration 2 --uid 65534 --gid 65534",
                                "nfowner-test", cgroups.directory(steady), namespace.path, Harness.traffic]
            sender.standardOutput = FileHandle.nullDevice
            try sender.run()
            Thread.sleep(forTimeInterval: 0.5)
            try cgroups.remove(doomed)
            try cgroups.remove(cgroups.top + "/doomed")
            sender.waitUntilExit()

            let events = monitor.waitForEvents { $0.filter { $0.int("dport") == 9305 }.count >= 150 }
            let summary = monitor.stop()
            #expect(events.first { $0.int("dport") == 9304 }?.string("cgroup") == doomed)
            let steadyEvents = events.filter { $0.int("dport") == 9305 }
            #expect(steadyEvents.count >= 150)
            #expect(steadyEvents.allSatisfy { $0.string("cgroup") == steady })
            #expect(summary["lost"] == "0")
            #expect(summary["cgroup_update_failures"] == "0")
            #expect(Int(summary["cgroups_removed"] ?? "") ?? 0 >= 2)
            #expect(monitor.process.terminationStatus == 0)
        }

        @Test func inboundConnectionsCarryTheListenersCgroup() throws {
            let server = try TestNamespace("cgsrv")
            defer { server.close() }
            let client = try TestNamespace("cgcli")
            defer { client.close() }
            // A veth pair between the two namespaces, with addresses only they use.
            let serverEnd = "nfs\(getpid() % 100_000)"
            try server.connect(to: client, end: serverEnd, address: "10.231.0.1/30",
                               peerEnd: "nfc\(getpid() % 100_000)", peerAddress: "10.231.0.2/30")

            let cgroups = try TestCgroups("cgin")
            defer { cgroups.close() }
            let listenerCgroup = try cgroups.make(cgroups.top + "/listener")
            let monitor = try RunningMonitor(["--format", "json", "--netns", server.name, "--input"])

            let listener = Process()
            listener.executableURL = URL(fileURLWithPath: "/bin/bash")
            listener.arguments = ["-c", "echo $$ > \"$1/cgroup.procs\" && exec nsenter --net=\"$2\" \"$3\" listen --tcp --port 9306 --address 10.231.0.1 --timeout 10 --accept 1",
                                  "nfowner-test", cgroups.directory(listenerCgroup), server.path, Harness.traffic]
            let ready = Pipe()
            listener.standardOutput = ready
            try listener.run()
            defer {
                if listener.isRunning { kill(listener.processIdentifier, SIGKILL) }
                listener.waitUntilExit()
            }
            _ = ready.fileHandleForReading.availableData
            try client.traffic(["tcp", "--to", "10.231.0.1", "--port", "9306", "--bytes", "500"], asUnprivileged: false)
            let events = monitor.waitForEvents { $0.filter { $0.string("dir") == "in" && $0.int("dport") == 9306 }.count >= 3 }
            monitor.stop()
            let inbound = events.filter { $0.string("dir") == "in" && $0.int("dport") == 9306 }
            #expect(inbound.count >= 3)
            #expect(inbound.allSatisfy { $0.string("hook") == "input" && $0.string("iface_in") == serverEnd })
            // The SYN to the listener, and the data once accepted: the listener's cgroup.
            #expect(inbound.first { $0.string("tcp_flags") == "S" }?.string("cgroup") == listenerCgroup)
            #expect(inbound.first { ($0.int("len") ?? 0) > 500 }?.string("cgroup") == listenerCgroup)
            // The server's replies go out from the same cgroup.
            let outbound = events.filter { $0.string("dir") == "out" && $0.int("sport") == 9306 }
            #expect(outbound.contains { $0.string("cgroup") == listenerCgroup })
        }

        @Test func hostileCgroupNamesNeverReachTheRuleset() throws {
            let namespace = try TestNamespace("cgevil")
            defer { namespace.close() }
            let cgroups = try TestCgroups("cgevil")
            defer { cgroups.close() }
            // cgroupfs itself refuses a newline in a name (mkdir fails with EINVAL), so no newline here;
            // the renderer's own tests cover it.
            #expect(mkdir(cgroups.directory(cgroups.top + "/new\nline"), 0o755) != 0)
            let hostile = ["q\"uote", "semi;colon", "brace}{", "dollar$x", "back\\slash"]
            for name in hostile { try cgroups.make(cgroups.top + "/" + name) }
            let fine = try cgroups.make(cgroups.top + "/fine")
            let shown = try Harness.run(Harness.nfowner, ["rules", "show"]).check("rules show")
            for name in hostile {
                #expect(!shown.stdout.contains(name))
                #expect(shown.stderr.contains("skipping cgroup \(cgroups.top)/\(name.split(separator: "\n").first ?? "")"))
            }
            #expect(shown.stdout.contains("unified\(fine)") || shown.stdout.contains("\"\(fine.dropFirst())\""))
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("install with hostile cgroups present")
            let listing = try namespace.nft(["list", "table", "inet", "nfowner"]).check("list").stdout
            #expect(listing.contains("fine"))
            #expect(!listing.contains("semi"))
        }

        @Test func theIptablesBackendAttributesTheSameWay() throws {
            let namespace = try TestNamespace("cgipt")
            defer { namespace.close() }
            let cgroups = try TestCgroups("cgipt")
            defer { cgroups.close() }
            let path = try cgroups.make(cgroups.top + "/svc/one")
            try Harness.run(Harness.nfowner, ["rules", "install", "--backend", "iptables", "--netns", namespace.name]).check("iptables install")
            defer { _ = try? Harness.run(Harness.nfowner, ["rules", "remove", "--backend", "iptables", "--netns", namespace.name]) }
            let saved = try namespace.exec(["iptables-save"]).check("iptables-save").stdout
            #expect(saved.contains("-A OUTPUT -j NFOWNER-OUT"))
            #expect(!(try namespace.nft(["list", "tables"]).stdout.contains("inet nfowner")))

            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--no-rules"])
            try cgroups.traffic(in: path, namespace: namespace, ["udp", "--to", "127.0.0.1", "--port", "9307", "--count", "2"])
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9308"])
            let events = monitor.waitForEvents { $0.filter { $0.int("dport") == 9307 || $0.int("dport") == 9308 }.count >= 3 }
            monitor.stop()
            let classified = events.filter { $0.int("dport") == 9307 }
            #expect(classified.count == 2)
            #expect(classified.allSatisfy { $0.string("cgroup") == path && $0.int("uid") == Int(Harness.unprivilegedUID) })
            let unclassified = events.first { $0.int("dport") == 9308 }
            #expect(unclassified?.string("prefix") == "nfowner")
            #expect(unclassified?.int("uid") == Int(Harness.unprivilegedUID))

            try Harness.run(Harness.nfowner, ["rules", "remove", "--backend", "iptables", "--netns", namespace.name]).check("remove")
            #expect(!(try namespace.exec(["iptables-save"]).stdout.contains("NFOWNER")))
        }
    }
}
