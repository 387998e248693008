import CNetfilter
import Glibc

/// Zero-filled memory straight from the kernel, for large tables that grow and shrink.
///
/// A private anonymous mapping reads as zeros and costs no resident memory until a page is
/// first written, so a table whose all-zero entry means "empty" needs no initialization pass
/// (which would make every page resident at once). `release(_:)` gives written pages back while
/// the mapping stays: they read as zeros again and leave the process's RSS, so a table can be
/// emptied page by page as its entries move elsewhere.
///
/// ```
/// baseAddress                                               baseAddress + byteCount
/// |<- page ->|<- page ->|<- page ->|<- page ->|<- page ->|
/// | resident | resident |  zero    |  zero    | resident |   zero: never written, or released
///        release(100 ..< 3 * page + 7) gives back pages 1 and 2 only (whole pages inside)
/// ```
///
/// Owned by one thread at a time; the memory is unmapped when the object goes away, so pointers
/// into it must not outlive it.
public final class AnonymousMemory {
    /// Where the bytes come from.
    public enum Backing: Sendable, Equatable {
        /// An anonymous mapping: pages become resident when written and leave on `release`.
        case mapped
        /// The kernel refused the mapping (the error says why) and `zeroed(byteCount:)` fell
        /// back to heap memory, zeroed up front: resident at once, and `release` zeroes pages
        /// instead of returning them.
        case heap(SystemError)
    }

    /// The first byte; page-aligned.
    public let baseAddress: UnsafeMutableRawPointer
    /// The bytes usable from `baseAddress`: what was asked for, rounded up to whole pages.
    public let byteCount: Int
    public let backing: Backing
    /// Bytes given back by `release(_:)` and `releaseAll()` so far (whole pages), counted again
    /// when a page is released again. What tests check instead of the process's RSS.
    public private(set) var releasedBytes = 0

    /// The kernel's page size (sysconf _SC_PAGESIZE), in bytes.
    public static let pageSize: Int = {
        let size = sysconf(Int32(_SC_PAGESIZE))
        return size > 0 ? size : 4_096
    }()

    /// Maps `byteCount` bytes (at least one page; rounded up to whole pages), all zero.
    /// Throws when the kernel refuses (ENOMEM: address space or overcommit limits).
    public init(byteCount: Int) throws(SystemError) {
        guard let size = Self.roundedToPages(byteCount) else {
            throw SystemError(code: ENOMEM, operation: "map \(byteCount) bytes of anonymous memory")
        }
        // mmap(NULL, size, PROT_READ|PROT_WRITE, MAP_PRIVATE|MAP_ANONYMOUS, -1, 0)
        let address = mmap(nil, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0)
        // MAP_FAILED is ((void *)-1), a macro Swift does not import.
        guard let address, address != UnsafeMutableRawPointer(bitPattern: -1) else {
            throw SystemError(code: Errno.current, operation: "map \(size) bytes of anonymous memory")
        }
        baseAddress = address
        self.byteCount = size
        backing = .mapped
    }

    private init(heapByteCount size: Int, because error: SystemError) {
        baseAddress = UnsafeMutableRawPointer.allocate(byteCount: size, alignment: Self.pageSize)
        baseAddress.initializeMemory(as: UInt8.self, repeating: 0, count: size)
        byteCount = size
        backing = .heap(error)
    }

    /// `byteCount` zero bytes that never fail to appear: a mapping, or when the kernel refuses
    /// one, heap memory zeroed up front (see `Backing.heap`; a heap allocation that fails too
    /// traps, like any Swift allocation). For callers that cannot fail, such as a table that
    /// must grow before it is full.
    public static func zeroed(byteCount: Int) -> AnonymousMemory {
        do {
            return try AnonymousMemory(byteCount: byteCount)
        } catch {
            return AnonymousMemory(heapByteCount: roundedToPages(byteCount) ?? pageSize, because: error)
        }
    }

    deinit {
        switch backing {
        case .mapped: munmap(baseAddress, byteCount)
        case .heap: baseAddress.deallocate()
        }
    }

    /// Gives back the whole pages inside `range` (byte offsets from `baseAddress`; clamped to
    /// the memory): afterwards they read as zeros. Partial pages at either end are left as they
    /// are. Returns the bytes released (a multiple of the page size, possibly 0).
    @discardableResult
    public func release(_ range: Range<Int>) -> Int {
        let page = Self.pageSize
        let lower = max(0, range.lowerBound)
        let upper = min(byteCount, range.upperBound)
        guard lower < upper else { return 0 }
        let first = (lower + page - 1) / page * page
        let end = upper / page * page
        guard first < end else { return 0 }
        let start = baseAddress + first
        let length = end - first
        // madvise(MADV_DONTNEED) on a private anonymous mapping drops the pages: the next read
        // sees zeros, the next write a fresh page. It fails only on arguments checked above;
        // should it fail anyway, zeroing keeps the promise (without the memory saving).
        if case .heap = backing {
            start.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        } else if madvise(start, length, MADV_DONTNEED) != 0 {
            start.initializeMemory(as: UInt8.self, repeating: 0, count: length)
        }
        releasedBytes += length
        return length
    }

    /// Gives back every page: all of the memory reads as zeros again. Returns the bytes released.
    @discardableResult
    public func releaseAll() -> Int { release(0..<byteCount) }

    /// Bytes of this memory resident now (mincore), whole pages; nil when the kernel does not
    /// say. For tests and diagnostics: it allocates. A page that was read but never written
    /// counts too (it maps the shared zero page, which the process's RSS does not count).
    public func residentBytes() -> Int? {
        let pages = byteCount / Self.pageSize
        var vector = [UInt8](repeating: 0, count: pages)
        let result = vector.withUnsafeMutableBufferPointer { buffer in
            mincore(baseAddress, byteCount, buffer.baseAddress)
        }
        guard result == 0 else { return nil }
        return vector.reduce(0) { $0 + Int($1 & 1) } * Self.pageSize
    }

    /// `count` rounded up to whole pages, at least one; nil when that overflows.
    private static func roundedToPages(_ count: Int) -> Int? {
        let page = pageSize
        let (sum, overflow) = max(1, count).addingReportingOverflow(page - 1)
        return overflow ? nil : sum / page * page
    }
}
