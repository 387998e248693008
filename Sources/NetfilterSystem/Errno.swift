import CNetfilter
import Glibc

/// A failed system call: the errno value and the call that produced it.
public struct SystemError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The errno value (positive).
    public var code: Int32
    /// What was being attempted, e.g. "bind NETLINK_NETFILTER socket".
    public var operation: String

    public init(code: Int32, operation: String) {
        self.code = code
        self.operation = operation
    }

    public var description: String { "\(operation): \(Errno.describe(code))" }
}

/// errno names and texts, read once and right after the failing call.
public enum Errno {
    public static let interrupted = EINTR
    public static let wouldBlock = EAGAIN
    public static let noBufferSpace = ENOBUFS
    public static let permissionDenied = EPERM
    public static let accessDenied = EACCES
    public static let notFound = ENOENT
    public static let notSupported = EOPNOTSUPP
    public static let protocolNotSupported = EPROTONOSUPPORT
    public static let brokenPipe = EPIPE
    public static let busy = EBUSY

    /// The calling thread's errno. Read it before any other call can overwrite it.
    public static var current: Int32 { nfowner_errno() }

    /// The C library's text for an errno value, e.g. "Operation not permitted".
    public static func describe(_ code: Int32) -> String {
        guard let text = strerror(code) else { return "errno \(code)" }
        return String(cString: text)
    }
}

/// Runs a system call, retrying on EINTR in this one place, and throws the errno otherwise.
@inline(__always)
func retryingInterrupts<T: BinaryInteger>(_ operation: @autoclosure () -> String,
                                          _ call: () -> T) throws(SystemError) -> T {
    while true {
        let result = call()
        if result >= 0 { return result }
        let code = Errno.current
        if code == EINTR { continue }
        throw SystemError(code: code, operation: operation())
    }
}
