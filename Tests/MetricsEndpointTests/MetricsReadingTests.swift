import Accounting
@testable import MetricsEndpoint
import Sinks
import Testing

/// The client side of `/metrics` (what `top --from` reads): the text format, the HTTP reply,
/// the URL, and the totals rebuilt from a scrape.
@Suite struct ExpositionTextTests {
    @Test func readsNamesLabelsEscapesValuesAndTimestamps() throws {
        let text = """
            # HELP nfowner_bytes_total Bytes.
            # TYPE nfowner_bytes_total counter
            nfowner_bytes_total{unit="a \\"b\\"",user="c\\\\d",program="e\\nf",direction="out",proto="tcp"} 1234
            nfowner_lost_packets_total 7 1733400000000

            up{job="x",} +Inf
            weird:name_1  NaN
            neg -1.5e3
            """
        let samples = try ExpositionText.samples(Array(text.utf8))
        #expect(samples.count == 5)
        #expect(samples[0] == MetricSample(name: "nfowner_bytes_total",
                                           labels: ["unit": "a \"b\"", "user": "c\\d", "program": "e\nf",
                                                    "direction": "out", "proto": "tcp"], value: 1234))
        #expect(samples[1] == MetricSample(name: "nfowner_lost_packets_total", value: 7))
        #expect(samples[2].labels == ["job": "x"] && samples[2].value == .infinity)
        #expect(samples[3].name == "weird:name_1" && samples[3].value.isNaN)
        #expect(samples[4].value == -1500)
    }

    @Test(arguments: [
        ("x{a=\"1\" 2", "line 1: expected , or } after label a of x"),
        ("x{a=1} 2", "line 1: the value of label a is not quoted"),
        ("x{a=\"1\\q\"} 2", "line 1: label a: unknown escape \\q"),
        ("ok 1\nx 1 2 3", "line 2: unexpected text after the value of x"),
        ("x", "line 1: x has no value"),
        ("x inf", "line 1: x: 'inf' is not a number"),
        ("x{a=\"1", "line 1: the value of label a is not closed with \""),
        ("1x 2", "line 1: expected a metric name"),
        ("x 1 12.5", "line 1: x: '12.5' is not a timestamp"),
    ] as [(String, String)])
    func malformedLinesAreNamed(text: String, message: String) {
        #expect(throws: ExpositionParseError.self) { try ExpositionText.samples(Array(text.utf8)) }
        do {
            _ = try ExpositionText.samples(Array(text.utf8))
        } catch {
            #expect(error.description == message)
        }
    }

    /// Random and mutated scrapes: every input gives samples or a typed error, never a trap.
    @Test func fuzzNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let seed = Array("""
            # TYPE nfowner_bytes_total counter
            nfowner_bytes_total{unit="web.service",user="alice",direction="out",proto="tcp"} 4000
            nfowner_lost_packets_total 3

            """.utf8)
        var parsed = 0
        for round in 0..<20_000 {
            var bytes = seed
            if round % 2 == 0 {
                bytes = (0..<Int.random(in: 0...80, using: &generator)).map { _ in
                    Array("{}=\",\\ \n#x1.".utf8 + [UInt8.random(in: 0...255, using: &generator)]).randomElement(using: &generator)!
                }
            } else {
                for _ in 0..<Int.random(in: 1...4, using: &generator) {
                    bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
                }
                bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
            }
            if let samples = try? ExpositionText.samples(bytes) {
                parsed += 1
                #expect(samples.allSatisfy { !$0.name.isEmpty })
            }
        }
        #expect(parsed > 0)
    }
}

@Suite struct HTTPReplyTests {
    @Test func takesTheBodyByContentLengthOrUpToTheClose() throws {
        let reply = try HTTPReply.parse(Array("HTTP/1.1 200 OK\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabcdef".utf8))
        #expect(reply == HTTPReply(status: 200, body: Array("abc".utf8)))
        let open = try HTTPReply.parse(Array("HTTP/1.0 404 Not Found\r\n\r\nnot here".utf8))
        #expect(open == HTTPReply(status: 404, body: Array("not here".utf8)))
    }

    @Test(arguments: [
        "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nshort",
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
        "SSH-2.0-OpenSSH\r\n\r\n",
        "HTTP/1.1 200 OK\r\nContent-Length: 3",
        "HTTP/1.1 200 OK\r\nno colon\r\n\r\n",
        "",
    ])
    func malformedRepliesAreErrors(text: String) {
        #expect(throws: HTTPReply.ParseError.self) { try HTTPReply.parse(Array(text.utf8)) }
    }

    @Test func fuzzNeverTraps() {
        var generator = SystemRandomNumberGenerator()
        let seed = Array("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello".utf8)
        for _ in 0..<20_000 {
            var bytes = seed
            for _ in 0..<Int.random(in: 1...4, using: &generator) {
                bytes[Int.random(in: 0..<bytes.count, using: &generator)] = UInt8.random(in: 0...255, using: &generator)
            }
            bytes = Array(bytes.prefix(Int.random(in: 0...bytes.count, using: &generator)))
            if let reply = try? HTTPReply.parse(bytes) {
                #expect((100...599).contains(reply.status) && reply.body.count <= bytes.count)
            }
        }
    }
}

@Suite struct MetricsURLTests {
    @Test func acceptsTheDaemonsListenAddressesWithOrWithoutSchemeAndPath() throws {
        #expect(try MetricsURL("http://127.0.0.1:9465").description == "http://127.0.0.1:9465/metrics")
        #expect(try MetricsURL("127.0.0.1:9465").description == "http://127.0.0.1:9465/metrics")
        #expect(try MetricsURL("localhost:9465/other").description == "http://127.0.0.1:9465/other")
        let v6 = try MetricsURL("http://[::1]:9465/metrics")
        #expect(v6.isIPv6 && v6.host == "::1" && v6.port == 9465)
    }

    @Test(arguments: ["https://127.0.0.1:9465", "http://example.org:80", "http://127.0.0.1", "127.0.0.1:0",
                      "http://[::1:9465", "http://127.0.0.1:9465/a b", "http://1.2.3.999:1"])
    func refusesWhatItCannotReach(text: String) {
        #expect(throws: MetricsURL.ParseError.self) { try MetricsURL(text) }
    }
}

@Suite struct MetricsSnapshotReaderTests {
    /// The exporter's own text, read back: the same series and counts, kept at their positions
    /// across scrapes while new series are appended.
    @Test func readsBackWhatTheExporterRenders() throws {
        let exporter = PrometheusExporter()
        var snapshot = PrometheusExporterTests.snapshot(bytes: 1000, packets: 2)
        var reader = MetricsSnapshotReader()
        let first = try reader.read(ExpositionText.samples(exporter.render(snapshot: snapshot,
                                                                           figures: .init(lostPackets: 5, parseErrors: 0))))
        #expect(first.lostPackets == 5)
        #expect(first.snapshot.series.count == 2)
        #expect(first.hasRemotes == false && first.hasCgroups == false)
        let curl = try #require(first.snapshot.series.firstIndex { $0.program == "/usr/bin/curl" })
        #expect(first.snapshot.counts[curl] == AccountingCounts(bytes: 1000, packets: 2, flows: 1))
        #expect(first.snapshot.activeFlows == 3)

        snapshot.series.append(MetricSeries(unit: "x.service", user: "bob", program: "/bin/x", direction: .out,
                                            proto: "udp", remote: "192.0.2.7"))
        snapshot.counts.append(AccountingCounts(bytes: 50, packets: 1, flows: 1))
        snapshot.counts[0].bytes = 3000
        let second = try reader.read(ExpositionText.samples(exporter.render(snapshot: snapshot,
                                                                            figures: .init(lostPackets: 6, parseErrors: 0))))
        #expect(second.snapshot.series.count == 3)
        #expect(second.snapshot.series[curl] == first.snapshot.series[curl], "a series keeps its position")
        #expect(second.snapshot.counts[curl].bytes == 3000)
        #expect(second.snapshot.series[2].remote == "192.0.2.7" && second.hasRemotes)
        #expect(second.snapshot.total.bytes == 3000 + 84 + 50)
    }

    @Test func anotherProgramsMetricsAreRefused() throws {
        var reader = MetricsSnapshotReader()
        let samples = try ExpositionText.samples(Array("process_cpu_seconds_total 12\nup 1\n".utf8))
        #expect(throws: MetricsSnapshotReader.ReadError.notNfowner) { try reader.read(samples) }
    }
}
