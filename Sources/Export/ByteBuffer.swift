/// A growable byte buffer written through a raw pointer: one capacity check per write and no
/// Array bookkeeping — what an encoder that writes some seventy fields per event needs (the
/// Array-based appends cost more than the fields' formatting).
///
/// Owned by one encoder at a time (non-copyable); `withBytes` lends the written bytes out.
public struct ByteBuffer: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var used = 0

    public init(capacity: Int = 1 << 16) {
        self.capacity = max(capacity, 64)
        base = .allocate(capacity: self.capacity)
    }

    deinit { base.deallocate() }

    /// Bytes written so far.
    public var count: Int { used }
    public var isEmpty: Bool { used == 0 }

    /// Forgets what was written (keeps the memory).
    public mutating func removeAll() { used = 0 }

    /// Calls `body` with the bytes written so far (valid only during the call).
    public func withBytes<Result, Failure: Error>(
        _ body: (UnsafeRawBufferPointer) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try body(UnsafeRawBufferPointer(start: base, count: used))
    }

    /// The bytes written so far, as an array (tests, one-off encodes).
    public var bytes: [UInt8] { Array(UnsafeBufferPointer(start: base, count: used)) }

    /// Makes room for `extra` more bytes.
    @inlinable @inline(__always)
    public mutating func reserve(_ extra: Int) {
        if capacity - used < extra { grow(toHold: used + extra) }
    }

    @usableFromInline
    mutating func grow(toHold needed: Int) {
        var newCapacity = capacity * 2
        while newCapacity < needed { newCapacity *= 2 }
        let grown = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        grown.update(from: base, count: used)
        base.deallocate()
        base = grown
        capacity = newCapacity
    }

    @inlinable @inline(__always)
    public mutating func write(_ byte: UInt8) {
        reserve(1)
        base[used] = byte
        used &+= 1
    }

    @inlinable @inline(__always)
    public mutating func write(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        reserve(bytes.count)
        Self.copy(from: source, count: bytes.count, to: UnsafeMutableRawPointer(base + used))
        used &+= bytes.count
    }

    /// Short runs (most keys, numbers, names) with two overlapping loads and stores inside the
    /// run instead of a call to memcpy, which cost more than the copy; longer runs in
    /// sixteen-byte chunks up to 64 bytes; longer ones with memcpy.
    @inlinable @inline(__always)
    static func copy(from source: UnsafeRawPointer, count: Int, to target: UnsafeMutableRawPointer) {
        if count >= 8, count <= 16 {
            let head = source.loadUnaligned(as: UInt64.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 8, as: UInt64.self)
            target.storeBytes(of: head, as: UInt64.self)
            target.storeBytes(of: tail, toByteOffset: count &- 8, as: UInt64.self)
        } else if count >= 4, count < 8 {
            let head = source.loadUnaligned(as: UInt32.self)
            let tail = source.loadUnaligned(fromByteOffset: count &- 4, as: UInt32.self)
            target.storeBytes(of: head, as: UInt32.self)
            target.storeBytes(of: tail, toByteOffset: count &- 4, as: UInt32.self)
        } else if count < 4 {
            for index in 0..<count {
                target.storeBytes(of: source.load(fromByteOffset: index, as: UInt8.self), toByteOffset: index, as: UInt8.self)
            }
        } else if count <= 64 {
            // Sixteen bytes at a time, the last sixteen overlapping, inline.
            var offset = 0
            while offset &+ 16 < count {
                target.storeBytes(of: source.loadUnaligned(fromByteOffset: offset, as: SIMD16<UInt8>.self),
                                  toByteOffset: offset, as: SIMD16<UInt8>.self)
                offset &+= 16
            }
            target.storeBytes(of: source.loadUnaligned(fromByteOffset: count &- 16, as: SIMD16<UInt8>.self),
                              toByteOffset: count &- 16, as: SIMD16<UInt8>.self)
        } else {
            target.copyMemory(from: source, byteCount: count)
        }
    }

    /// A literal: copied as one block (the compiler knows its bytes and length).
    @inlinable @inline(__always)
    public mutating func write(_ text: StaticString) {
        write(UnsafeRawBufferPointer(start: text.utf8Start, count: text.utf8CodeUnitCount))
    }

    /// Decimal digits of `value`.
    @inlinable
    public mutating func write(decimal value: UInt64) {
        reserve(20)
        if value < 10 {
            base[used] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: value)
            used &+= 1
            return
        }
        // Two digits per division, from a table, written from the end: an event holds a dozen
        // numbers, and one division per digit (plus one more to count them) showed in profiles.
        let digits = Self.decimalDigits(value)
        let pairs = Self.digitPairs.utf8Start
        var remaining = value
        var index = used &+ digits
        while remaining >= 100 {
            let pair = Int(truncatingIfNeeded: remaining % 100) &* 2
            remaining /= 100
            index &-= 2
            base[index] = pairs[pair]
            base[index &+ 1] = pairs[pair &+ 1]
        }
        if remaining >= 10 {
            let pair = Int(truncatingIfNeeded: remaining) &* 2
            index &-= 2
            base[index] = pairs[pair]
            base[index &+ 1] = pairs[pair &+ 1]
        } else {
            index &-= 1
            base[index] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: remaining)
        }
        used &+= digits
    }

    /// `value` in decimal through `counter`, which keeps the digits last written: a number one
    /// above the last (an NFLOG sequence number, event after event) costs one digit's change
    /// nine times in ten instead of a conversion.
    @inlinable @inline(__always)
    public mutating func write(decimal value: UInt64, counting counter: inout DecimalCounter) {
        reserve(20)
        let last = counter.count &- 1
        if value == counter.value &+ 1, last >= 0, counter.digits[last] != UInt8(ascii: "9") {
            counter.digits[last] &+= 1
            counter.value = value
            UnsafeMutableRawPointer(base + used).storeBytes(of: counter.digits, as: SIMD16<UInt8>.self)
            used &+= counter.count
        } else {
            writeRestarting(decimal: value, counting: &counter)
        }
    }

    /// Writes `value` in full and keeps its digits in `counter` (when at most sixteen).
    @usableFromInline @inline(never)
    mutating func writeRestarting(decimal value: UInt64, counting counter: inout DecimalCounter) {
        let start = used
        write(decimal: value)  // reserves 20 bytes from `start`: sixteen can be read back
        let written = used &- start
        counter.value = value
        counter.count = written <= 16 ? written : 0
        counter.digits = UnsafeRawPointer(base + start).loadUnaligned(as: SIMD16<UInt8>.self)
    }

    /// "00", "01", … "99" back to back: the two digits of `n` are at `2n` and `2n + 1`.
    @usableFromInline static let digitPairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// How many decimal digits `value` has (1…20).
    @inlinable
    static func decimalDigits(_ value: UInt64) -> Int {
        var digits = 1
        var bound: UInt64 = 10
        while digits < 20, value >= bound {
            digits &+= 1
            bound = bound &* 10
        }
        return digits
    }

    /// `value` in decimal, left-padded with zeros to `width` digits (at most 20).
    @inlinable
    public mutating func write(decimal value: UInt64, zeroPaddedTo width: Int) {
        let digits = Self.decimalDigits(value)
        if digits < width {
            reserve(width - digits)
            for _ in 0..<(width - digits) {
                base[used] = UInt8(ascii: "0")
                used &+= 1
            }
        }
        write(decimal: value)
    }

    /// `value` (below one million) as exactly six digits, zero-padded: an event's microseconds,
    /// three digit pairs from the table and no digit counting.
    @inlinable @inline(__always)
    public mutating func write(sixDigits value: UInt64) {
        reserve(6)
        let pairs = Self.digitPairs.utf8Start
        let value = Int(truncatingIfNeeded: min(value, 999_999))
        let high = value / 10_000, middle = (value / 100) % 100, low = value % 100
        base[used] = pairs[high &* 2]
        base[used &+ 1] = pairs[high &* 2 &+ 1]
        base[used &+ 2] = pairs[middle &* 2]
        base[used &+ 3] = pairs[middle &* 2 &+ 1]
        base[used &+ 4] = pairs[low &* 2]
        base[used &+ 5] = pairs[low &* 2 &+ 1]
        used &+= 6
    }

    /// Lets `body` write up to `maximum` bytes straight into the buffer; it returns how many it wrote.
    @inlinable
    public mutating func write(maximum: Int, _ body: (UnsafeMutableBufferPointer<UInt8>) -> Int) {
        reserve(maximum)
        let written = body(UnsafeMutableBufferPointer(start: base + used, count: maximum))
        used &+= min(max(written, 0), maximum)
    }
}

/// The digits `ByteBuffer.write(decimal:counting:)` wrote last, and their number.
public struct DecimalCounter {
    @usableFromInline var value: UInt64 = 0
    /// The digits, left-aligned; `count` of them are the number's (0: none kept).
    @usableFromInline var digits = SIMD16<UInt8>()
    @usableFromInline var count = 0

    public init() {}
}
