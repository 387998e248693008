import Policy
import Testing

/// The parser reads untrusted files: every prefix and random mutations of a full policy must be
/// accepted or refused with errors — never trap — and every message must be one line.
@Suite struct PolicyFuzz {
    static let sample = """
        default = "deny"
        mode = "enforce"
        fail = "closed"
        directions = ["out", "in"]

        [[rule]]
        name = "web-only"
        action = "allow"
        log = true
        uid = [1000]
        user = ["alice"]
        unit = "nginx.service"
        cgroup = ["/system.slice"]
        exe = ["/usr/bin/curl", "*/wget"]
        comm = "curl"
        proto = ["tcp", 17]
        dst = ["10.0.0.0/8", "2001:db8::/32"]
        dst_port = [8080, "8000-8100"]
        icmp_type = ["echo-request", 0]

        [[rule]]
        action = "reject"
        src = "192.0.2.1"
        """

    @Test func everyPrefix() {
        var parsed = 0, refused = 0
        let scalars = Array(Self.sample.unicodeScalars)
        for length in 0...scalars.count {
            let result = PolicyParser.parse(string(scalars.prefix(length)), file: "f")
            if result.policy != nil { parsed += 1 } else { refused += 1 }
            for error in result.errors { #expect(!error.description.contains("\n")) }
        }
        #expect(parsed > 0 && refused > 0)
    }

    @Test func mutations() {
        var random = SplitMix(state: 15)
        let pieces = ["\"", "'", "[", "]", "[[", "]]", "=", ",", "\n", "#", ".", "-", "/", "0", "-1", "99999999999",
                      "true", "{", "}", "\\", "\\u0000", "é", "\"\"\"", " ", "*", "?", "::", "/129", "65536", "🙂",
                      "rule", "action", "dst_port"]
        let base = Array(Self.sample.unicodeScalars)
        for _ in 0..<1500 {
            var scalars = base
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
            let result = PolicyParser.parse(string(scalars[...]), file: "f")
            #expect((result.policy == nil) == !result.errors.isEmpty)
            for error in result.errors { #expect(!error.description.contains("\n"), "\(error)") }
        }
    }

    private func string(_ scalars: ArraySlice<Unicode.Scalar>) -> String {
        var view = String.UnicodeScalarView()
        view.append(contentsOf: scalars)
        return String(view)
    }
}

struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
