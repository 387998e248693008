// Searching raw bytes without reading past them.

extension UnsafeRawBufferPointer {
    /// The offset of the first zero byte, nil when there is none.
    ///
    /// Eight bytes at a time (a log prefix is checked for its NUL in every NFLOG message): in a
    /// word whose bytes are b, `(w - 0x01…01) & ~w & 0x80…80` flags the zero bytes; the lowest
    /// flag is always a real zero byte (a borrow only spreads upwards from one). Only whole words
    /// inside the buffer are loaded; the tail goes byte by byte.
    @inlinable @inline(__always)
    public func firstZeroByte() -> Int? {
        guard let base = baseAddress else { return nil }
        var offset = 0
        while count &- offset >= 8 {
            let word = UInt64(littleEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
            let flags = (word &- 0x0101_0101_0101_0101) & ~word & 0x8080_8080_8080_8080
            if flags != 0 { return offset &+ flags.trailingZeroBitCount / 8 }
            offset &+= 8
        }
        while offset < count {
            if self[offset] == 0 { return offset }
            offset &+= 1
        }
        return nil
    }
}

extension UnsafeRawBufferPointer {
    /// The bytes before the first zero byte (all of them when there is none): a C string's
    /// characters, without copying.
    @inlinable @inline(__always)
    public func prefixBeforeFirstZeroByte() -> UnsafeRawBufferPointer {
        guard let end = firstZeroByte() else { return self }
        return UnsafeRawBufferPointer(start: baseAddress, count: end)
    }
}
