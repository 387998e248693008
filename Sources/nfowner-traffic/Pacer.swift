// Rate pacing for `udp --rate`: an absolute schedule (datagram i is due at origin + i/rate), bursts to catch
// up after a late step, and a waiting strategy that can hit a 2 µs interval. Sleeping alone cannot: each
// clock_nanosleep costs a wake-up (≈ 30 µs on the VM), so a sleep-per-datagram sender tops out near 30k/s.
// The decision (`step`) is a pure function of the clock reading, so it is tested without timing; `wait`
// is the only part that touches the clock.

/// Paces events at a fixed rate. Call `step(next:now:)` with the number of events already released and
/// the current CLOCK_MONOTONIC reading; it says how many are due now, or how to wait for the next one.
struct Pacer {
    /// What to do next.
    enum Step: Equatable {
        /// Send this many (≥ 1) now: every event whose due time has passed, at most `maximumBurst`.
        case send(Int)
        /// The next event is far: clock_nanosleep until this time (ns), shortly before it is due.
        case sleep(until: UInt64)
        /// The next event is near: spin on the clock until this time (ns).
        case spin(until: UInt64)
    }

    /// How far (ns) the schedule may fall behind the clock before it slips: after a stall, everything due
    /// within this window is sent as one catch-up burst; older slots are not caught up but pushed later
    /// (the schedule's origin moves, counted in `slipped`). 50 ms keeps the scheduler delays measured on
    /// the shared 2-core VM (up to ≈ 90 ms under parallel builds, a few ms when quiet) mostly invisible in
    /// the achieved rate, while a burst stays at most 50 ms' worth of events + 1 (10,001 at 200k/s).
    static let catchUpWindow: UInt64 = 50_000_000

    /// A wait longer than this (ns) sleeps, a shorter one spins: below ≈ 200 µs the wake-up latency of
    /// clock_nanosleep (tens of µs, more on a busy host) is a large part of the wait.
    static let spinThreshold: UInt64 = 200_000

    /// How long (ns) before the due time a sleep ends; the rest is spun, so wake-up latency up to this
    /// much costs no accuracy.
    static let wakeMargin: UInt64 = 100_000

    /// Nanoseconds between events.
    let interval: Double
    /// Due time (CLOCK_MONOTONIC ns) of event 0; moves later when the schedule slips.
    private(set) var origin: UInt64
    /// Total nanoseconds the schedule slipped because the sender fell more than `catchUpWindow` behind.
    private(set) var slipped: UInt64 = 0

    /// Largest rate accepted (events/s): one per nanosecond, the clock's resolution.
    static let maximumRate = 1e9

    /// `rate` in events per second (finite, > 0 and ≤ `maximumRate`, validated by the command); `start` is
    /// event 0's due time.
    init(rate: Double, start: UInt64) {
        interval = 1e9 / rate
        origin = start
    }

    /// The largest burst `step` returns: the events due within `catchUpWindow`, plus the one at its start.
    var maximumBurst: Int { Int(min(Double(Self.catchUpWindow) / interval, Double(Int.max / 2))) + 1 }

    /// Due time of event `index` (ns).
    func due(_ index: Int) -> UInt64 {
        origin &+ UInt64(min(Double(index) * interval, Double(UInt64.max / 2)))
    }

    /// How many events are due strictly before `deadline` (ns): the events a run ending then sends.
    func dueBefore(_ deadline: UInt64) -> Int {
        guard deadline > origin else { return 0 }
        var count = Int(min(Double(deadline - origin) / interval, Double(Int.max / 2))) + 1
        while count > 0 && due(count - 1) >= deadline { count -= 1 }
        while count < Int.max / 2 && due(count) < deadline { count += 1 }
        return count
    }

    /// The next step, given that `released` events went out already and the clock reads `now`.
    /// Slips the schedule first when event `released` is more than `catchUpWindow` late.
    mutating func step(next released: Int, now: UInt64) -> Step {
        let next = due(released)
        if now < next {
            let wait = next - now
            return wait > Self.spinThreshold ? .sleep(until: next - Self.wakeMargin) : .spin(until: next)
        }
        if now - next > Self.catchUpWindow {
            let slip = now - next - Self.catchUpWindow
            origin += slip
            slipped += slip
        }
        // Events released…released+k-1 are due when due(released+k-1) ≤ now. Computed from the elapsed time,
        // then corrected by one either way for floating-point rounding, so it agrees with `due` exactly.
        var count = Int(min(Double(now - due(released)) / interval, Double(maximumBurst))) + 1
        while count > 1 && due(released + count - 1) > now { count -= 1 }
        while count < maximumBurst && due(released + count) <= now { count += 1 }
        return .send(min(count, maximumBurst))
    }

    /// Carries out a `.sleep` or `.spin` step; `.send` returns at once.
    static func wait(_ step: Step) {
        switch step {
        case .send: return
        case .sleep(let deadline): Monotonic.sleep(until: deadline)
        case .spin(let deadline): while Monotonic.now() < deadline {}
        }
    }
}
