import Glibc

/// Wakes one thread out of a blocking system call — the receive loop's recv(2) or its coalescing
/// pause (nanosleep) — so it can notice a stop request: the thread is sent SIGURG, whose handler does nothing and is installed
/// without SA_RESTART, so the call fails with EINTR and the thread looks at why.
///
/// Why a signal: a blocking recv(2) is one system call per NFLOG batch where poll(2) then recv
/// are two (measured: about 7% of a minimal consumer's CPU per message). Why SIGURG: its default
/// action is to ignore it, so one that arrives from elsewhere, or before the handler exists,
/// harms nothing (the Go runtime preempts goroutines with it for the same reason).
public struct ThreadInterrupter: Sendable {
    private let thread: pthread_t

    /// Interrupts the calling thread (call it on the thread that will block). Unblocks SIGURG
    /// for that thread: the signal mask is inherited across exec, and a launcher that blocks
    /// SIGURG would otherwise leave every interrupt pending and the thread in its recv (programs
    /// started from a libdispatch worker thread, e.g. through Foundation's `Process`, inherit a
    /// mask that blocks nearly every signal).
    public init() {
        Self.installHandler()
        var set = sigset_t()
        sigemptyset(&set)
        sigaddset(&set, SIGURG)
        pthread_sigmask(SIG_UNBLOCK, &set, nil)
        thread = pthread_self()
    }

    /// Sends the signal. A call made while the thread is not blocked is lost: callers repeat it
    /// until the thread has answered.
    public func interrupt() {
        pthread_kill(thread, SIGURG)
    }

    private static func installHandler() {
        var action = sigaction()
        action.__sigaction_handler.sa_handler = { _ in }
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0  // no SA_RESTART: the interrupted call returns EINTR
        sigaction(SIGURG, &action, nil)
    }
}

extension ThreadInterrupter {
    /// Sleeps the calling thread for `nanoseconds`, or less when a signal interrupts it (as
    /// `interrupt()` does, so a stop request ends the sleep too).
    public static func sleep(nanoseconds: UInt64) {
        var request = timespec(tv_sec: Int(nanoseconds / 1_000_000_000),
                               tv_nsec: Int(nanoseconds % 1_000_000_000))
        nanosleep(&request, nil)
    }
}
