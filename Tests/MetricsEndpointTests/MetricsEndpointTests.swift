import Accounting
import Foundation
@testable import MetricsEndpoint
import Sinks
import TestSupport
import Testing

@Suite struct HTTPRequestHeadTests {
    @Test(arguments: [
        ("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n", "GET", "/metrics"),
        ("GET /metrics?x=1 HTTP/1.0\r\n\r\n", "GET", "/metrics"),
        ("HEAD / HTTP/1.1\n\n", "HEAD", "/"),
    ])
    func parsesARequestLine(text: String, method: String, path: String) {
        #expect(HTTPRequestHead.parse(Array(text.utf8)) == .complete(HTTPRequestHead(method: method, path: path)))
    }

    @Test(arguments: ["GET /metrics HTTP/1.1\r\nHost: x\r\n", "GET /met", ""])
    func waitsForTheBlankLine(text: String) {
        #expect(HTTPRequestHead.parse(Array(text.utf8)) == .incomplete)
    }

    @Test(arguments: ["get / HTTP/1.1\r\n\r\n", "GET / SPDY/3\r\n\r\n", "GET  / HTTP/1.1\r\n\r\n", "GET /\r\n\r\n",
                      "GET /a b HTTP/1.1\r\n\r\n", "\r\n\r\n"])
    func refusesWhatIsNotAnHTTP1RequestLine(text: String) {
        #expect(HTTPRequestHead.parse(Array(text.utf8)) == .malformed)
    }

    @Test func anOverlongHeadIsMalformedNotAWait() {
        let long = Array("GET / HTTP/1.1\r\nX: ".utf8) + [UInt8](repeating: 0x61, count: HTTPRequestHead.maximumBytes)
        #expect(HTTPRequestHead.parse(long) == .malformed)
    }

    /// Random and mutated heads: every input gives an answer, none traps.
    @Test func fuzzNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let seed = Array("GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        var complete = 0
        for round in 0..<20_000 {
            var bytes = seed
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...64, using: &generator)).map { _ in
                    [0x0D, 0x0A, 0x20, 0x47, 0x2F, UInt8.random(in: 0...255, using: &generator)].randomElement(using: &generator)!
                }
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    let index = Int.random(in: 0..<bytes.count, using: &generator)
                    bytes[index] = UInt8.random(in: 0...255, using: &generator)
                }
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
            }
            if case .complete(let head) = HTTPRequestHead.parse(bytes) {
                complete += 1
                #expect(!head.method.isEmpty && head.path.utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F })
            }
        }
        #expect(complete > 0, "some mutated heads still parse")
    }
}

@Suite struct PrometheusExporterTests {
    static func snapshot(bytes: UInt64, packets: UInt64) -> AccountingSnapshot {
        AccountingSnapshot(
            series: [MetricSeries(unit: "web.service", user: "alice", program: "/usr/bin/curl", direction: .out,
                                  proto: "tcp", remote: ""),
                     MetricSeries(unit: "", user: "", program: "", direction: .in, proto: "icmp", remote: "")],
            counts: [AccountingCounts(bytes: bytes, packets: packets, flows: 1), AccountingCounts(bytes: 84, packets: 1)],
            total: AccountingCounts(), unaccounted: 0, activeFlows: 3)
    }

    /// `name{labels} value` lines of the text format, by series.
    static func samples(_ text: String) -> [String: Double] {
        var result: [String: Double] = [:]
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                Issue.record("not a sample line: \(line)")
                continue
            }
            result[String(line[..<space])] = value
        }
        return result
    }

    @Test func rendersEverySeriesAndCountsOnlyUpwards() {
        let exporter = PrometheusExporter()
        _ = exporter.render(snapshot: Self.snapshot(bytes: 1000, packets: 2),
                            figures: .init(lostPackets: 5, parseErrors: 1))
        let text = String(decoding: exporter.render(snapshot: Self.snapshot(bytes: 4000, packets: 5),
                                                    figures: .init(lostPackets: 7, parseErrors: 1)), as: UTF8.self)
        let samples = Self.samples(text)
        let labels = #"{unit="web.service",user="alice",program="/usr/bin/curl",direction="out",proto="tcp"}"#
        #expect(samples["nfowner_bytes_total" + labels] == 4000)
        #expect(samples["nfowner_packets_total" + labels] == 5)
        #expect(samples["nfowner_flows_total" + labels] == 1)
        #expect(samples[#"nfowner_bytes_total{unit="",user="",program="",direction="in",proto="icmp"}"#] == 84)
        #expect(samples["nfowner_lost_packets_total"] == 7)
        #expect(samples["nfowner_parse_errors_total"] == 1)
        #expect(samples["nfowner_flows_active"] == 3)
        #expect(text.contains("# TYPE nfowner_bytes_total counter"))
        #expect(!text.contains("pid"))
        #expect(!text.contains("nfowner_enforce"), "no enforce series when nothing is enforced")
    }

    /// Enforce mode's decisions (the daemon with a policy): by action, from the first scrape (0s
    /// included), counting only upwards.
    @Test func rendersEnforceDecisionsByAction() {
        let exporter = PrometheusExporter()
        func render(_ allow: UInt64, _ deny: UInt64, _ reject: UInt64) -> [String: Double] {
            let figures = PrometheusExporter.EnforceFigures(allow: allow, deny: deny, reject: reject,
                                                            unknownProcess: 1, auditEvents: reject)
            return Self.samples(String(decoding: exporter.render(snapshot: AccountingSnapshot(),
                                                                 figures: .init(lostPackets: 0, parseErrors: 0, enforce: figures)),
                                       as: UTF8.self))
        }
        let first = render(3, 0, 0)
        #expect(first[#"nfowner_enforce_decisions_total{action="allow"}"#] == 3)
        #expect(first[#"nfowner_enforce_decisions_total{action="deny"}"#] == 0)
        #expect(first[#"nfowner_enforce_decisions_total{action="reject"}"#] == 0)
        let second = render(5, 1, 2)
        #expect(second[#"nfowner_enforce_decisions_total{action="allow"}"#] == 5)
        #expect(second[#"nfowner_enforce_decisions_total{action="deny"}"#] == 1)
        #expect(second[#"nfowner_enforce_decisions_total{action="reject"}"#] == 2)
        #expect(second["nfowner_enforce_unknown_process_total"] == 1)
        #expect(second["nfowner_enforce_audit_events_total"] == 2)
    }
}

@Suite struct MetricsServerTests {
    /// A real client (curl) scrapes a real socket.
    @Test func servesMetricsToCurlAndRefusesTheRest() throws {
        let server = try MetricsServer(host: "127.0.0.1", port: 0, ipv6: false) { Array("nfowner_up 1\n".utf8) }
        try server.start()
        defer { server.stop() }
        let base = "http://127.0.0.1:\(server.port)"
        let scrape = try Command.run("/usr/bin/curl", ["-sS", "-i", base + "/metrics"]).check("curl /metrics")
        #expect(scrape.stdout.hasPrefix("HTTP/1.1 200 OK"))
        #expect(scrape.stdout.contains("Content-Type: text/plain; version=0.0.4"))
        #expect(scrape.stdout.hasSuffix("\r\n\r\nnfowner_up 1\n"))
        let missing = try Command.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", base + "/nope"])
        #expect(missing.stdout == "404")
        let post = try Command.run("/usr/bin/curl", ["-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST",
                                                     base + "/metrics"])
        #expect(post.stdout == "405")
    }

    @Test func aTakenPortIsAClearError() throws {
        let first = try MetricsServer(host: "127.0.0.1", port: 0, ipv6: false) { [] }
        defer { first.stop() }
        #expect {
            _ = try MetricsServer(host: "127.0.0.1", port: first.port, ipv6: false) { [] }
        } throws: { error in
            "\(error)".contains("bind TCP 127.0.0.1:\(first.port)") && "\(error)".contains("in use")
        }
    }
}
