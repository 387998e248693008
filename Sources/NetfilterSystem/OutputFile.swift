import CNetfilter
import Glibc

/// A file opened for writing (created or truncated, mode 0644, close-on-exec), for sinks that
/// write files: `descriptor` is where their bytes go. Renaming is here too (capture rotation).
public final class OutputFile: @unchecked Sendable {
    public let path: String
    public private(set) var descriptor: OutputDescriptor?

    /// Creates or truncates `path`; with `append`, creates it or writes after what is there
    /// (an audit log kept across runs).
    public init(path: String, append: Bool = false) throws(SystemError) {
        self.path = path
        let fd = Glibc.open(path, O_CREAT | (append ? O_APPEND : O_TRUNC) | O_WRONLY | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw SystemError(code: Errno.current, operation: "open \(path)") }
        descriptor = OutputDescriptor(descriptor: fd)
    }

    /// Closes the file (idempotent).
    public func close() {
        guard let descriptor else { return }
        self.descriptor = nil
        _ = Glibc.close(descriptor.descriptor)
    }

    deinit { close() }

    /// rename(2): replaces `to` when it exists.
    public static func rename(_ from: String, to: String) throws(SystemError) {
        guard Glibc.rename(from, to) == 0 else {
            throw SystemError(code: Errno.current, operation: "rename \(from) to \(to)")
        }
    }

    /// unlink(2); a missing file is not an error.
    public static func remove(_ path: String) throws(SystemError) {
        guard Glibc.unlink(path) == 0 || Errno.current == ENOENT else {
            throw SystemError(code: Errno.current, operation: "remove \(path)")
        }
    }
}

/// Reads a whole file (a capture to print): up to `limit` bytes.
public enum InputFile {
    public static func readAll(path: String, limit: Int = 1 << 34) throws(SystemError) -> [UInt8] {
        let fd = path == "-" ? 0 : Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw SystemError(code: Errno.current, operation: "open \(path)") }
        defer { if fd != 0 { _ = Glibc.close(fd) } }
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while bytes.count < limit {
            let count = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if Errno.current == EINTR { continue }
                throw SystemError(code: Errno.current, operation: "read \(path)")
            }
            if count == 0 { break }
            bytes.append(contentsOf: chunk[0..<count])
        }
        return bytes
    }
}
