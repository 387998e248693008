// Reads from a fixed-size header whose length was checked once.
//
//   buffer:  | b0 | b1 | … | b(size−1) | … rest of the capture …
//             \_______ UnsafeFixedBytes<size> _______/
//
// A packet parser checks "are the 20 bytes of the IPv4 header there?" once and then reads a
// dozen fields at constant offsets. With the Optional reads of CheckedReads.swift every one of
// those reads repeats its own bounds check and nil test. `UnsafeFixedBytes<size>` can only be
// made from a buffer holding at least `size` bytes, so a read at a constant offset below `size`
// needs no check at run time: the offset test below is between two compile-time constants and
// the optimizer removes it. Offsets that depend on the input belong to the checked reads on the
// buffer itself, not here.

extension UnsafeRawBufferPointer {
    /// The bytes from `start` up to (not including) `end` as a buffer of their own (offsets
    /// rebased to 0), or nil unless 0 ≤ `start` ≤ `end` ≤ `count`. No bytes are copied.
    ///
    /// `subrange(at:count:)` with the end given instead of the count, always inlined: hot
    /// parsers slice a header's payload once per packet.
    @inlinable @inline(__always)
    public func subrange(from start: Int, upTo end: Int) -> UnsafeRawBufferPointer? {
        guard start >= 0, start <= end, end <= count else { return nil }
        // Only an empty buffer has no base address, and then start == end == 0.
        return UnsafeRawBufferPointer(start: baseAddress.map { $0 + start }, count: end - start)
    }
}

/// The first `size` bytes of a buffer, known to be present. Does not own the memory: like the
/// buffer it came from, it is valid only while that memory is.
///
/// Reads take constant offsets (header field positions) and return plain values. An offset
/// outside `0..<size` is a programming error and traps; it never depends on the input, and for
/// a constant offset the compiler proves it in range and emits no check.
@frozen
public struct UnsafeFixedBytes<let size: Int> {
    @usableFromInline
    let base: UnsafeRawPointer

    /// A view of the first `size` bytes of `buffer`; nil when `buffer` holds fewer than `size`
    /// bytes (an empty buffer never makes a view, whatever `size` is).
    @inlinable @inline(__always)
    public init?(_ buffer: UnsafeRawBufferPointer) {
        guard buffer.count >= size, let base = buffer.baseAddress else { return nil }
        self.base = base
    }

    /// The view of `size` bytes starting at `offset` in `buffer`; nil when they do not all lie
    /// inside it (negative offsets and overflow included).
    @inlinable @inline(__always)
    public init?(_ buffer: UnsafeRawBufferPointer, at offset: Int) {
        guard buffer.contains(offset: offset, count: size), let base = buffer.baseAddress else { return nil }
        self.base = base + offset
    }

    @inlinable @inline(__always)
    func load<T: FixedWidthInteger>(at offset: Int, as type: T.Type) -> T {
        precondition(offset >= 0 && offset <= size - MemoryLayout<T>.size,
                     "read outside the checked bytes of UnsafeFixedBytes")
        return base.loadUnaligned(fromByteOffset: offset, as: T.self)
    }

    /// The byte at `offset` (0 ≤ offset < size).
    @inlinable @inline(__always)
    public func byte(at offset: Int) -> UInt8 {
        load(at: offset, as: UInt8.self)
    }

    /// The big-endian (network order) UInt16 at `offset` (0 ≤ offset ≤ size − 2).
    @inlinable @inline(__always)
    public func bigEndianUInt16(at offset: Int) -> UInt16 {
        UInt16(bigEndian: load(at: offset, as: UInt16.self))
    }

    /// The big-endian (network order) UInt32 at `offset` (0 ≤ offset ≤ size − 4).
    @inlinable @inline(__always)
    public func bigEndianUInt32(at offset: Int) -> UInt32 {
        UInt32(bigEndian: load(at: offset, as: UInt32.self))
    }

    /// The big-endian (network order) UInt64 at `offset` (0 ≤ offset ≤ size − 8).
    @inlinable @inline(__always)
    public func bigEndianUInt64(at offset: Int) -> UInt64 {
        UInt64(bigEndian: load(at: offset, as: UInt64.self))
    }
}
