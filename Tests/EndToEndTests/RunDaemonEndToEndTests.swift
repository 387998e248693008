import Foundation
import History
import Reports
import TestSupport
import Testing

extension EndToEnd {
    /// Issue 14: `nfowner run` accounts known transfers — per user, program and direction —
    /// as the kernel's own counters in the peer namespace count the same IP bytes; its metrics
    /// endpoint serves them inside the daemon's namespace; SIGHUP reloads with counters kept.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct RunDaemonTests {
        static let uploaderUID = 65534, datagramUID = 65533
        static let uploadPort = 9701, datagramPort = 9702, downloadPort = 9703

        static let config = """
            [accounting]
            bucket_s = 2
            [storage]
            path = "@DB@"
            [metrics]
            listen = "127.0.0.1:@PORT@"
            """

        /// A 1 MiB TCP upload from cgroup A as one user, 300 KiB of UDP from cgroup B as another,
        /// pings with 1000-byte payloads from A, and a 1 MiB TCP download into a listener in A
        /// from the peer: every figure within 1% of the peer's nft counters.
        @Test func knownTransfersMatchTheKernelsCounters() throws {
            let pair = try VethPair("14run")
            defer { pair.close() }
            let cgroups = try TestCgroups("14run")
            defer { cgroups.close() }
            let groupA = try cgroups.make(cgroups.top + "/a"), groupB = try cgroups.make(cgroups.top + "/b")
            let reference = try ReferenceCounters(in: pair.local, peer: pair.peerAddress)
            let daemon = try RunningDaemon(config: Self.config, in: pair.local)
            defer { daemon.stop() }

            try Self.sendKnownTransfers(pair: pair, cgroups: cgroups, groupA: groupA, groupB: groupB)

            let kernel = try reference.bytes()
            let uploader = Self.userName(Self.uploaderUID), datagramUser = String(Self.datagramUID)
            // nfowner's figures, per user, direction and protocol, once the endpoint caught up.
            var figures: [String: Double] = [:]
            // Inbound TCP per user within 1% too: the download's packets without a uid (its SYN,
            // last handshake ACK and first GRO-merged segments) are named even when the SYN's
            // socket lookup ran during the accept() or after the transfer ended — by the receiver
            // in the cgroup the kernel classified them into (this once lost 116,316 bytes in one
            // run in three to six; see docs/accounting.md, "How it is tested").
            let expected: [(String, [String: String], String)] = [
                ("uploader tcp out", ["user": uploader, "direction": "out", "proto": "tcp"], "out_tcp"),
                ("uploader tcp in", ["user": uploader, "direction": "in", "proto": "tcp"], "in_tcp"),
                ("uploader icmp out", ["user": uploader, "direction": "out", "proto": "icmp"], "out_icmp"),
                ("uploader icmp in", ["user": uploader, "direction": "in", "proto": "icmp"], "in_icmp"),
                ("datagrams udp out", ["user": datagramUser, "direction": "out", "proto": "udp"], "out_udp"),
            ]
            let deadline = Date().addingTimeInterval(10)
            repeat {
                let samples = RunningDaemon.samples(try daemon.scrape())
                for (what, labels, _) in expected {
                    figures[what] = RunningDaemon.sum(samples, "nfowner_bytes_total", labels)
                }
                if expected.allSatisfy({ figures[$0.0] == Double(kernel[$0.2] ?? -1) }) { break }
                usleep(300_000)
            } while Date() < deadline
            for (what, _, counter) in expected {
                let truth = Double(kernel[counter] ?? 0)
                let measured = figures[what] ?? 0
                #expect(truth > 0, "\(what): the kernel counted nothing")
                #expect(abs(measured - truth) <= truth * 0.01, "\(what): nfowner \(measured) bytes, kernel \(truth)")
                print("issue 14 figure: \(what): nfowner \(Int(measured)) bytes, kernel \(Int(truth))")
            }
            #expect(Double(kernel["out_tcp"] ?? 0) > 1_048_576 && Double(kernel["in_tcp"] ?? 0) > 1_048_576)
            #expect(Double(kernel["out_udp"] ?? 0) == 300 * (1024 + 28))
            let samples = RunningDaemon.samples(try daemon.scrape())
            #expect(RunningDaemon.sum(samples, "nfowner_bytes_total",
                                      ["user": uploader, "program": Harness.traffic, "proto": "tcp"]) > 1_900_000,
                    "the program label names nfowner-traffic")
            #expect(samples["nfowner_lost_packets_total"] == 0)
            #expect(daemon.stop() == 0, "SIGTERM: exit 0\n\(daemon.log)")
            #expect(try pair.local.nft(["list", "tables"]).stdout.contains("nfowner") == false, "rules removed")

            // The history, read by `nfowner report`: the same figures as the metrics per user and
            // direction (SIGTERM wrote the last, partial bucket), and per cgroup as the kernel's.
            let byUser = try Self.report(daemon, by: "user")
            for (what, labels, _) in expected where labels["proto"] != nil {
                let reported = try Self.reportedBytes(daemon, by: "user,proto", ["user": labels["user"]!,
                                                                                   "direction": labels["direction"]!,
                                                                                   "proto": labels["proto"]!])
                #expect(Double(reported) == figures[what], "\(what): report \(reported), metrics \(figures[what] ?? -1)")
            }
            #expect(byUser["unaccounted"] as? Int == 0)
            #expect((byUser["modes"] as? [String]) == ["packets"])
            let cgroupFigures: [(String, [String: String], Int)] = [
                ("cgroup A out", ["cgroup": groupA, "direction": "out"], (kernel["out_tcp"] ?? 0) + (kernel["out_icmp"] ?? 0)),
                ("cgroup A in", ["cgroup": groupA, "direction": "in"], (kernel["in_tcp"] ?? 0) + (kernel["in_icmp"] ?? 0)),
                ("cgroup B out", ["cgroup": groupB, "direction": "out"], kernel["out_udp"] ?? 0),
            ]
            for (what, keys, truth) in cgroupFigures {
                let reported = try Self.reportedBytes(daemon, by: "cgroup", keys)
                #expect(abs(Double(reported - truth)) <= Double(truth) * 0.01, "\(what): report \(reported), kernel \(truth)")
                print("issue 14 figure: \(what) (report): nfowner \(reported) bytes, kernel \(truth)")
            }
            // The same history as a page: both directions charted, both cgroups in the legend.
            let page = try Harness.run(Harness.nfowner, ["report", "--db", daemon.databasePath, "--since", "1h",
                                                         "--by", "cgroup", "--format", "html"]).check("nfowner report --format html")
            #expect(page.stdout.components(separatedBy: "<svg class=\"chart\"").count - 1 == 2)
            for group in [groupA, groupB] {
                #expect(page.stdout.contains("<span class=\"label\">\(group)</span>"), "\(group) in a legend")
            }
        }

        /// `nfowner report --db … --since 1h --by BY --format json`, parsed.
        static func report(_ daemon: RunningDaemon, by: String) throws -> [String: Any] {
            let result = try Harness.run(Harness.nfowner, ["report", "--db", daemon.databasePath, "--since", "1h",
                                                           "--by", by, "--format", "json"]).check("nfowner report")
            guard let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any] else {
                throw HarnessError("report is not a JSON object: \(result.stdout)")
            }
            return json
        }

        /// The bytes of the report rows (grouped `by`) whose keys have the values in `keys`.
        static func reportedBytes(_ daemon: RunningDaemon, by: String, _ keys: [String: String]) throws -> Int {
            let rows = try report(daemon, by: by)["rows"] as? [[String: Any]] ?? []
            return rows.filter { row in keys.allSatisfy { row[$0.key] as? String == $0.value } }
                .reduce(0) { $0 + ($1["bytes"] as? Int ?? 0) }
        }

        /// The issue's known transfers, from `pair.local` to its peer and back: a 1 MiB TCP upload
        /// from `groupA` as nobody, 300 × 1024 B of UDP from `groupB` as uid 65533, five pings of
        /// 1000 B from `groupA`, and a 1 MiB TCP download from the peer into a listener in `groupA`.
        static func sendKnownTransfers(pair: VethPair, cgroups: TestCgroups, groupA: String, groupB: String) throws {
        let uploadSink = try BackgroundProcess(["nsenter", "--net=\(pair.peer.path)", Harness.traffic, "listen", "--tcp",
                                                "--port", String(Self.uploadPort), "--address", "0.0.0.0",
                                                "--timeout", "20"], waitForOutput: true)
        defer { uploadSink.stop() }
        let datagramSink = try BackgroundProcess(["nsenter", "--net=\(pair.peer.path)", Harness.traffic, "listen", "--udp",
                                                  "--port", String(Self.datagramPort), "--address", "0.0.0.0",
                                                  "--timeout", "20", "--count", "300"], waitForOutput: true)
        defer { datagramSink.stop() }
        // The download's listener: a process in cgroup A, as the uploader's user.
        let script = "echo $$ > \"$1/cgroup.procs\" && shift && exec nsenter --net=\"$1\" \"${@:2}\""
        let downloadSink = try BackgroundProcess(
            ["/bin/bash", "-c", script, "nfowner-test", cgroups.directory(groupA), pair.local.path, Harness.traffic,
             "listen", "--tcp", "--port", String(Self.downloadPort), "--address", "0.0.0.0", "--timeout", "20",
             "--uid", String(Self.uploaderUID), "--gid", String(Self.uploaderUID)], waitForOutput: true)
        defer { downloadSink.stop() }

        let upload = try cgroups.traffic(in: groupA, namespace: pair.local, [
            "tcp", "--to", pair.peerAddress, "--port", String(Self.uploadPort), "--bytes", "1048576"])
        #expect(upload["errors"] == "0", "\(upload)")
        let datagrams = try cgroups.traffic(in: groupB, namespace: pair.local, [
            "udp", "--to", pair.peerAddress, "--port", String(Self.datagramPort), "--count", "300", "--size", "1024",
            "--rate", "3000", "--uid", String(Self.datagramUID), "--gid", String(Self.datagramUID)], asUnprivileged: false)
        #expect(datagrams["sent"] == "300", "\(datagrams)")
        let pings = try cgroups.traffic(in: groupA, namespace: pair.local, [
            "ping", "--to", pair.peerAddress, "--count", "5", "--size", "1000"])
        #expect(pings["errors"] == "0", "\(pings)")
        let download = try pair.peer.traffic([
            "tcp", "--to", pair.localAddress, "--port", String(Self.downloadPort), "--bytes", "1048576"],
            asUnprivileged: false)
        #expect(download["errors"] == "0", "\(download)")
        downloadSink.waitUntilExit()
        }

        /// Kernel counting: the same transfers, counted by nft in nfowner's table and read by the
        /// daemon — per user and direction within 1% of the peer's counters (inbound packets the
        /// kernel did not match to a socket early, such as echo replies, carry no uid there).
        @Test func kernelCountingMatchesTheKernelsCounters() throws {
            let pair = try VethPair("14krn")
            defer { pair.close() }
            let cgroups = try TestCgroups("14krn")
            defer { cgroups.close() }
            let groupA = try cgroups.make(cgroups.top + "/a"), groupB = try cgroups.make(cgroups.top + "/b")
            let reference = try ReferenceCounters(in: pair.local, peer: pair.peerAddress)
            let daemon = try RunningDaemon(config: Self.config.replacingOccurrences(of: "[accounting]", with: "[accounting]\nmode = \"kernel\""),
                                           in: pair.local)
            defer { daemon.stop() }
            try Self.sendKnownTransfers(pair: pair, cgroups: cgroups, groupA: groupA, groupB: groupB)

            let kernel = try reference.bytes()
            let uploader = Self.userName(Self.uploaderUID), datagramUser = String(Self.datagramUID)
            let sentToPeer = ["out_tcp", "out_udp", "out_icmp"].reduce(0) { $0 + (kernel[$1] ?? 0) }
            let sentByPeer = ["in_tcp", "in_udp", "in_icmp"].reduce(0) { $0 + (kernel[$1] ?? 0) }
            // (what, labels, the kernel's figure, tolerance). Every byte in and out: exact (the
            // only other traffic is a few hundred bytes of IPv6 neighbour discovery). Per user:
            // outbound within 1%; inbound, only what the kernel matched to a socket before the
            // input hook (established TCP; not ping replies, not a listener's handshake) carries
            // a uid: typically 98% of the uploader's, less on a loaded machine (88% seen), and
            // the rest is counted without a user (in the right cgroup: see the report check).
            let expected: [(String, [String: String], Int, ClosedRange<Double>)] = [
                ("all out", ["direction": "out"], sentToPeer, 0.999...1.002),
                ("all in", ["direction": "in"], sentByPeer, 0.999...1.002),
                ("uploader out", ["user": uploader, "direction": "out"], (kernel["out_tcp"] ?? 0) + (kernel["out_icmp"] ?? 0), 0.99...1.01),
                ("datagrams out", ["user": datagramUser, "direction": "out"], kernel["out_udp"] ?? 0, 0.99...1.01),
                ("uploader in", ["user": uploader, "direction": "in"], (kernel["in_tcp"] ?? 0) + (kernel["in_icmp"] ?? 0), 0.8...1.01),
            ]
            // One scrape, after two reads of the counters: a scrape's own loopback traffic is
            // counted too, and would show in the next one.
            sleep(5)
            let samples = RunningDaemon.samples(try daemon.scrape())
            var figures: [String: Double] = [:]
            for (what, labels, _, _) in expected { figures[what] = RunningDaemon.sum(samples, "nfowner_bytes_total", labels) }
            for (what, _, truth, tolerance) in expected {
                let measured = figures[what] ?? 0
                #expect(truth > 0, "\(what): the kernel counted nothing")
                #expect(tolerance.contains(measured / Double(max(1, truth))), "\(what): nfowner \(measured), kernel \(truth)")
                print("issue 14 figure (kernel mode): \(what): nfowner \(Int(measured)) bytes, kernel \(truth)")
            }
            #expect(daemon.log.contains("accounting with the kernel's counters"), "\(daemon.log)")
            #expect(daemon.stop() == 0, "SIGTERM: exit 0\n\(daemon.log)")
            #expect(try pair.local.nft(["list", "tables"]).stdout.contains("nfowner") == false, "rules removed")

            // Per cgroup, from the history: the kernel's `socket cgroupv2` lookup finds a TCP or
            // UDP packet's receiving socket at input too (not a ping socket: the five echo replies,
            // 5,140 bytes, count as unclassified), so both directions are within 1%.
            let cgroupFigures: [(String, [String: String], Int)] = [
                ("cgroup A out", ["cgroup": groupA, "direction": "out"], (kernel["out_tcp"] ?? 0) + (kernel["out_icmp"] ?? 0)),
                ("cgroup A in", ["cgroup": groupA, "direction": "in"], (kernel["in_tcp"] ?? 0) + (kernel["in_icmp"] ?? 0)),
                ("cgroup B out", ["cgroup": groupB, "direction": "out"], kernel["out_udp"] ?? 0),
            ]
            for (what, keys, truth) in cgroupFigures {
                let reported = try Self.reportedBytes(daemon, by: "cgroup", keys)
                #expect(abs(Double(reported - truth)) <= Double(truth) * 0.01, "\(what): report \(reported), kernel \(truth)")
                print("issue 14 figure (kernel mode): \(what) (report): nfowner \(reported) bytes, kernel \(truth)")
            }
            #expect((try Self.report(daemon, by: "cgroup")["modes"] as? [String]) == ["kernel"])
        }

        /// `kill -9` under traffic: the history opens, passes `PRAGMA integrity_check`, and holds
        /// every bucket closed a second before the kill (1 s buckets: at most the bucket being
        /// filled, and the one being written, are lost).
        @Test func theHistorySurvivesKillDashNine() throws {
            let namespace = try TestNamespace("14kill")
            defer { namespace.close() }
            let daemon = try RunningDaemon(config: Self.config.replacingOccurrences(of: "bucket_s = 2", with: "bucket_s = 1"),
                                           in: namespace)
            defer { daemon.stop() }
            let sender = try BackgroundProcess(["nsenter", "--net=\(namespace.path)", Harness.traffic, "udp", "--to",
                                                "127.0.0.1", "--port", "9", "--rate", "2000", "--duration", "6", "--size",
                                                "100", "--quiet"])
            defer { sender.stop() }
            sleep(4)
            let killedAt = Int(Date().timeIntervalSince1970)
            daemon.signal(SIGKILL)
            daemon.process.waitUntilExit()
            #expect(daemon.process.terminationReason == .uncaughtSignal)
            let store = try HistoryStore(path: daemon.databasePath, access: .readOnly)
            try store.integrityCheck()
            let result = try store.query(since: 0, until: Int64(killedAt) + 10, by: [.proto])
            let written = result.rows.reduce(0) { $0 + $1.counts.packets }
            #expect(written > 2000, "about 2,000 datagrams a second for 4 s: most of them in the history (\(written))")
            try? store.close()
            try? namespace.exec(["nft", "delete", "table", "inet", "nfowner"])
        }

        /// SIGHUP: a good file is applied with the counters kept; a bad one is refused, the
        /// running configuration kept, and the daemon goes on.
        @Test func sighupReloadsKeepsCountersAndRefusesABadFile() throws {
            let namespace = try TestNamespace("14hup")
            defer { namespace.close() }
            let daemon = try RunningDaemon(config: Self.config, in: namespace)
            defer { daemon.stop() }
            try namespace.traffic(["ping", "--to", "127.0.0.1", "--count", "3", "--size", "1000"])
            let before = try Self.waitForBytes(daemon, atLeast: 3 * 1028)

            try daemon.writeConfig(Self.config.replacingOccurrences(of: "bucket_s = 2", with: "bucket_s = 2\nmax_remotes = 0"))
            daemon.signal(SIGHUP)
            try daemon.waitForLog("SIGHUP: configuration reloaded", timeout: 5)
            // The bound applies to remotes new to a bucket: the next one (2 s buckets) starts clean.
            usleep(2_500_000)
            try namespace.traffic(["ping", "--to", "127.0.0.1", "--count", "2", "--size", "1000"])
            let after = try Self.waitForBytes(daemon, atLeast: before + 2 * 1028)
            #expect(after >= before + 2 * 1028, "counters kept across the reload")

            try daemon.writeConfig("[accounting]\nbucket_s = \"soon\"\n")
            daemon.signal(SIGHUP)
            try daemon.waitForLog("configuration not reloaded", timeout: 5)
            #expect(daemon.log.contains("accounting.bucket_s must be an integer"), "\(daemon.log)")
            try namespace.traffic(["ping", "--to", "127.0.0.1", "--count", "1", "--size", "1000"])
            #expect(try Self.waitForBytes(daemon, atLeast: after + 1028) >= after + 1028, "still accounting")
            #expect(daemon.stop() == 0)
            // The reloaded max_remotes = 0 took effect: pings after it are under the remote "other".
            let remotes = Set((try Self.report(daemon, by: "remote")["rows"] as? [[String: Any]] ?? [])
                .compactMap { $0["remote"] as? String })
            #expect(remotes.contains("127.0.0.1") && remotes.contains("other"), "\(remotes)")
        }

        /// The bytes nfowner's pings sent (user nobody, ICMP out), once at least `minimum`.
        static func waitForBytes(_ daemon: RunningDaemon, atLeast minimum: Double) throws -> Double {
            let deadline = Date().addingTimeInterval(8)
            var bytes = 0.0
            repeat {
                bytes = RunningDaemon.sum(RunningDaemon.samples(try daemon.scrape()), "nfowner_bytes_total",
                                          ["user": userName(Int(Harness.unprivilegedUID)), "direction": "out", "proto": "icmp"])
                if bytes >= minimum { return bytes }
                usleep(200_000)
            } while Date() < deadline
            return bytes
        }

        static func userName(_ uid: Int) -> String {
            guard let entry = getpwuid(uid_t(uid)), let name = entry.pointee.pw_name else { return String(uid) }
            return String(cString: name)
        }
    }
}
