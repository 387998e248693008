/// An NFLOG log prefix held inline, so decoding a packet allocates nothing even when the prefix
/// is longer than Swift's 15-byte small-string limit ("nfowner cg=49102" is 16).
///
/// The kernel caps prefixes at NF_LOG_PREFIXLEN (128 bytes with the NUL), so 127 bytes are kept
/// inline; a longer one (only built by hand) is kept as a String.
public struct NflogPrefix: Sendable, Equatable, CustomStringConvertible {
    public static let inlineCapacity = 127

    private var storage: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                          UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64)
        = (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
    private var length: UInt8 = 0
    private var overflow: String?

    /// The bytes of `bytes` (no NUL expected); nil when empty (nft's "no prefix").
    public init?(bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return nil }
        if bytes.count > Self.inlineCapacity {
            overflow = String(decoding: bytes, as: UTF8.self)
            return
        }
        length = UInt8(bytes.count)
        withUnsafeMutableBytes(of: &storage) { $0.copyMemory(from: bytes) }
    }

    /// `text` as a prefix; nil when empty.
    public init?(_ text: String) {
        var text = text
        guard let made = text.withUTF8({ NflogPrefix(bytes: UnsafeRawBufferPointer($0)) }) else { return nil }
        self = made
    }

    /// Calls `body` with the prefix's UTF-8 bytes (valid only during the call).
    public func withBytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if var overflow {
            return try overflow.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
        }
        var copy = storage
        return try withUnsafeBytes(of: &copy) { try body(UnsafeRawBufferPointer(rebasing: $0[0..<Int(length)])) }
    }

    /// The prefix as text (invalid UTF-8 repaired with U+FFFD: the prefix is a label).
    public var string: String {
        withBytes { String(decoding: $0, as: UTF8.self) }
    }

    public var description: String { string }

    public static func == (lhs: NflogPrefix, rhs: NflogPrefix) -> Bool {
        lhs.withBytes { left in rhs.withBytes { right in left.elementsEqual(right) } }
    }
}
