/// A shell-style pattern over bytes: `*` matches any run of bytes (`/` included), `?` one byte,
/// every other byte itself. A pattern without `*` or `?` is compared exactly. Matching is
/// iterative with one backtrack point (the last `*`), so it takes at most
/// O(pattern × text) steps and never recurses.
public struct Glob: Sendable, Hashable, CustomStringConvertible {
    public let pattern: String
    private let bytes: [UInt8]
    /// No `*` or `?`: an exact comparison.
    public let isLiteral: Bool

    public init(_ pattern: String) {
        self.pattern = pattern
        bytes = Array(pattern.utf8)
        isLiteral = !bytes.contains(UInt8(ascii: "*")) && !bytes.contains(UInt8(ascii: "?"))
    }

    public var description: String { pattern }

    /// True for `*` alone (or only stars): matches everything.
    public var matchesEverything: Bool { !bytes.isEmpty && bytes.allSatisfy { $0 == UInt8(ascii: "*") } }

    public func matches(_ text: String) -> Bool {
        if isLiteral { return text == pattern }
        var copy = text
        return copy.withUTF8 { matches(bytes: $0) }
    }

    private func matches(bytes text: UnsafeBufferPointer<UInt8>) -> Bool {
        let star = UInt8(ascii: "*"), one = UInt8(ascii: "?")
        var p = 0, t = 0
        var starAt: Int? = nil, starText = 0
        while t < text.count {
            if p < bytes.count, bytes[p] == star {
                starAt = p
                starText = t
                p += 1
            } else if p < bytes.count, bytes[p] == one || bytes[p] == text[t] {
                p += 1
                t += 1
            } else if let starAt {
                p = starAt + 1
                starText += 1
                t = starText
            } else {
                return false
            }
        }
        while p < bytes.count, bytes[p] == star { p += 1 }
        return p == bytes.count
    }

    /// Whether every text `other` matches, this matches too (conservative: false when unsure).
    func covers(_ other: Glob) -> Bool {
        if matchesEverything || pattern == other.pattern { return true }
        return other.isLiteral && matches(other.pattern)
    }
}
