/// Decides when the receive loop, finding the socket empty, sleeps on before blocking in recv(2).
///
/// Why: waking a sleeping thread is the largest part of an NFLOG consumer's CPU. Sampled with
/// perf on this 2-vCPU VM, the minimal C consumer spent 58% of its time switching back in after
/// each batch it slept for (one wakeup per 64-message batch). A loop that wakes at most once
/// per interval and then reads every batch queued meanwhile pays that once for several batches:
/// the same C consumer pacing itself to 1 ms spent 172 instead of 333 ns per message.
///
/// When to pause: only under load, i.e. when the last wakeup read something and either was
/// itself the end of a pause or came less than an interval after the wakeup before it. Batches
/// that arrive less often than once per interval therefore wake the loop once each, in recv, as
/// without coalescing (a pause after each would double the wakeups), and an idle loop blocks.
///
/// The price is delay: under load a packet reaches the monitor up to one interval later (the
/// kernel already holds a partial batch up to the flush timeout, 100 ms by default). What arrives
/// during a pause waits in the socket buffer, so the interval is capped at 1 µs per KiB of it
/// (8 MiB: 8 ms): at the 8-rule benchmark load, ~2M messages/s take ~13 ms to fill 8 MiB.
struct WakeCoalescer {
    /// Nanoseconds between wakeups under load; 0: never pause.
    let interval: UInt64
    /// Monotonic times of the last wakeup and of the one before it, 0 before there was one.
    private var lastWake: UInt64 = 0
    private var previousWake: UInt64 = 0
    /// Whether the last wakeup ended a pause (rather than a blocking recv).
    private var lastWakeEndedPause = false
    /// Whether anything was read since the last wakeup.
    private var readSinceWake = false
    /// Intervals below this are not worth a sleep of their own: coalescing is then off.
    static let smallestInterval: UInt64 = 50_000

    init(intervalMicroseconds: UInt32, receiveBufferBytes: Int = .max) {
        let cap = UInt64(max(0, receiveBufferBytes / 1024))
        let nanoseconds = min(UInt64(intervalMicroseconds), cap) * 1_000
        interval = nanoseconds < Self.smallestInterval ? 0 : nanoseconds
    }

    var isEnabled: Bool { interval != 0 }

    /// How long to sleep, at monotonic time `now`, before reading again: under load, what is left
    /// of the interval since the last wakeup; otherwise 0 (block in recv now).
    func remainingPause(at now: UInt64) -> UInt64 {
        guard interval != 0, readSinceWake, now >= lastWake else { return 0 }
        let loaded = lastWakeEndedPause
            || (previousWake != 0 && lastWake >= previousWake && lastWake - previousWake < interval)
        guard loaded else { return 0 }
        let since = now - lastWake
        return since < interval ? interval - since : 0
    }

    /// The thread woke at `now`, from a pause or from a blocking recv.
    mutating func woke(at now: UInt64, endingPause: Bool) {
        previousWake = lastWake
        lastWake = now
        lastWakeEndedPause = endingPause
        readSinceWake = false
    }

    /// A datagram (or an overrun report) was read since the last wakeup.
    mutating func recordRead() { readSinceWake = true }
}
