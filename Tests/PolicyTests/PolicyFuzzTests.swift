import Policy
import TestSupport
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
            let result = PolicyParser.parse(TextMutation.string(scalars.prefix(length)), file: "f")
            if result.policy != nil { parsed += 1 } else { refused += 1 }
            for error in result.errors { #expect(!error.description.contains("\n")) }
        }
        #expect(parsed > 0 && refused > 0)
    }

    @Test func mutations() {
        var random = SeededRandom(seed: 15)
        let pieces = ["\"", "'", "[", "]", "[[", "]]", "=", ",", "\n", "#", ".", "-", "/", "0", "-1", "99999999999",
                      "true", "{", "}", "\\", "\\u0000", "é", "\"\"\"", " ", "*", "?", "::", "/129", "65536", "🙂",
                      "rule", "action", "dst_port"]
        for _ in 0..<1500 {
            let text = TextMutation.mutate(Self.sample, pieces: pieces, using: &random)
            let result = PolicyParser.parse(text, file: "f")
            #expect((result.policy == nil) == !result.errors.isEmpty)
            for error in result.errors { #expect(!error.description.contains("\n"), "\(error)") }
        }
    }
}
