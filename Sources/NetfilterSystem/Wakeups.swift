import CNetfilter
import Glibc

/// An eventfd used to wake a thread blocked in `poll` (shutdown requests).
public final class WakeupEvent: @unchecked Sendable {
    public let descriptor: Int32

    public init() throws(SystemError) {
        let fd = eventfd(0, Int32(EFD_CLOEXEC | EFD_NONBLOCK))
        guard fd >= 0 else { throw SystemError(code: Errno.current, operation: "create eventfd") }
        descriptor = fd
    }

    /// Wakes every poller of this event. Safe from any thread.
    public func signal() {
        var one: UInt64 = 1
        _ = write(descriptor, &one, 8)
    }

    public func close() { Glibc.close(descriptor) }
}

/// Termination signals (SIGINT, SIGTERM) and SIGHUP delivered through a file descriptor, so one
/// thread sees them in the same `poll` as its other work and acts in one place: stop on the
/// first two, reload on SIGHUP.
public final class TerminationSignals: @unchecked Sendable {
    public let descriptor: Int32
    /// SIGHUP's number: "reload", not "stop", wherever a reload hook exists.
    public static let hangup = SIGHUP
    public static let interrupt = SIGINT
    public static let terminate = SIGTERM

    /// Blocks SIGINT, SIGTERM and SIGHUP for the calling thread — call it on the main thread
    /// before starting other threads, so they inherit the mask — and ignores SIGPIPE so a closed
    /// stdout shows up as EPIPE on write instead of killing the process.
    public init() throws(SystemError) {
        var set = Self.signals
        try Self.blockForThisThread()
        signal(SIGPIPE, SIG_IGN)
        let fd = signalfd(-1, &set, Int32(SFD_CLOEXEC | SFD_NONBLOCK))
        guard fd >= 0 else { throw SystemError(code: Errno.current, operation: "create signalfd") }
        descriptor = fd
    }

    private static var signals: sigset_t {
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGINT)
        sigaddset(&set, SIGTERM)
        sigaddset(&set, SIGHUP)
        return set
    }

    /// Blocks SIGINT, SIGTERM and SIGHUP for the calling thread and the threads it starts from
    /// now on, without reading them yet: for a program that starts threads before it creates
    /// its `TerminationSignals`.
    public static func blockForThisThread() throws(SystemError) {
        var set = signals
        guard pthread_sigmask(SIG_BLOCK, &set, nil) == 0 else {
            throw SystemError(code: Errno.current, operation: "block termination signals")
        }
    }

    /// The signal number waiting to be read, if any (consumes it).
    public func take() -> Int32? {
        var info = signalfd_siginfo()
        let size = MemoryLayout<signalfd_siginfo>.size
        let got = read(descriptor, &info, size)
        return got == size ? Int32(bitPattern: info.ssi_signo) : nil
    }

    public func close() { Glibc.close(descriptor) }
}

/// Waits until one of `descriptors` is readable. Returns the readable ones (empty on timeout).
/// `timeoutMilliseconds` < 0 waits forever.
public func waitReadable(_ descriptors: [Int32], timeoutMilliseconds: Int32) throws(SystemError) -> [Int32] {
    var set = PollSet(descriptors)
    guard try set.wait(timeoutMilliseconds: timeoutMilliseconds) else { return [] }
    return descriptors.filter { set.isReady($0) }
}

/// Waits until `descriptor` is readable or the monotonic clock reaches `deadline` (ns, see
/// `WallClock.monotonicNanoseconds`): true when it is readable, false at the deadline or when
/// poll(2) fails. For request/answer exchanges that give up after a while.
public func waitReadable(_ descriptor: Int32, until deadline: UInt64) -> Bool {
    let now = WallClock.monotonicNanoseconds()
    guard now < deadline else { return false }
    let milliseconds = Int32(clamping: (deadline - now) / 1_000_000 + 1)
    return (try? waitReadable([descriptor], timeoutMilliseconds: milliseconds))?.isEmpty == false
}

/// A fixed set of descriptors polled again and again without allocating (the receive loop
/// polls once per NFLOG batch).
public struct PollSet: ~Copyable {
    private let entries: UnsafeMutableBufferPointer<pollfd>

    public init(_ descriptors: [Int32]) {
        entries = .allocate(capacity: max(1, descriptors.count))
        for (index, descriptor) in descriptors.enumerated() {
            entries[index] = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
        }
        if descriptors.isEmpty { entries[0] = pollfd(fd: -1, events: 0, revents: 0) }
    }

    deinit { entries.deallocate() }

    /// Waits until a descriptor is readable (or hung up, or in error); `timeoutMilliseconds` < 0
    /// waits forever. Returns false on timeout.
    public mutating func wait(timeoutMilliseconds: Int32) throws(SystemError) -> Bool {
        for index in entries.indices { entries[index].revents = 0 }
        let ready = try retryingInterrupts("poll") {
            poll(entries.baseAddress, nfds_t(entries.count), timeoutMilliseconds)
        }
        return ready > 0
    }

    /// Waits up to `nanoseconds` (nil: forever) until a descriptor is readable. Unlike `wait`,
    /// a signal ends the wait (the receive loop is stopped that way): returns false on timeout
    /// and on interruption alike.
    public mutating func waitInterruptibly(nanoseconds: UInt64?) throws(SystemError) -> Bool {
        for index in entries.indices { entries[index].revents = 0 }
        var timeout = timespec(tv_sec: Int((nanoseconds ?? 0) / 1_000_000_000),
                               tv_nsec: Int((nanoseconds ?? 0) % 1_000_000_000))
        let ready = nanoseconds == nil
            ? nfowner_poll_nanoseconds(entries.baseAddress, nfds_t(entries.count), nil)
            : nfowner_poll_nanoseconds(entries.baseAddress, nfds_t(entries.count), &timeout)
        if ready < 0 {
            if Errno.current == EINTR { return false }
            throw SystemError(code: Errno.current, operation: "ppoll")
        }
        return ready > 0
    }

    /// Whether `descriptor` was readable at the last `wait`.
    public func isReady(_ descriptor: Int32) -> Bool {
        entries.contains { $0.fd == descriptor && $0.revents & Int16(POLLIN | POLLERR | POLLHUP) != 0 }
    }
}
