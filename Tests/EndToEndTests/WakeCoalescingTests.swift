import Foundation
import TestSupport
import Testing

extension EndToEnd {
    /// Under load the receive loop wakes at most once per `--coalesce-us` and reads every batch
    /// queued meanwhile; with 0 it makes one blocking recv per batch. Either way nothing may be
    /// lost. The installed rules batch 64 packets (the shipped `queue_threshold`), so 60,000
    /// datagrams at 60,000/s and the kernel's 60,000 ICMP answers arrive as ≈1,900 batches in one
    /// second: one every ~0.5 ms, well under the 2 ms interval even if the sender runs slow.
    @Suite(.serialized, .enabled(if: Harness.isRoot, Harness.rootReason))
    struct WakeCoalescingTests {
        @Test func underLoadOneWakeupTakesSeveralBatchesAndNothingIsLost() throws {
            let coalesced = try run(coalesceArguments: [], count: 60_000, rate: 60_000)  // the default, 2 ms
            let everyBatch = try run(coalesceArguments: ["--coalesce-us", "0"], count: 60_000, rate: 60_000)
            #expect(coalesced.batches >= 1_500, "\(coalesced)")
            #expect(everyBatch.wakeups >= everyBatch.batches, "\(everyBatch)")
            // ≤ 500 pauses per second of load (plus a few idle waits before and after).
            #expect(coalesced.wakeups * 2 < everyBatch.wakeups, "\(coalesced) against \(everyBatch)")
        }

        @Test func afterTheLoadAnIdleMonitorStopsWaking() throws {
            // 0.1 s of traffic, then 1.4 s idle: only the 0.5 s housekeeping timeout wakes it then,
            // where a pause every 2 ms would have woken it ~700 times.
            let counts = try run(coalesceArguments: [], count: 2_000, rate: 20_000, idleAfter: 1_400_000)
            #expect(counts.wakeups < counts.batches + 50, "\(counts)")
        }

        @Test func anIntervalAboveTheLimitIsRefused() throws {
            let result = try Harness.run(Harness.nfowner, ["monitor", "--coalesce-us", "100001"])
            #expect(result.status != 0)
            #expect(result.stderr.contains("--coalesce-us must be 0 to 100000"))
        }

        struct Counts: CustomStringConvertible {
            var batches: Int
            var wakeups: Int
            var description: String { "batches=\(batches) wakeups=\(wakeups)" }
        }

        /// Monitors (`--format none`) while `count` datagrams go out at `rate`; its batches and
        /// wakeups, after checking that every datagram arrived and none was lost.
        private func run(coalesceArguments: [String], count: Int, rate: Int,
                         idleAfter: UInt32 = 400_000) throws -> Counts {
            let namespace = try TestNamespace("coal")
            defer { namespace.close() }
            try Harness.run(Harness.nfowner, ["rules", "install", "--netns", namespace.name]).check("rules install")
            let monitor = try RunningMonitor(["--format", "none", "--netns", namespace.name, "--no-rules"]
                                             + coalesceArguments)
            let sent = try namespace.traffic(["udp", "--to", "127.0.0.1", "--port", "9", "--count", String(count),
                                              "--rate", String(rate)])
            #expect(sent["sent"] == String(count))
            usleep(idleAfter)  // at least the 0.1 s flush timeout of the last partial batch
            let summary = monitor.stop()
            // Each datagram is logged, and so is the ICMP port unreachable the kernel answers it
            // with (ownerless): only the datagrams carry the sender's uid.
            #expect(summary["with_owner"] == String(count), "summary: \(summary)")
            #expect(summary["lost"] == "0")
            #expect(summary["enobufs"] == "0")
            #expect(monitor.process.terminationStatus == 0)
            return Counts(batches: Int(summary["batches"] ?? "") ?? 0, wakeups: Int(summary["wakeups"] ?? "") ?? 0)
        }
    }
}
