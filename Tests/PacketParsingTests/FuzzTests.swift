import PacketParsing
import Testing

/// SplitMix64: a small seeded generator so a failing iteration can be replayed.
struct SplitMix64: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite struct FuzzTests {
    /// Flips bytes of valid packets (and sometimes cuts them short); parsing must never trap, every
    /// result must satisfy `InvariantViolations`, and a successful result's ports must come from bytes
    /// that were captured.
    @Test func mutatedValidPacketsNeverTrap() {
        var random = SplitMix64(state: 0x6E66_6F77_6E65_72)
        var successes = 0
        var violations = InvariantViolations()
        for _ in 0..<200_000 {
            var bytes = validCases[Int.random(in: 0..<validCases.count, using: &random)].bytes
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let index = Int.random(in: 0..<bytes.count, using: &random)
                bytes[index] = random.next() & 1 == 0 ? UInt8.random(in: 0...255, using: &random)
                                                       : bytes[index] ^ (1 << UInt8.random(in: 0...7, using: &random))
            }
            if random.next() % 4 == 0 {
                bytes.removeLast(Int.random(in: 0...bytes.count, using: &random))
            }
            let result = parse(bytes)
            violations.check(bytes, family: nil, result)
            if case .success(let summary) = result {
                successes += 1
                if summary.sourcePort != nil { #expect(bytes.count >= 22) }
            }
        }
        #expect(successes > 0)
        #expect(violations.found.isEmpty, "\(violations.count) results broke the invariants, e.g. \(violations.found)")
    }

    /// Random bytes, parsed as any family, as IPv4 and as IPv6: never a trap, and every result is the one
    /// the documented checks predict (see `InvariantViolations`).
    @Test func randomBuffersNeverTrap() {
        var random = SplitMix64(state: 42)
        var violations = InvariantViolations()
        for _ in 0..<100_000 {
            var bytes = (0..<Int.random(in: 0...100, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Half of them get a plausible version nibble so parsing goes past the first byte.
            if !bytes.isEmpty, random.next() & 1 == 0 {
                bytes[0] = (random.next() & 1 == 0 ? 0x40 : 0x60) | (bytes[0] & 0x0F)
            }
            violations.check(bytes, family: nil, parse(bytes))
            violations.check(bytes, family: .ipv4, parse(bytes, family: .ipv4))
            violations.check(bytes, family: .ipv6, parse(bytes, family: .ipv6))
        }
        #expect(violations.found.isEmpty, "\(violations.count) results broke the invariants, e.g. \(violations.found)")
    }
}

/// What every parse result must satisfy, success or failure, checked against an independent reading
/// of the bytes: the error (or its absence) is the one the documented checks predict, in their order, and
/// a summary's family and length fields are the header's. Collected rather than asserted one by one, so
/// hundreds of thousands of inputs cost one expectation; the first few are kept for the message.
struct InvariantViolations {
    private(set) var count = 0
    private(set) var found: [String] = []

    mutating func check(_ bytes: [UInt8], family: IPFamily?, _ result: Result<PacketSummary, PacketParseError>) {
        guard let problem = Self.problem(bytes, family: family, result) else { return }
        count += 1
        if found.count < 5 { found.append("\(problem) (family \(family.map { "\($0)" } ?? "any"), bytes \(bytes))") }
    }

    /// The broken invariant, or nil when `result` is what `bytes` must give.
    static func problem(_ bytes: [UInt8], family: IPFamily?,
                        _ result: Result<PacketSummary, PacketParseError>) -> String? {
        let predicted = predictedError(bytes, family: family)
        switch result {
        case .failure(let error):
            guard error.code == predicted else { return "threw \(error.code), expected \(predicted.map { "\($0)" } ?? "success")" }
            guard !error.reason.isEmpty else { return "\(error.code) has no reason" }
            return nil
        case .success(let summary):
            if let predicted { return "parsed, expected \(predicted)" }
            // predictedError returned nil, so the version nibble is 4 or 6 and the fixed header was captured.
            switch summary.family {
            case .ipv4:
                guard bytes[0] >> 4 == 4 else { return "IPv4 summary for version \(bytes[0] >> 4)" }
                let totalLength = Int(bytes[2]) << 8 | Int(bytes[3])
                guard summary.totalLength == totalLength else {
                    return "totalLength \(summary.totalLength), header says \(totalLength)"
                }
                let source = UInt32(bytes[12]) << 24 | UInt32(bytes[13]) << 16 | UInt32(bytes[14]) << 8 | UInt32(bytes[15])
                guard summary.source == .v4(source) else { return "source \(summary.source) is not bytes 12..<16" }
            case .ipv6:
                guard bytes[0] >> 4 == 6 else { return "IPv6 summary for version \(bytes[0] >> 4)" }
                let totalLength = 40 + (Int(bytes[4]) << 8 | Int(bytes[5]))
                guard summary.totalLength == totalLength else {
                    return "totalLength \(summary.totalLength), header says \(totalLength)"
                }
            }
            if let family, summary.family != family { return "\(summary.family) summary, \(family) requested" }
            if let fragment = summary.fragment {
                guard fragment.offset >= 0, fragment.offset % 8 == 0, fragment.offset <= 65528 else {
                    return "fragment offset \(fragment.offset)"
                }
                if !fragment.isFirst, summary.transport != .notFirstFragment {
                    return "a later fragment decoded a transport header: \(summary.transport)"
                }
            }
            return nil
        }
    }

    /// The error PacketParser documents for `bytes`, in the order it checks (nil: it must parse).
    static func predictedError(_ bytes: [UInt8], family: IPFamily?) -> PacketParseError.Code? {
        guard let first = bytes.first else { return .truncatedIPHeader }
        switch (family, first >> 4) {
        case (nil, 4), (.ipv4?, 4):
            guard bytes.count >= 20 else { return .truncatedIPHeader }
            let headerLength = Int(first & 0x0F) * 4
            guard headerLength >= 20 else { return .badHeaderLength }
            let totalLength = Int(bytes[2]) << 8 | Int(bytes[3])
            guard totalLength == 0 || totalLength >= headerLength else { return .badTotalLength }
            return headerLength <= bytes.count ? nil : .truncatedIPHeader
        case (nil, 6), (.ipv6?, 6):
            return bytes.count >= 40 ? nil : .truncatedIPHeader
        case (nil, _):
            return .unsupportedVersion
        default:
            return .familyMismatch
        }
    }
}
