import BinaryParsing

/// The log prefix that carries a packet's cgroup class from the ruleset to the pipeline:
/// `"<prefix> cg=<id>"`, e.g. `"nfowner cg=49102"`. Rules writes it; sources pass it on; the
/// pipeline reads the id back. One format, so it lives with the model both sides share.
public enum ClassificationPrefix {
    /// What follows the rule's own prefix in a classified packet's prefix.
    public static let marker = " cg="

    /// The prefix of packets classified as cgroup `id`.
    public static func make(id: UInt64, prefix: String) -> String {
        prefix + marker + String(id)
    }

    /// The cgroup id in a prefix written by `make`, or nil when the prefix has no `" cg="`
    /// marker followed by 1…20 decimal digits that fit a UInt64 up to its end (the fallback
    /// rule's plain prefix, another tool's prefix, or garbage).
    public static func cgroupID(fromPrefix prefix: String) -> UInt64? {
        var prefix = prefix
        return prefix.withUTF8 { cgroupID(fromPrefixBytes: UnsafeRawBufferPointer($0)) }
    }

    /// The same, over the prefix's UTF-8 bytes: no allocation (it runs for every packet).
    /// The id is the run of digits at the end, preceded by the last " cg=": the rule's own
    /// prefix may contain " cg=", the id never does.
    @inlinable
    public static func cgroupID(fromPrefixBytes bytes: UnsafeRawBufferPointer) -> UInt64? {
        // Packets logged without a class (the fallback rule, other tools' prefixes) end in a
        // non-digit: turned away here, inlined into the per-packet path, without a call.
        guard let last = bytes.byte(at: bytes.count - 1), last &- UInt8(ascii: "0") < 10 else { return nil }
        return parseCgroupID(bytes)
    }

    @usableFromInline
    static func parseCgroupID(_ bytes: UnsafeRawBufferPointer) -> UInt64? {
        var start = bytes.count
        while start > 0, let byte = bytes.byte(at: start - 1), byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") {
            start -= 1
        }
        let digits = bytes.count - start
        guard digits > 0, digits <= 20, start >= 4,
              bytes.byte(at: start - 4) == UInt8(ascii: " "), bytes.byte(at: start - 3) == UInt8(ascii: "c"),
              bytes.byte(at: start - 2) == UInt8(ascii: "g"), bytes.byte(at: start - 1) == UInt8(ascii: "=") else {
            return nil
        }
        var value: UInt64 = 0
        for offset in start..<bytes.count {
            guard let byte = bytes.byte(at: offset) else { return nil }
            let (times10, overflowA) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowB) = times10.addingReportingOverflow(UInt64(byte - UInt8(ascii: "0")))
            guard !overflowA, !overflowB else { return nil }
            value = sum
        }
        return value
    }
}
