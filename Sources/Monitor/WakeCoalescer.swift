/// Decides when the receive loop, finding the socket empty, sleeps on before blocking in recv(2).
///
/// Why: waking a sleeping thread is the largest part of an NFLOG consumer's CPU. Sampled with
/// perf on this 2-vCPU VM, the minimal C consumer spent 58% of its time switching back in after
/// each batch it slept for (one wakeup per 64-message batch). A loop that wakes at most once
/// per interval and then reads every batch queued meanwhile pays that once for several batches:
/// the same C consumer pacing itself to 1 ms spent 172 instead of 333 ns per message.
///
/// The price is delay: under load a packet reaches the monitor up to one interval later (the
/// kernel already holds a partial batch up to the flush timeout, 100 ms by default). When
/// batches arrive less often than once per interval, nothing changes: the loop blocks in recv
/// and wakes for each one as it comes. What arrives during a pause waits in the socket buffer,
/// so the interval is capped at 1 µs per KiB of it (8 MiB: 8 ms): at the 8-rule benchmark load,
/// 2.2M messages/s of ≈250 bytes each fill a KiB in under 2 µs.
struct WakeCoalescer {
    /// Nanoseconds between wakeups under load; 0: never pause.
    private(set) var interval: UInt64
    /// Monotonic time of the last wakeup, 0 before the first.
    private var lastWake: UInt64 = 0
    /// Whether anything was read since that wakeup. A pause pays only while batches keep coming:
    /// after one that found nothing (or a receive timeout), the loop blocks in recv again, so an
    /// idle monitor sleeps until the next batch instead of waking every interval.
    private var readSinceWake = false
    /// Intervals below this are not worth a sleep of their own.
    static let smallestInterval: UInt64 = 50_000

    init(intervalMicroseconds: UInt32, receiveBufferBytes: Int = .max) {
        let cap = UInt64(max(0, receiveBufferBytes / 1024))
        let nanoseconds = min(UInt64(intervalMicroseconds), cap) * 1_000
        interval = nanoseconds < Self.smallestInterval ? 0 : nanoseconds
    }

    var isEnabled: Bool { interval != 0 }

    /// How long to sleep, at monotonic time `now`, before reading again: what is left of the
    /// interval since the last wakeup, if that wakeup read anything (0: block in recv now).
    func pause(now: UInt64) -> UInt64 {
        guard interval != 0, readSinceWake, now >= lastWake else { return 0 }
        let since = now - lastWake
        return since < interval ? interval - since : 0
    }

    /// The thread woke (from recv or from a pause) at `now`.
    mutating func woke(at now: UInt64) {
        lastWake = now
        readSinceWake = false
    }

    /// A datagram was read since the last wakeup.
    mutating func read() { readSinceWake = true }

    /// The socket buffer overflowed: batches came faster than it holds for one interval, so
    /// the interval halves (and below `smallestInterval` pausing stops).
    mutating func overran() {
        interval /= 2
        if interval < Self.smallestInterval { interval = 0 }
    }
}
