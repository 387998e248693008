import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// Issue 17: `nfowner top` in a real pseudo-terminal (tmux) with traffic from two programs in
    /// a namespace of the test: the rows, the keys, a window resize, and the terminal put back on
    /// q and on SIGTERM; and `--once` for scripts.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason),
           .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/tmux"), "needs tmux (apt-get install tmux)"))
    struct TopTests {
        /// A tmux session running `command` in a 110 × 24 terminal, then `stty -a` into a file and
        /// a marker line, so the terminal's state after the view is on record.
        final class Pane {
            let name = "nfowner-top-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
            let sttyFile = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-top-\(UUID().uuidString).stty")

            init(_ command: [String]) throws {
                let line = command.map { "'\($0)'" }.joined(separator: " ")
                    + "; stty -a > '\(sttyFile.path)'; echo TOP-EXITED; sleep 60"
                guard Self.tmux(["new-session", "-d", "-s", name, "-x", "110", "-y", "24", line]) == 0 else {
                    throw HarnessError("tmux new-session failed")
                }
            }

            /// Runs tmux through system(3), its output in a file: `new-session` leaves a server
            /// behind that inherits what the client had, which Foundation's Process then waits on.
            @discardableResult
            static func tmux(_ arguments: [String], output: URL? = nil) -> Int32 {
                let quoted = arguments.map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }
                let target = output.map { "'\($0.path)'" } ?? "/dev/null"
                return system("/usr/bin/tmux " + quoted.joined(separator: " ") + " </dev/null >\(target) 2>/dev/null")
            }

            /// What tmux prints for `arguments`.
            static func tmuxOutput(_ arguments: [String]) -> String {
                let file = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-tmux-\(UUID().uuidString)")
                defer { try? FileManager.default.removeItem(at: file) }
                tmux(arguments, output: file)
                return (try? String(contentsOf: file, encoding: .utf8)) ?? ""
            }

            var screen: String { Self.tmuxOutput(["capture-pane", "-p", "-t", name]) }

            func waitFor(_ text: String, timeout: TimeInterval = 15) -> String {
                let deadline = Date().addingTimeInterval(timeout)
                var current = screen
                while !current.contains(text), Date() < deadline {
                    usleep(100_000)
                    current = screen
                }
                if !current.contains(text) { print("tmux pane: no \"\(text)\" after \(timeout) s") }
                return current
            }

            func send(_ keys: String) { Self.tmux(["send-keys", "-t", name, keys]) }

            /// The pid of the command the pane's shell runs (its only child).
            var commandPID: Int32? {
                guard let shell = Int32(Self.tmuxOutput(["display", "-p", "-t", name, "#{pane_pid}"])
                    .trimmingCharacters(in: .whitespacesAndNewlines)),
                      let children = try? String(contentsOfFile: "/proc/\(shell)/task/\(shell)/children", encoding: .utf8)
                else { return nil }
                return children.split(separator: " ").first.flatMap { Int32($0) }
            }

            var terminalModes: String { (try? String(contentsOf: sttyFile, encoding: .utf8)) ?? "" }

            deinit {
                Self.tmux(["kill-session", "-t", name])
                try? FileManager.default.removeItem(at: sttyFile)
            }
        }

        static func traffic(in namespace: TestNamespace) throws {
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9", "--count", "3000", "--rate", "1500",
                                   "--size", "200"])
            _ = try namespace.exec(["ping", "-c", "3", "-i", "0.2", "-s", "500", "127.0.0.1"])
        }

        @Test func showsTheProgramsAndUsersAndRestoresTheTerminalOnQ() throws {
            let namespace = try TestNamespace("17top")
            defer { namespace.close() }
            let pane = try Pane([Harness.nfowner, "top", "--netns", namespace.name, "--interval", "1"])
            #expect(pane.waitFor("nfowner top — by program").contains("PROGRAM"))
            try Self.traffic(in: namespace)
            var screen = pane.waitFor("/usr/bin/ping")
            #expect(screen.contains("nfowner-traffic"), "the UDP sender's row:\n\(screen)")
            #expect(screen.contains("/usr/bin/ping"), "ping's row:\n\(screen)")
            #expect(screen.contains("KiB"), "human units:\n\(screen)")
            #expect(screen.contains("q quit"), "the key line:\n\(screen)")
            pane.send("u")
            screen = pane.waitFor("by user")
            #expect(screen.contains("USER") && screen.contains("nobody") && screen.contains("root"), "\(screen)")
            pane.send("q")
            screen = pane.waitFor("TOP-EXITED")
            #expect(screen.contains("TOP-EXITED"))
            #expect(!screen.contains("nfowner top —"), "the shell's screen is back (alternate screen left):\n\(screen)")
            let modes = pane.terminalModes
            #expect(modes.contains(" icanon") && modes.contains(" echo "), "line mode and echo are back: \(modes)")
            #expect(!(try namespace.nft(["list", "tables"]).stdout.contains("nfowner_top")), "its table is gone")
        }

        @Test func sigtermRestoresTheTerminalToo() throws {
            let namespace = try TestNamespace("17term")
            defer { namespace.close() }
            let pane = try Pane([Harness.nfowner, "top", "--netns", namespace.name, "--interval", "1", "--by", "unit"])
            #expect(pane.waitFor("nfowner top — by unit").contains("UNIT"))
            // The column headings span the window: 110 columns, then 70 after a resize (the last
            // heading, "OUT total", ends at the right edge both times; a view that did not follow
            // the new size would be cut off in the middle of its columns instead).
            func headings() -> String {
                pane.screen.split(separator: "\n").first { $0.hasPrefix("UNIT") }.map {
                    String($0).trimmingCharacters(in: .whitespaces)
                } ?? ""
            }
            #expect(headings().count == 110 && headings().hasSuffix("OUT total"), "\(pane.screen)")
            Pane.tmux(["resize-window", "-t", pane.name, "-x", "70", "-y", "20"])
            let deadline = Date().addingTimeInterval(5)
            while !(headings().count == 70 && headings().hasSuffix("OUT total")), Date() < deadline { usleep(100_000) }
            #expect(headings().count == 70 && headings().hasSuffix("OUT total"), "after the resize:\n\(pane.screen)")
            let pid = try #require(pane.commandPID)
            kill(pid, SIGTERM)
            let screen = pane.waitFor("TOP-EXITED")
            #expect(screen.contains("TOP-EXITED"), "\(screen)")
            #expect(!screen.contains("nfowner top —"))
            let modes = pane.terminalModes
            #expect(modes.contains(" icanon") && modes.contains(" echo "), "\(modes)")
        }

        @Test func oncePrintsOnePlainTable() throws {
            let namespace = try TestNamespace("17once")
            defer { namespace.close() }
            let top = try BackgroundProcess(["/bin/sh", "-c", "'\(Harness.nfowner)' top --once --netns \(namespace.name) "
                                             + "--interval 3 --by program > /tmp/nfowner-top-once-\(getpid()).txt 2>&1"])
            defer { try? FileManager.default.removeItem(atPath: "/tmp/nfowner-top-once-\(getpid()).txt") }
            usleep(1_000_000)
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9", "--count", "1000", "--rate", "1000",
                                   "--size", "200"])
            top.waitUntilExit()
            let output = (try? String(contentsOfFile: "/tmp/nfowner-top-once-\(getpid()).txt", encoding: .utf8)) ?? ""
            let lines = output.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("nfowner top — by program") == true, "\(output)")
            #expect(lines.contains { $0.hasPrefix("PROGRAM") && $0.contains("IN/s") && $0.contains("OUT total") }, "\(output)")
            let row = lines.first { $0.contains("nfowner-traffic") }
            #expect(row != nil, "\(output)")
            #expect(row?.contains("KiB") == true, "\(output)")
            #expect(!output.contains("\u{1B}"), "no escape sequences in a plain snapshot")
        }
        static let daemonConfig = """
            [accounting]
            bucket_s = 2
            [storage]
            path = ""
            [metrics]
            listen = "127.0.0.1:@PORT@"
            remote_labels = true
            """

        /// `top --from`: the rows a running daemon counts, read from its metrics endpoint — no
        /// table of its own in the namespace — with a notice for what the metrics cannot give,
        /// the last figures kept with the reason when the daemon goes, and the terminal restored.
        @Test func fromADaemonShowsItsTotalsWithoutRulesOfItsOwn() throws {
            let namespace = try TestNamespace("17from")
            defer { namespace.close() }
            let daemon = try RunningDaemon(config: Self.daemonConfig, in: namespace)
            defer { daemon.stop() }
            let url = "http://127.0.0.1:\(daemon.metricsPort)"
            let pane = try Pane([Harness.nfowner, "top", "--from", url, "--netns", namespace.name, "--interval", "1"])
            #expect(pane.waitFor("nfowner top — by program").contains("PROGRAM"))
            try Self.traffic(in: namespace)
            var screen = pane.waitFor("/usr/bin/ping")
            #expect(screen.contains("nfowner-traffic"), "the UDP sender's row:\n\(screen)")
            #expect(screen.contains("/usr/bin/ping"), "ping's row:\n\(screen)")
            #expect(screen.contains("KiB"), "human units:\n\(screen)")
            let tables = try namespace.nft(["list", "tables"]).stdout
            #expect(!tables.contains("nfowner_top"), "top --from installs nothing: \(tables)")
            pane.send("r")
            screen = pane.waitFor("by remote")
            // The metrics' remote label is the address (ports would multiply the series).
            #expect(screen.contains("REMOTE") && screen.contains("\n127.0.0.1 "), "\(screen)")
            pane.send("c")
            screen = pane.waitFor("not cgroup paths")
            #expect(screen.contains("! by cgroup: the daemon's metrics carry units, not cgroup paths"), "\(screen)")
            pane.send("u")
            screen = pane.waitFor("nobody")
            #expect(screen.contains("USER") && screen.contains("nobody"), "\(screen)")
            daemon.stop()
            screen = pane.waitFor("! old figures:")
            #expect(screen.contains("! old figures: cannot read http://127.0.0.1:\(daemon.metricsPort)/metrics: connect to 127.0.0.1:\(daemon.metricsPort)"),
                    "\(screen)")
            #expect(screen.contains("nobody"), "the last figures stay: \(screen)")
            pane.send("q")
            screen = pane.waitFor("TOP-EXITED")
            #expect(!screen.contains("nfowner top —"), "\(screen)")
            let modes = pane.terminalModes
            #expect(modes.contains(" icanon") && modes.contains(" echo "), "\(modes)")
        }

        @Test func fromWithOncePrintsTheDaemonsRatesAndErrorsSayWhatToDo() throws {
            let namespace = try TestNamespace("17fonce")
            defer { namespace.close() }
            let daemon = try RunningDaemon(config: Self.daemonConfig, in: namespace)
            defer { daemon.stop() }
            let output = "/tmp/nfowner-top-from-\(getpid()).txt"
            defer { try? FileManager.default.removeItem(atPath: output) }
            let top = try BackgroundProcess(["/bin/sh", "-c", "'\(Harness.nfowner)' top --once --netns \(namespace.name) "
                                             + "--from http://127.0.0.1:\(daemon.metricsPort) --interval 3 --by user > \(output) 2>&1"])
            usleep(500_000)
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9", "--count", "1500", "--rate", "1000",
                                   "--size", "1000"])
            top.waitUntilExit()
            let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
            let lines = text.split(separator: "\n").map(String.init)
            #expect(lines.first?.hasPrefix("nfowner top — by user") == true, "\(text)")
            // About 1000 × 1028 B/s out as nobody while the interval lasted: a rate in KiB/s or MiB/s.
            let row = try #require(lines.first { $0.hasPrefix("nobody") }, "\(text)")
            let fields = row.split(separator: " ")
            #expect(fields.count == 9, "\(row)")
            #expect(fields.count > 4 && (fields[4] == "KiB/s" || fields[4] == "MiB/s"), "out rate: \(row)")
            #expect(!text.contains("\u{1B}"))

            // Nothing listens there: the error names the address and what to check.
            let refused = try Harness.run(Harness.nfowner, ["top", "--once", "--netns", namespace.name,
                                                            "--from", "http://127.0.0.1:1", "--interval", "0.2"])
            #expect(refused.status != 0)
            #expect(refused.stderr.contains("cannot read http://127.0.0.1:1/metrics: connect to 127.0.0.1:1"), "\(refused.stderr)")
            #expect(refused.stderr.contains("is `nfowner run` running with [metrics] listen"), "\(refused.stderr)")
            let https = try Harness.run(Harness.nfowner, ["top", "--once", "--from", "https://127.0.0.1:9465"])
            #expect(https.status != 0)
            #expect(https.stderr.contains("plain HTTP; use http://"), "\(https.stderr)")
            // A web server that is not nfowner's: named as such.
            let wrongPath = try Harness.run(Harness.nfowner, ["top", "--once", "--netns", namespace.name, "--from",
                                                              "http://127.0.0.1:\(daemon.metricsPort)/nothing"])
            #expect(wrongPath.stderr.contains("the server answered 404"), "\(wrongPath.stderr)")
        }
    }
}
