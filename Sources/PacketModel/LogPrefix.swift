/// A log prefix (NFLOG's NFULA_PREFIX, or a capture's label) held inline, so decoding a packet allocates nothing even when the prefix
/// is longer than Swift's 15-byte small-string limit ("nfowner cg=49102" is 16).
///
/// The kernel caps prefixes at NF_LOG_PREFIXLEN (128 bytes with the NUL), so 127 bytes hold any
/// prefix it sends. A longer one can only be built by hand and is cut at 127 bytes, like the
/// kernel does. The type holds no references: records that carry it are copied as plain bytes
/// (no retain/release on the per-packet path).
public struct LogPrefix: Sendable, Equatable, CustomStringConvertible {
    public static let inlineCapacity = 127

    @usableFromInline var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    @usableFromInline var length: UInt8 = 0

    /// The bytes of `bytes` (no NUL expected), at most `inlineCapacity` of them; nil when empty
    /// (nft's "no prefix").
    @inlinable
    public init?(bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return nil }
        let kept = UnsafeRawBufferPointer(rebasing: bytes[0..<min(bytes.count, Self.inlineCapacity)])
        length = UInt8(kept.count)
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: kept) }
    }

    /// `text` as a prefix (cut at `inlineCapacity` bytes); nil when empty.
    public init?(_ text: String) {
        var text = text
        guard let made = text.withUTF8({ LogPrefix(bytes: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = made
    }

    /// Whether the prefix is exactly `bytes` (as `init(bytes:)` would keep them).
    @inlinable
    public func equals(_ bytes: UnsafeRawBufferPointer) -> Bool {
        let kept = min(bytes.count, Self.inlineCapacity)
        guard kept == Int(length), kept > 0 else { return false }
        if kept <= 16 {
            // nfowner's own prefixes ("nfowner", "nfowner cg=49102"): their one or two words
            // against the storage's, read from the tuple (bytes past `length` are zero there) —
            // the loop below first copies the 128-byte storage to reach it by address.
            guard Self.word(of: bytes, at: 0, count: min(kept, 8)) == UInt64(littleEndian: storage.0) else { return false }
            return kept <= 8 || Self.word(of: bytes, at: 8, count: kept &- 8) == UInt64(littleEndian: storage.1)
        }
        // Eight bytes at a time: it runs for every packet that becomes an event, and a byte-wise
        // `elementsEqual` cost ~260 instructions for a 7-byte prefix.
        return withBytes { mine in
            var offset = 0
            while offset &+ 8 <= kept {
                guard mine.loadUnaligned(fromByteOffset: offset, as: UInt64.self)
                        == bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self) else { return false }
                offset &+= 8
            }
            while offset < kept {
                guard mine[offset] == bytes[offset] else { return false }
                offset &+= 1
            }
            return true
        }
    }

    /// `count` (1…8) bytes of `bytes` from `offset` as a little-endian word, zero above them;
    /// never reads past `offset + count`, which the caller keeps within `bytes`.
    @inlinable @inline(__always)
    static func word(of bytes: UnsafeRawBufferPointer, at offset: Int, count: Int) -> UInt64 {
        if count == 8 { return UInt64(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        if count >= 4 {
            // Two overlapping four-byte reads; the bytes they share land on the same bits.
            let low = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let high = UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: offset &+ count &- 4, as: UInt32.self))
            return UInt64(low) | UInt64(high) << UInt64(8 &* (count &- 4))
        }
        var value: UInt64 = 0
        for index in 0..<count { value |= UInt64(bytes[offset &+ index]) << UInt64(8 &* index) }
        return value
    }

    /// Number of bytes.
    public var count: Int { Int(length) }

    /// Calls `body` with the prefix's UTF-8 bytes (valid only during the call).
    @inlinable
    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        try withUnsafeBytes(of: storage) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<Int(length)])) }
    }

    /// The prefix as text (invalid UTF-8 repaired with U+FFFD: the prefix is a label).
    public var string: String {
        withBytes { String(decoding: $0, as: UTF8.self) }
    }

    public var description: String { string }

    /// Bytes past `length` are always zero (set once at init), so the words that hold the prefix
    /// compare whole — one word for "nfowner", two for "nfowner cg=49102" — read straight from
    /// the tuple: taking the storage's address copied both 128-byte tuples first, and this runs
    /// for every event (comparing all sixteen words was ≈ 4% of a JSON run's profile).
    @inlinable
    public static func == (lhs: LogPrefix, rhs: LogPrefix) -> Bool {
        guard lhs.length == rhs.length, lhs.storage.0 == rhs.storage.0 else { return false }
        if lhs.length <= 8 { return true }
        guard lhs.storage.1 == rhs.storage.1 else { return false }
        if lhs.length <= 16 { return true }
        return allWordsEqual(lhs, rhs)
    }

    /// A prefix's length and its first 24 bytes: equal summaries of prefixes up to 24 bytes
    /// (nfowner's own, "nfowner cg=<id>", up to 13 digits of id) mean equal prefixes; longer
    /// ones are compared whole as well (`isExact` false).
    public struct Summary: Equatable, Sendable {
        /// 0: no prefix (a prefix is never empty).
        @usableFromInline var length: UInt8
        @usableFromInline var words: SIMD4<UInt64>

        public static let exactLength = 24

        @inlinable
        public init(_ prefix: LogPrefix?) {
            guard let prefix else {
                length = 0
                words = SIMD4()
                return
            }
            length = prefix.length
            words = SIMD4(prefix.storage.0, prefix.storage.1, prefix.storage.2, 0)
        }

        /// Both at once: the derived `==` went through SIMD's generic lane-by-lane equality (~30
        /// instructions an event in the JSON encoder).
        @inlinable @inline(__always)
        public static func == (lhs: Summary, rhs: Summary) -> Bool {
            let difference = lhs.words ^ rhs.words
            let half = difference.lowHalf | difference.highHalf
            return half[0] | half[1] | UInt64(lhs.length ^ rhs.length) == 0
        }

        /// Whether it summarizes no prefix.
        @inlinable
        public var isAbsent: Bool { length == 0 }

        /// Whether equal summaries mean equal prefixes.
        @inlinable
        public var isExact: Bool { Int(length) <= Self.exactLength }

        /// Whether the prefix summarized is exactly `bytes` (as `init(bytes:)` would keep them),
        /// when that can be told from the summary (`isExact`); reads only within `bytes`.
        @inlinable @inline(__always)
        public func matches(_ bytes: UnsafeRawBufferPointer) -> Bool {
            let count = min(bytes.count, LogPrefix.inlineCapacity)
            guard count == Int(length), count > 0 else { return false }
            guard UInt64(littleEndian: words[0]) == LogPrefix.word(of: bytes, at: 0, count: min(count, 8)) else { return false }
            if count <= 8 { return true }
            guard UInt64(littleEndian: words[1]) == LogPrefix.word(of: bytes, at: 8, count: min(count &- 8, 8)) else { return false }
            if count <= 16 { return true }
            return UInt64(littleEndian: words[2]) == LogPrefix.word(of: bytes, at: 16, count: min(count &- 16, 8))
        }
    }

    /// Longer prefixes, rare: out of line, so the common case needs no stack frame for copies.
    @usableFromInline @inline(never)
    static func allWordsEqual(_ lhs: LogPrefix, _ rhs: LogPrefix) -> Bool {
        withUnsafeBytes(of: lhs.storage) { left in
            withUnsafeBytes(of: rhs.storage) { right in left.elementsEqual(right) }
        }
    }
}
