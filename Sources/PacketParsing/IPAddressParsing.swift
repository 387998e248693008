// Text → IPAddress, for tests, configuration and command-line arguments (not the packet path).
//
// Accepts a dotted quad ("192.0.2.1": four decimal octets, no leading zeros) or RFC 4291 IPv6
// text: up to eight hex groups of 1–4 digits, at most one "::" standing for one or more zero
// groups, optionally ending in a dotted quad that counts as two groups ("::ffff:192.0.2.1").
// Zone ids ("%eth0") and prefixes ("/64") are rejected.

extension IPAddress {
    /// Parses IPv4 or IPv6 text; nil when it is not exactly one address.
    public init?(parsing text: String) {
        let utf8 = Array(text.utf8)
        if utf8.contains(UInt8(ascii: ":")) {
            guard let (high, low) = Self.parseIPv6(utf8) else { return nil }
            self = .v6(high: high, low: low)
        } else {
            guard let value = Self.parseDottedQuad(utf8[...]) else { return nil }
            self = .v4(value)
        }
    }

    private static func parseDottedQuad(_ text: ArraySlice<UInt8>) -> UInt32? {
        let parts = text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count),
                  part.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
                  part.count == 1 || part.first != UInt8(ascii: "0")
            else { return nil }
            let octet = part.reduce(0) { $0 * 10 + UInt32($1 - UInt8(ascii: "0")) }
            guard octet <= 255 else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    /// The groups of one side of "::" (or of the whole text); nil on any malformed group.
    private static func parseGroups(_ text: ArraySlice<UInt8>, allowTrailingIPv4: Bool) -> [UInt16]? {
        if text.isEmpty { return [] }
        let parts = text.split(separator: UInt8(ascii: ":"), omittingEmptySubsequences: false)
        var groups: [UInt16] = []
        for (index, part) in parts.enumerated() {
            if index == parts.count - 1, allowTrailingIPv4, part.contains(UInt8(ascii: ".")) {
                guard let v4 = parseDottedQuad(part) else { return nil }
                groups.append(UInt16(truncatingIfNeeded: v4 >> 16))
                groups.append(UInt16(truncatingIfNeeded: v4))
                continue
            }
            guard (1...4).contains(part.count) else { return nil }
            var group: UInt16 = 0
            for character in part {
                let digit: UInt8
                switch character {
                case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = character - UInt8(ascii: "0")
                case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = character - UInt8(ascii: "a") + 10
                case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = character - UInt8(ascii: "A") + 10
                default: return nil
                }
                group = group << 4 | UInt16(digit)
            }
            groups.append(group)
        }
        return groups
    }

    private static func parseIPv6(_ text: [UInt8]) -> (UInt64, UInt64)? {
        var groups: [UInt16]
        if let gap = text.indices.first(where: { text[$0] == UInt8(ascii: ":") && $0 + 1 < text.count && text[$0 + 1] == UInt8(ascii: ":") }) {
            let head = text[..<gap], tail = text[(gap + 2)...]
            // A second "::" (or ":::") leaves an empty group on one side and is rejected there.
            guard let before = parseGroups(head, allowTrailingIPv4: false),
                  let after = parseGroups(tail, allowTrailingIPv4: true),
                  before.count + after.count <= 7
            else { return nil }
            groups = before + Array(repeating: 0, count: 8 - before.count - after.count) + after
        } else {
            guard let all = parseGroups(text[...], allowTrailingIPv4: true), all.count == 8 else { return nil }
            groups = all
        }
        var high: UInt64 = 0, low: UInt64 = 0
        for (index, group) in groups.enumerated() {
            if index < 4 { high = high << 16 | UInt64(group) } else { low = low << 16 | UInt64(group) }
        }
        return (high, low)
    }
}
