import Foundation
import Testing

extension EndToEnd {
    /// Under load the receive loop wakes at most once per `--coalesce-us` and reads every batch
    /// queued meanwhile; with 0 it wakes for each batch. Either way nothing may be lost. The
    /// installed rules batch 20 packets (the shipped `queue_threshold`), so 30,000 datagrams at
    /// 30,000/s and the kernel's 30,000 ICMP answers arrive as ≈3,000 batches in one second.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct WakeCoalescingTests {
        @Test func underLoadOneWakeupTakesSeveralBatchesAndNothingIsLost() throws {
            let summary = try run(coalesceArguments: [])  // the default, 2 ms
            let batches = Int(summary["batches"] ?? "") ?? 0
            let wakeups = Int(summary["wakeups"] ?? "") ?? 0
            #expect(batches >= 1_000, "summary: \(summary)")
            // ≤ 500 wakeups per second of load (plus the idle ones before and after) against
            // ≈3,000 batches.
            #expect(wakeups * 2 < batches, "summary: \(summary)")
        }

        @Test func anIdleMonitorDoesNotWakeEveryInterval() throws {
            let namespace = try TestNamespace("coalidle")
            defer { namespace.close() }
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("rules install")
            let monitor = try RunningMonitor(["--format", "none", "--netns", namespace.name, "--no-rules"])
            try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9", "--count", "2000", "--rate", "20000"])
            usleep(1_500_000)
            let summary = monitor.stop()
            // 0.1 s of traffic, then 1.4 s idle: the housekeeping timeout (every 0.5 s) wakes it
            // a few times, a pause every 2 ms would have woken it ~700 times.
            let wakeups = Int(summary["wakeups"] ?? "") ?? 0
            #expect(wakeups > 0 && wakeups < 150, "summary: \(summary)")
        }

        @Test func zeroWakesForEveryBatch() throws {
            let summary = try run(coalesceArguments: ["--coalesce-us", "0"])
            let batches = Int(summary["batches"] ?? "") ?? 0
            let wakeups = Int(summary["wakeups"] ?? "") ?? 0
            #expect(batches >= 1_000, "summary: \(summary)")
            #expect(wakeups >= batches, "summary: \(summary)")
        }

        @Test func anIntervalAboveTheLimitIsRefused() throws {
            let result = try Harness.run(Harness.nfowner, ["monitor", "--coalesce-us", "100001"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("--coalesce-us must be 0 to 100000"))
        }

        /// Monitors (`--format none`) while 30,000 datagrams go out; the summary, after checking
        /// that every one of them arrived and none was lost.
        private func run(coalesceArguments: [String]) throws -> [String: String] {
            let namespace = try TestNamespace("coal")
            defer { namespace.close() }
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("rules install")
            let monitor = try RunningMonitor(["--format", "none", "--netns", namespace.name, "--no-rules"]
                                             + coalesceArguments)
            let sent = try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9", "--count", "30000",
                                              "--rate", "30000"])
            #expect(sent["sent"] == "30000")
            usleep(400_000)  // the last partial batch waits for the 0.1 s flush timeout
            let summary = monitor.stop()
            // Each datagram is logged, and so is the ICMP port unreachable the kernel answers it
            // with (ownerless): only the datagrams carry the sender's uid.
            #expect(summary["with_owner"] == "30000", "summary: \(summary)")
            #expect(summary["lost"] == "0")
            #expect(summary["enobufs"] == "0")
            #expect(monitor.process.terminationStatus == 0)
            return summary
        }
    }
}
