import CNetfilter
import Glibc

/// Writes whole buffers to a file descriptor (stdout, stderr, a file), retrying short writes.
public struct OutputDescriptor: Sendable {
    public let descriptor: Int32

    public static let standardOutput = OutputDescriptor(descriptor: 1)
    public static let standardError = OutputDescriptor(descriptor: 2)

    public init(descriptor: Int32) { self.descriptor = descriptor }

    /// Writes all of `bytes`. Throws EPIPE when the reader went away (e.g. `| head`).
    public func write(_ bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let written = Glibc.write(descriptor, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if written < 0 {
                let code = Errno.current
                if code == EINTR { continue }
                throw SystemError(code: code, operation: "write output")
            }
            offset += written
        }
    }

    public func write(_ bytes: [UInt8]) throws(SystemError) {
        let outcome: Result<Void, SystemError> = bytes.withUnsafeBytes { raw in
            Result { () throws(SystemError) in try write(raw) }
        }
        try outcome.get()
    }

    public func write(_ text: String) throws(SystemError) {
        try write(Array(text.utf8))
    }
}
