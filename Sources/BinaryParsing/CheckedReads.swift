// Bounds-checked reads over raw bytes.
//
// Every parser of untrusted input (netlink messages, packets) reads through these, so a bad
// length or offset yields nil instead of a trap or a read past the buffer. Each read names its
// byte order: netlink headers are host order, NFLOG attribute payloads and packet headers are
// network order (big-endian). Offsets are relative to the buffer's start; negative offsets and
// offset + width overflow are rejected before any memory is touched.

extension UnsafeRawBufferPointer {
    /// True when `count` bytes starting at `offset` lie inside the buffer.
    @inlinable
    public func contains(offset: Int, count width: Int) -> Bool {
        guard offset >= 0, width >= 0 else { return false }
        let (end, overflow) = offset.addingReportingOverflow(width)
        return !overflow && end <= count
    }

    /// The byte at `offset`, or nil when it lies outside the buffer.
    @inlinable
    public func byte(at offset: Int) -> UInt8? {
        guard contains(offset: offset, count: 1) else { return nil }
        return self[offset]
    }

    /// A big-endian (network order) UInt16 at `offset`, or nil when it does not fit.
    @inlinable
    public func bigEndianUInt16(at offset: Int) -> UInt16? {
        guard contains(offset: offset, count: 2), let base = baseAddress else { return nil }
        return UInt16(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt16.self))
    }

    /// A big-endian (network order) UInt32 at `offset`, or nil when it does not fit.
    @inlinable
    public func bigEndianUInt32(at offset: Int) -> UInt32? {
        guard contains(offset: offset, count: 4), let base = baseAddress else { return nil }
        return UInt32(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
    }

    /// A big-endian (network order) UInt64 at `offset`, or nil when it does not fit.
    @inlinable
    public func bigEndianUInt64(at offset: Int) -> UInt64? {
        guard contains(offset: offset, count: 8), let base = baseAddress else { return nil }
        return UInt64(bigEndian: base.loadUnaligned(fromByteOffset: offset, as: UInt64.self))
    }

    /// A host-order UInt16 at `offset` (netlink header fields), or nil when it does not fit.
    @inlinable
    public func hostUInt16(at offset: Int) -> UInt16? {
        guard contains(offset: offset, count: 2), let base = baseAddress else { return nil }
        return base.loadUnaligned(fromByteOffset: offset, as: UInt16.self)
    }

    /// A host-order UInt32 at `offset` (netlink header fields), or nil when it does not fit.
    @inlinable
    public func hostUInt32(at offset: Int) -> UInt32? {
        guard contains(offset: offset, count: 4), let base = baseAddress else { return nil }
        return base.loadUnaligned(fromByteOffset: offset, as: UInt32.self)
    }

    /// A host-order UInt64 at `offset` (kernel structs such as struct taskstats), or nil when it
    /// does not fit.
    @inlinable
    public func hostUInt64(at offset: Int) -> UInt64? {
        guard contains(offset: offset, count: 8), let base = baseAddress else { return nil }
        return base.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
    }

    /// A host-order Int32 at `offset` (netlink error codes), or nil when it does not fit.
    @inlinable
    public func hostInt32(at offset: Int) -> Int32? {
        guard let raw = hostUInt32(at: offset) else { return nil }
        return Int32(bitPattern: raw)
    }

    /// The `count` bytes starting at `offset` as a buffer of their own (offsets rebased to 0),
    /// or nil when they do not all lie inside this buffer. No bytes are copied.
    @inlinable
    public func subrange(at offset: Int, count width: Int) -> UnsafeRawBufferPointer? {
        guard contains(offset: offset, count: width) else { return nil }
        return UnsafeRawBufferPointer(rebasing: self[offset..<(offset + width)])
    }

    /// Everything from `offset` to the end, or nil when `offset` is past the end.
    @inlinable
    public func suffix(from offset: Int) -> UnsafeRawBufferPointer? {
        guard offset >= 0, offset <= count else { return nil }
        return UnsafeRawBufferPointer(rebasing: self[offset...])
    }
}
