import Testing
@testable import Configuration

/// SplitMix64: a seeded generator so a failing random case can be reproduced.
private struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

private func parse(_ text: String) throws(ConfigError) -> NfownerConfig {
    try ConfigLoader.parse(text, file: "test.toml")
}

@Suite struct RoundTrip {
    @Test func defaultsRoundTrip() throws {
        let config = NfownerConfig()
        #expect(try parse(config.renderTOML()) == config)
    }

    @Test func randomConfigsRoundTrip() throws {
        var random = SeededGenerator(state: 0x6E66_6F77_6E65_72)
        for _ in 0..<300 {
            let config = randomConfig(&random)
            let text = config.renderTOML()
            let parsed: NfownerConfig
            do {
                parsed = try parse(text)
            } catch {
                Issue.record("\(error)\n\(text)")
                continue
            }
            #expect(parsed == config, "\(text)")
        }
    }

    private func randomConfig(_ random: inout SeededGenerator) -> NfownerConfig {
        var config = NfownerConfig()
        config.nflog.groups = unique(count: Int.random(in: 1...8, using: &random), &random) {
            UInt16.random(in: 0...65535, using: &$0)
        }
        config.nflog.snaplen = UInt32.random(in: 1...65535, using: &random)
        config.nflog.queueThreshold = UInt16.random(in: 1...65535, using: &random)
        config.nflog.flushTimeout = UInt32.random(in: 1...6000, using: &random)
        config.nflog.receiveBuffer = Int.random(in: 65536...(1 << 30), using: &random)
        config.nflog.coalesceMicroseconds = UInt32.random(in: 0...100_000, using: &random)
        config.hooks.input = Bool.random(using: &random)
        config.select.users = unique(count: Int.random(in: 0...4, using: &random), &random, principal)
        config.select.groups = unique(count: Int.random(in: 0...4, using: &random), &random, principal)
        config.select.cgroups = unique(count: Int.random(in: 0...4, using: &random), &random, cgroup)
        config.cgroups.levels = unique(count: Int.random(in: 0...5, using: &random), &random) {
            Int.random(in: 1...16, using: &$0)
        }
        config.cgroups.follow = Bool.random(using: &random)
        return config
    }

    private func unique<T: Equatable>(count: Int, _ random: inout SeededGenerator,
                                      _ make: (inout SeededGenerator) -> T) -> [T] {
        var result: [T] = []
        for _ in 0..<(count * 4) where result.count < count {
            let value = make(&random)
            if !result.contains(value) { result.append(value) }
        }
        return result
    }

    /// Names include TOML-special characters (quote, backslash, #, =, brackets) and non-ASCII.
    private func name(_ random: inout SeededGenerator) -> String {
        let alphabet = Array("abcXYZ09_-.@ \"\\#=[]{},é中🙂$")
        var text = String((0..<Int.random(in: 1...12, using: &random)).map { _ in
            alphabet.randomElement(using: &random) ?? "a"
        })
        if text.allSatisfy({ ("0"..."9").contains($0) }) { text += "x" }
        return text
    }

    private func principal(_ random: inout SeededGenerator) -> Principal {
        Bool.random(using: &random)
            ? .id(UInt32.random(in: 0...(UInt32.max - 1), using: &random))
            : .name(String(name(&random).filter { $0 != "/" }).nonEmpty)
    }

    /// Cgroup components without the characters the loader refuses, and never "", "." or "..".
    private func cgroup(_ random: inout SeededGenerator) -> CgroupSelector {
        let parts = (0..<Int.random(in: 1...4, using: &random)).map { _ in
            "c" + String(name(&random).filter { $0 != "\"" && $0 != "/" })
        }
        if Bool.random(using: &random) {
            return CgroupSelector(kind: .unit, value: parts[0] + [".service", ".scope", ".slice"][Int.random(in: 0...2, using: &random)])
        }
        return CgroupSelector(kind: .path, value: parts.joined(separator: "/"))
    }
}

private extension String {
    var nonEmpty: String { isEmpty || allSatisfy({ ("0"..."9").contains($0) }) ? self + "x" : self }
}

@Suite struct Fuzz {
    /// Every prefix of the default file must parse or throw, never trap.
    @Test func everyTruncationOfTheDefaultFile() {
        let text = NfownerConfig.embeddedDefaultTOML
        var parsed = 0, failed = 0
        for length in 0...text.unicodeScalars.count {
            var prefix = String.UnicodeScalarView()
            prefix.append(contentsOf: text.unicodeScalars.prefix(length))
            do {
                _ = try parse(String(prefix))
                parsed += 1
            } catch {
                failed += 1
                #expect(!error.reason.isEmpty)
            }
        }
        #expect(parsed > 0 && failed > 0)
    }

    /// Random mutations of the default file (replace, insert, delete, duplicate or drop lines)
    /// must parse or throw, never trap; whatever parses must round-trip through renderTOML.
    @Test func mutatedDefaultFiles() {
        var random = SeededGenerator(state: 42)
        let pieces: [String] = ["\"", "'", "[", "]", "=", ",", "\n", "#", ".", "-", "0", "1e9", "99999999999",
                                "true", "{", "}", "\\", "\\u0000", "é", "[[", "\"\"\"", " ", "\t", "\r", "🙂"]
        let base = Array(NfownerConfig.embeddedDefaultTOML.unicodeScalars)
        for _ in 0..<1500 {
            var scalars = base
            for _ in 0..<Int.random(in: 1...4, using: &random) {
                let position = Int.random(in: 0...scalars.count, using: &random)
                let piece = Array((pieces.randomElement(using: &random) ?? "x").unicodeScalars)
                switch Int.random(in: 0...3, using: &random) {
                case 0 where position < scalars.count:
                    scalars.replaceSubrange(position..<(position + 1), with: piece)
                case 1:
                    scalars.insert(contentsOf: piece, at: position)
                case 2 where position < scalars.count:
                    scalars.removeSubrange(position..<min(scalars.count, position + Int.random(in: 1...20, using: &random)))
                default:
                    var lines = string(scalars).split(separator: "\n", omittingEmptySubsequences: false)
                    let index = Int.random(in: 0..<lines.count, using: &random)
                    if Bool.random(using: &random) { lines.insert(lines[index], at: index) } else { lines.remove(at: index) }
                    scalars = Array(lines.joined(separator: "\n").unicodeScalars)
                }
            }
            let text = string(scalars)
            do {
                let config = try parse(text)
                #expect(try parse(config.renderTOML()) == config, "\(text)")
            } catch {
                #expect(!error.description.contains("\n"), "\(error)")
            }
        }
    }

    private func string(_ scalars: [Unicode.Scalar]) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}
