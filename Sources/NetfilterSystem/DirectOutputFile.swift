import CNetfilter
import Glibc

/// A file written around the page cache (O_DIRECT): the disk reads the bytes straight from the
/// caller's aligned buffers. A capture writes hundreds of megabytes a second; through the page
/// cache each of its bytes is copied once more by the kernel into a page the file has just taken
/// (the larger part of a capture's CPU, bench/nflog.sh), and evicts what other programs cached.
///
/// Direct writes need the buffer's address, the file offset and the length aligned to the
/// device's block (`alignment` covers every block size in use). The last, partial piece of a
/// file goes through the page cache instead (`writeUnaligned`), so the file ends where its data
/// ends.
public final class DirectOutputFile: @unchecked Sendable {
    /// Address, offset and length alignment of direct writes.
    public static let alignment = 4096
    public let path: String
    private var descriptor: Int32
    private var direct = true

    /// Creates or truncates `path` for direct writes; nil when its file system refuses O_DIRECT
    /// (EINVAL: tmpfs before Linux 6.6, some network and FUSE file systems), so the caller can
    /// write through the page cache instead.
    public init?(path: String) throws(SystemError) {
        self.path = path
        let fd = Glibc.open(path, O_CREAT | O_TRUNC | O_WRONLY | O_CLOEXEC | nfowner_o_direct(), 0o644)
        if fd < 0 {
            if Errno.current == EINVAL { return nil }
            throw SystemError(code: Errno.current, operation: "open \(path)")
        }
        descriptor = fd
    }

    deinit { close() }

    /// Whether writes still bypass the page cache (a file system may accept O_DIRECT at open
    /// and refuse it at the first write; `write` then goes on through the page cache).
    public var isDirect: Bool { direct }

    /// Writes `count` bytes from `bytes` at `offset`, all three aligned to `alignment` (not
    /// checked beyond what the kernel checks: misaligned direct writes fail with EINVAL, and
    /// then this falls back to the page cache for the rest of the file).
    public func write(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws(SystemError) {
        do {
            try writeFully(bytes, count: count, at: offset)
        } catch where error.code == EINVAL && direct {
            try leaveDirectMode()
            try writeFully(bytes, count: count, at: offset)
        }
    }

    /// Writes bytes of any length at any offset through the page cache (a file's last piece).
    public func writeUnaligned(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws(SystemError) {
        if direct { try leaveDirectMode() }
        try writeFully(bytes, count: count, at: offset)
    }

    /// Closes the file (idempotent).
    public func close() {
        guard descriptor >= 0 else { return }
        _ = Glibc.close(descriptor)
        descriptor = -1
    }

    private func leaveDirectMode() throws(SystemError) {
        let flags = fcntl(descriptor, F_GETFL)
        guard flags >= 0, fcntl(descriptor, F_SETFL, flags & ~nfowner_o_direct()) == 0 else {
            throw SystemError(code: Errno.current, operation: "switch \(path) to buffered writes")
        }
        direct = false
    }

    private func writeFully(_ bytes: UnsafeRawPointer, count: Int, at offset: Int) throws(SystemError) {
        var done = 0
        while done < count {
            let written = pwrite(descriptor, bytes + done, count - done, off_t(offset + done))
            if written < 0 {
                if Errno.current == EINTR { continue }
                throw SystemError(code: Errno.current, operation: "write \(path)")
            }
            if written == 0 {
                throw SystemError(code: EIO, operation: "write \(path) (no progress)")
            }
            done += written
        }
    }
}

/// Memory aligned for direct I/O, of a fixed size, owned by one thread at a time (handed
/// between a producer and a writer thread, never shared while written).
///
/// A buffer of a megabyte or more is made of whole 2 MiB huge pages where the kernel has them
/// (transparent huge pages, `madvise` or `always`): a direct write pins its buffer's pages for
/// the device, and pinning one huge page instead of 4 KiB pages one by one was a quarter of the
/// writer thread's time (perf, `gup_fast_fallback`).
public final class AlignedBuffer: @unchecked Sendable {
    public let base: UnsafeMutableRawPointer
    public let capacity: Int

    static let hugePage = 2 << 20

    /// At least `capacity` bytes at an address aligned to `alignment` (a power of two); buffers
    /// of a megabyte or more are rounded up to whole huge pages.
    public init(capacity: Int, alignment: Int = DirectOutputFile.alignment) throws(SystemError) {
        let huge = capacity >= 1 << 20
        let size = huge ? (capacity + Self.hugePage - 1) / Self.hugePage * Self.hugePage : capacity
        var pointer: UnsafeMutableRawPointer?
        let result = posix_memalign(&pointer, huge ? max(alignment, Self.hugePage) : alignment, size)
        guard result == 0, let pointer else {
            throw SystemError(code: result == 0 ? ENOMEM : result, operation: "allocate \(size) bytes of aligned memory")
        }
        // Advice only: without transparent huge pages the buffer is made of small pages.
        if huge { _ = madvise(pointer, size, MADV_HUGEPAGE) }
        base = pointer
        self.capacity = size
    }

    deinit { free(base) }

    public var bytes: UnsafeMutableRawBufferPointer { UnsafeMutableRawBufferPointer(start: base, count: capacity) }
}
