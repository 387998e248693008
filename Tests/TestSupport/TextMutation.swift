/// A small seeded generator (SplitMix64): fuzz tests repeat exactly from their seed.
public struct SeededRandom: RandomNumberGenerator {
    public var state: UInt64
    public init(seed: UInt64) { state = seed }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// Mutations of a text for parser fuzz tests: one to four edits, each replacing a character with
/// one of `pieces`, inserting a piece, or deleting up to 20 characters.
public enum TextMutation {
    public static func mutate(_ text: String, pieces: [String], using random: inout SeededRandom) -> String {
        var scalars = Array(text.unicodeScalars)
        for _ in 0..<Int.random(in: 1...4, using: &random) {
            let position = Int.random(in: 0...scalars.count, using: &random)
            let piece = Array((pieces.randomElement(using: &random) ?? "x").unicodeScalars)
            switch Int.random(in: 0...2, using: &random) {
            case 0 where position < scalars.count:
                scalars.replaceSubrange(position..<(position + 1), with: piece)
            case 1:
                scalars.insert(contentsOf: piece, at: position)
            default:
                if position < scalars.count {
                    scalars.removeSubrange(position..<min(scalars.count, position + Int.random(in: 1...20, using: &random)))
                }
            }
        }
        return string(scalars[...])
    }

    /// The text of these scalars.
    public static func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
