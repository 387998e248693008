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
    /// Flips bytes of valid packets (and sometimes cuts them short); parsing must never trap,
    /// and a successful result's ports must come from bytes that were captured.
    @Test func mutatedValidPacketsNeverTrap() {
        var random = SplitMix64(state: 0x6E66_6F77_6E65_72)
        var successes = 0
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
            if case .success(let summary) = parse(bytes) {
                successes += 1
                if summary.sourcePort != nil { #expect(bytes.count >= 22) }
            }
        }
        #expect(successes > 0)
    }

    @Test func randomBuffersNeverTrap() {
        var random = SplitMix64(state: 42)
        for _ in 0..<100_000 {
            var bytes = (0..<Int.random(in: 0...100, using: &random)).map { _ in UInt8.random(in: 0...255, using: &random) }
            // Half of them get a plausible version nibble so parsing goes past the first byte.
            if !bytes.isEmpty, random.next() & 1 == 0 {
                bytes[0] = (random.next() & 1 == 0 ? 0x40 : 0x60) | (bytes[0] & 0x0F)
            }
            _ = parse(bytes)
            _ = parse(bytes, family: .ipv6)
        }
    }
}
