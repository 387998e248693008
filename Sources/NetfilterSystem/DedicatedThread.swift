import CNetfilter
import Glibc

/// A plain POSIX thread for blocking work (the receive loop), outside Swift's cooperative pool,
/// which must never block in poll/recv.
public final class DedicatedThread: @unchecked Sendable {
    private var handle = pthread_t()
    private final class Box { let body: () -> Void; init(_ body: @escaping () -> Void) { self.body = body } }

    /// Starts `body` on a new thread. The thread inherits the caller's signal mask and network namespace.
    public init(name: String, _ body: @escaping () -> Void) throws(SystemError) {
        let box = Unmanaged.passRetained(Box(body)).toOpaque()
        let result = pthread_create(&handle, nil, { raw in
            guard let raw else { return nil }
            let box = Unmanaged<Box>.fromOpaque(raw).takeRetainedValue()
            box.body()
            return nil
        }, box)
        guard result == 0 else {
            Unmanaged<Box>.fromOpaque(box).release()
            throw SystemError(code: result, operation: "start thread \(name)")
        }
        nfowner_name_thread(handle, String(name.prefix(15)))
    }

    /// Sets the calling thread's niceness (-20…19; lower runs sooner). Below 0 needs
    /// CAP_SYS_NICE (root has it); throws what setpriority(2) reports.
    public static func setCurrentNiceness(_ niceness: Int32) throws(SystemError) {
        guard nfowner_set_thread_niceness(niceness) == 0 else {
            throw SystemError(code: errno, operation: "set thread niceness \(niceness)")
        }
    }

    /// Waits for the thread to finish.
    public func join() {
        pthread_join(handle, nil)
    }
}
