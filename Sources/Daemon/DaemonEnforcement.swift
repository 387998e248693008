import NetfilterSystem
import Session
import Synchronization

/// Enforce mode inside the daemon (`[enforce] policy`): an `EnforceSession` on a thread of its
/// own, started before accounting and stopped after it. The daemon reads the signals: SIGHUP
/// re-reads the policy through `reload()`, SIGTERM ends both. If enforcement ends by itself (its
/// audit log failed, the queue went away), `onUnexpectedEnd` stops the daemon too: an
/// administrator who configured a policy must not be left with accounting alone.
final class DaemonEnforcement: @unchecked Sendable {
    private let session: EnforceSession
    private var thread: DedicatedThread?
    private struct State {
        var ready: EnforceSession.Ready?
        var failure: String?
        var ended = false
        var stopping = false
    }
    private let state = Mutex(State())
    private let started: WakeupEvent?

    /// Starts enforcement and waits until its queue is bound and its rules are installed; throws
    /// what kept it from starting.
    init(_ options: EnforceOptions, onUnexpectedEnd: @escaping @Sendable (String) -> Void) throws(DaemonError) {
        var options = options
        options.handlesSignals = false
        session = EnforceSession(options)
        started = try? WakeupEvent()
        guard let started else { throw DaemonError("cannot start enforcement: no eventfd") }
        do {
            thread = try DedicatedThread(name: "nfowner-enforce") { [self] in
                var failure: String?
                do {
                    try session.run(onReady: { ready in
                        state.withLock { $0.ready = ready }
                        started.signal()
                    })
                } catch {
                    failure = "\(error)"
                }
                let unexpected = state.withLock { state in
                    state.ended = true
                    state.failure = failure
                    return !state.stopping && state.ready != nil
                }
                started.signal()
                if unexpected { onUnexpectedEnd(failure ?? "enforcement stopped") }
            }
        } catch {
            throw DaemonError("cannot start enforcement: \(error)")
        }
        _ = try? waitReadable([started.descriptor], timeoutMilliseconds: -1)
        let failure = state.withLock { $0.ready == nil ? ($0.failure ?? "enforcement ended before it was ready") : nil }
        if let failure {
            thread?.join()
            throw DaemonError("cannot enforce the policy: \(failure)")
        }
    }

    /// The decisions so far (any thread).
    var counters: EnforceCounters { session.counters }

    /// SIGHUP: re-reads the policy file (a file with errors is refused, the policy in force kept).
    func reload() { session.reloadPolicy() }

    /// Ends enforcement (its rules go first) and waits for it.
    func stop() {
        let ready = state.withLock { state in
            state.stopping = true
            return state.ready
        }
        ready?.stop()
        thread?.join()
        thread = nil
    }
}
