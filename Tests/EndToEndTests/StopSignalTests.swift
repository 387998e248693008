import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// The receive loop blocks in recv(2) between batches; a second thread turns each termination
    /// signal into an interrupt of that recv. An idle monitor (no packet at all, so the loop sits
    /// in recv the whole time) must still stop at once on each signal, with its summary and exit
    /// status 0, and so must one that is receiving. `--no-processes` leaves the loop without a
    /// housekeeping tick, hence without a receive timeout: only the interrupt can end its recv.
    /// SIGHUP is "reload", not "stop": the monitor says so and goes on.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct StopSignalTests {
        @Test(arguments: [SIGINT, SIGTERM])
        func eachTerminationSignalStopsAnIdleMonitorAtOnce(signal: Int32) throws {
            let namespace = try TestNamespace("sig")
            defer { namespace.close() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--no-rules",
                                              "--no-processes"])
            usleep(300_000)  // the loop is blocked in recv by now
            let (summary, elapsed) = timedStop(monitor, with: signal)
            #expect(elapsed < 2, "took \(elapsed) s to stop")
            #expect(!monitor.process.isRunning)
            #expect(monitor.process.terminationStatus == 0)
            #expect(summary["received"] == "0", "summary: \(monitor.stderr)")
        }

        @Test func hangupReloadsAndTheMonitorGoesOn() throws {
            let namespace = try TestNamespace("sighup")
            defer { namespace.close() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--no-rules",
                                              "--no-processes"])
            usleep(300_000)
            kill(monitor.process.processIdentifier, SIGHUP)
            let deadline = Date().addingTimeInterval(5)
            while !monitor.stderr.contains("SIGHUP"), Date() < deadline { usleep(20_000) }
            #expect(monitor.stderr.contains("nfowner: SIGHUP: user, group and interface names are looked up again"),
                    "stderr: \(monitor.stderr)")
            usleep(200_000)
            #expect(monitor.process.isRunning, "SIGHUP must not stop the monitor")
            let (summary, elapsed) = timedStop(monitor, with: SIGTERM)
            #expect(elapsed < 2, "took \(elapsed) s to stop")
            #expect(monitor.process.terminationStatus == 0)
            #expect(summary["received"] == "0", "summary: \(monitor.stderr)")
        }

        @Test func aSignalStopsAMonitorThatIsReceiving() throws {
            let namespace = try TestNamespace("sigbusy")
            defer { namespace.close() }
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("rules install")
            let monitor = try RunningMonitor(["--format", "none", "--netns", namespace.name, "--no-rules"])
            let sender = try BackgroundProcess(["nsenter", "--net=\(namespace.path)",
                Harness.traffic, "udp", "--to", "127.0.0.1", "--port", "9", "--rate", "20000", "--duration", "30",
            ])
            defer { sender.stop() }
            usleep(500_000)
            let (summary, elapsed) = timedStop(monitor, with: SIGINT)
            #expect(elapsed < 2, "took \(elapsed) s to stop")
            #expect(monitor.process.terminationStatus == 0)
            #expect(Int(summary["received"] ?? "") ?? 0 > 0, "summary: \(monitor.stderr)")
        }

        /// `RunningMonitor.stop(with:)`, timed: the summary and the seconds until the exit.
        private func timedStop(_ monitor: RunningMonitor, with signal: Int32) -> ([String: String], Double) {
            let started = Date()
            let summary = monitor.stop(with: signal)
            return (summary, Date().timeIntervalSince(started))
        }
    }
}
