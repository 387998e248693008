import NetfilterSystem
import Synchronization

/// The latest moment a socket's receive queue was seen empty (monotonic ns; 0: never).
///
/// Why it matters: a datagram read after that moment was queued after it, since the queue held
/// nothing then and datagrams are read in order. On a socket the kernel writes to at send time —
/// the new-flow NFLOG group (queue threshold 1) and NFQUEUE — the packet it reports was
/// therefore sent after that moment, and a process that had exited before it cannot have sent
/// it. That is an order the kernel guarantees, not a guess about how late the reader is (a
/// 1 ms window, tried before, named wrongly when the reader ran late).
///
/// Seen empty by the receive loop (a non-blocking receive that found nothing) and, from any
/// thread, by `look()`: the process-event thread looks right after it learns of exits, so the
/// next one-shot program's packet is known to come after them.
public final class EmptyQueueMark: Sendable {
    public let socket: NetlinkSocket
    private let seenEmpty = Atomic<UInt64>(0)
    /// An overrun a look consumed (the kernel reports ENOBUFS once, to whoever asks first).
    private let overrunSeen = Atomic<Bool>(false)

    public init(socket: NetlinkSocket) {
        self.socket = socket
    }

    /// The latest moment the queue was seen empty. Read it BEFORE receiving: read after, it may
    /// be the moment right after the datagram was taken.
    public var latest: UInt64 { seenEmpty.load(ordering: .acquiring) }

    /// The queue was empty at some moment after `time` (a clock read before the receive that
    /// found nothing).
    public func recordEmpty(since time: UInt64) {
        var current = seenEmpty.load(ordering: .relaxed)
        while current < time {
            let (exchanged, original) = seenEmpty.compareExchange(expected: current, desired: time,
                                                                  ordering: .acquiringAndReleasing)
            if exchanged { return }
            current = original
        }
    }

    /// Looks at the queue without taking anything (from any thread); records the moment before
    /// the look when it was empty.
    public func look() {
        let before = WallClock.monotonicNanoseconds()
        switch socket.peekQueue() {
        case .empty: recordEmpty(since: before)
        case .overrun: overrunSeen.store(true, ordering: .releasing)
        case .notEmpty, .unknown: break
        }
    }

    /// True once after a look consumed the kernel's overrun report: the receive loop counts it.
    public func takeOverrun() -> Bool {
        guard overrunSeen.load(ordering: .relaxed) else { return false }
        return overrunSeen.exchange(false, ordering: .acquiringAndReleasing)
    }
}
