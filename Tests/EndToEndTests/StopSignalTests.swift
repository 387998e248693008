import Foundation
import Testing

extension EndToEnd {
    /// The receive loop blocks in recv(2) between batches; a second thread turns each termination
    /// signal into an interrupt of that recv. An idle monitor (no packet at all, so the loop sits
    /// in recv the whole time) must still stop at once on each signal, with its summary and exit
    /// status 0, and so must one that is receiving. `--no-processes` leaves the loop without a
    /// housekeeping tick, hence without a receive timeout: only the interrupt can end its recv.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct StopSignalTests {
        @Test(arguments: [SIGINT, SIGTERM, SIGHUP])
        func eachTerminationSignalStopsAnIdleMonitorAtOnce(signal: Int32) throws {
            let namespace = try TestNamespace("sig")
            defer { namespace.close() }
            let monitor = try RunningMonitor(["--format", "json", "--netns", namespace.name, "--no-rules",
                                              "--no-processes"])
            usleep(300_000)  // the loop is blocked in recv by now
            let elapsed = stop(monitor, with: signal)
            #expect(elapsed < 2, "took \(elapsed) s to stop")
            #expect(!monitor.process.isRunning)
            #expect(monitor.process.terminationStatus == 0)
            let summary = Harness.keyValues(
                monitor.stderr.split(separator: "\n").last { $0.hasPrefix("received=") }.map(String.init) ?? "")
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
            let elapsed = stop(monitor, with: SIGINT)
            #expect(elapsed < 2, "took \(elapsed) s to stop")
            #expect(monitor.process.terminationStatus == 0)
            let summary = Harness.keyValues(
                monitor.stderr.split(separator: "\n").last { $0.hasPrefix("received=") }.map(String.init) ?? "")
            #expect(Int(summary["received"] ?? "") ?? 0 > 0, "summary: \(monitor.stderr)")
        }

        /// Sends `signal` by PID and waits (up to 10 s) for the exit; returns the seconds it took.
        private func stop(_ monitor: RunningMonitor, with signal: Int32) -> Double {
            let started = Date()
            kill(monitor.process.processIdentifier, signal)
            let deadline = started.addingTimeInterval(10)
            while monitor.process.isRunning, Date() < deadline { usleep(10_000) }
            let elapsed = Date().timeIntervalSince(started)
            if monitor.process.isRunning { kill(monitor.process.processIdentifier, SIGKILL) }
            monitor.process.waitUntilExit()
            return elapsed
        }
    }
}
