import Accounting
import Foundation
import History
import TestSupport
import Testing

/// `report --format html` as users see it: the page the built binary writes from a real history
/// file, rendered by headless Chromium (Debian's, installed by scripts/install-dependencies.sh).
/// The rendered DOM must hold both charts with their bars and legends, the console must show no
/// error (the page has no script; its Content Security Policy forbids scripts and network), and
/// the screenshot must show the chart colours. No root needed; nested in EndToEnd so that
/// Chromium's bursts of CPU do not disturb the timing-sensitive suites running beside it.
extension EndToEnd {
@Suite struct HTMLReportEndToEndTests {
    static let chromium = "/usr/bin/chromium"

    /// An hour of one-minute buckets: ten units sending (unit N sends N KiB a minute, unit 0
    /// has a name that must be escaped), three receiving, and 9 lost packets.
    /// `seconds` since the epoch as RFC 3339 in UTC, one of the forms `report --since` takes.
    static func rfc3339(_ seconds: Int64) -> String {
        let formatter = ISO8601DateFormatter()
        formatter.timeZone = TimeZone(identifier: "UTC")
        return formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds)))
    }

    /// Returns the totals each way and the first bucket's start.
    static func writeHour(to path: String, now: Int64) throws -> (out: UInt64, in: UInt64, first: Int64) {
        let store = try HistoryStore(path: path)
        let first = now / 60 * 60 - 59 * 60
        var sent: UInt64 = 0, received: UInt64 = 0
        var buckets: [TrafficBucket] = []
        for minute in 0..<60 {
            var rows: [AccountingKey: AccountingCounts] = [:]
            for unit in 0..<10 {
                let name = unit == 0 ? "<script>alert(1)</script>.service" : "unit\(unit).service"
                let bytes = UInt64(unit + 1) * 1024 * UInt64(1 + minute % 7)
                rows[AccountingKey(unit: name, user: "u\(unit)", direction: .out, proto: "tcp")] =
                    AccountingCounts(bytes: bytes, packets: 10, flows: 1)
                sent += bytes
            }
            for unit in 1...3 {
                let bytes = UInt64(unit) * 4096
                rows[AccountingKey(unit: "unit\(unit).service", user: "u\(unit)", direction: .in, proto: "tcp")] =
                    AccountingCounts(bytes: bytes, packets: 5, flows: 0)
                received += bytes
            }
            buckets.append(TrafficBucket(start: first + Int64(minute) * 60, seconds: 60, rows: rows,
                                         unaccountedPackets: minute == 30 ? 9 : 0))
        }
        try store.write(buckets)
        try store.close()
        return (sent, received, first)
    }

    @Test func chromiumRendersBothChartsWithoutErrors() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.chromium),
                     "\(Self.chromium) is missing: run scripts/install-dependencies.sh (it installs Debian's chromium)")
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-html-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let database = directory.appendingPathComponent("history.db").path
        let totals = try Self.writeHour(to: database, now: Int64(Date().timeIntervalSince1970))

        // The hour the buckets cover, given exactly: `--since 1h` measured from the report's own
        // start dropped the first bucket when a minute began between writing and reporting.
        let report = try Harness.run(Harness.nfowner, ["report", "--db", database, "--since", Self.rfc3339(totals.first),
                                                       "--until", Self.rfc3339(totals.first + 3600), "--by", "unit",
                                                       "--format", "html"])
        #expect(report.status == 0, "\(report.stderr)")
        let html = report.stdout
        let page = directory.appendingPathComponent("report.html")
        try html.write(to: page, atomically: true, encoding: .utf8)
        // Self-contained and safe: no script, no external reference, the unit name escaped.
        #expect(!html.lowercased().contains("<script"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;.service"))
        #expect(!html.contains("src=") && !html.contains("href="))
        #expect(html.contains("default-src 'none'"))
        #expect(html.contains("<dd id=\"unaccounted\">9 packets</dd>"))

        // The DOM after Chromium has loaded and laid it out, and its console.
        let profile = directory.appendingPathComponent("profile").path
        let common = ["90", Self.chromium, "--headless", "--no-sandbox", "--disable-gpu", "--user-data-dir=\(profile)",
                      "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]
        let dump = try Harness.run("/usr/bin/timeout", common + ["--dump-dom", page.absoluteString])
        #expect(dump.status == 0, "chromium --dump-dom: \(dump.stderr.suffix(2000))")
        let consoleErrors = dump.stderr.split(separator: "\n").filter {
            $0.contains("CONSOLE") || $0.contains("Uncaught") || $0.contains("Refused to")
        }
        #expect(consoleErrors.isEmpty, "console: \(consoleErrors)")
        let dom = dump.stdout
        #expect(dom.components(separatedBy: "<svg class=\"chart\"").count - 1 == 2, "two charts")
        let outSection = try #require(Self.section("out", of: dom))
        let inSection = try #require(Self.section("in", of: dom))
        // Out: 8 named units and "other (2 groups)", 60 bars of 9 segments; in: 3 units, 60 × 3.
        #expect(outSection.components(separatedBy: "<li>").count - 1 == 9)
        #expect(outSection.contains("other (2 groups)"))
        #expect(outSection.components(separatedBy: "<rect ").count - 1 == 60 * 9)
        #expect(inSection.components(separatedBy: "<li>").count - 1 == 3)
        #expect(inSection.components(separatedBy: "<rect ").count - 1 == 60 * 3)
        // The headings carry the exact totals in human units, as the table does.
        #expect(outSection.contains(Self.human(totals.out)), "out total \(totals.out)")
        #expect(inSection.contains(Self.human(totals.in)), "in total \(totals.in)")

        // The picture: a PNG whose pixels include the first series' colours of both charts.
        let picture = directory.appendingPathComponent("report.png").path
        let shot = try Harness.run("/usr/bin/timeout", common + ["--window-size=1100,1500", "--screenshot=\(picture)",
                                                                 page.absoluteString])
        #expect(shot.status == 0, "chromium --screenshot: \(shot.stderr.suffix(2000))")
        let colours = try Harness.run("/usr/bin/python3", ["-c", Self.pngColourCounter, picture])
        #expect(colours.status == 0, "\(colours.stderr)")
        let counts = Harness.keyValues(colours.stdout)
        // #4e79a7 (first series), #f28e2b (second), #9d9d9d ("other"), each a visible area.
        for colour in ["4e79a7", "f28e2b", "9d9d9d"] {
            #expect(Int(counts[colour] ?? "") ?? 0 > 500, "pixels of #\(colour): \(colours.stdout)")
        }
        if let keep = ProcessInfo.processInfo.environment["NFOWNER_KEEP_HTML_REPORT"] {
            try? FileManager.default.removeItem(atPath: keep)
            try FileManager.default.copyItem(atPath: picture, toPath: keep)
        }
    }

    static func section(_ id: String, of dom: String) -> String? {
        guard let start = dom.range(of: "<section class=\"direction\" id=\"\(id)\"") else { return nil }
        guard let end = dom.range(of: "</section>", range: start.upperBound..<dom.endIndex) else { return nil }
        return String(dom[start.lowerBound..<end.upperBound])
    }

    static func human(_ bytes: UInt64) -> String {
        let mebibytes = Double(bytes) / 1_048_576
        return String(format: "%.1f MiB", mebibytes)
    }

    /// Decodes an 8-bit RGB or RGBA, non-interlaced PNG (what Chromium writes) with the standard
    /// library alone and prints `RRGGBB=count` for the colours asked about.
    static let pngColourCounter = #"""
        import struct, sys, zlib
        data = open(sys.argv[1], "rb").read()
        assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
        pos, idat = 8, b""
        while pos < len(data):
            length, kind = struct.unpack(">I4s", data[pos:pos + 8])
            body = data[pos + 8:pos + 8 + length]
            if kind == b"IHDR":
                width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", body)
            elif kind == b"IDAT":
                idat += body
            pos += 12 + length
        assert depth == 8 and colour in (2, 6) and interlace == 0, (depth, colour, interlace)
        channels = 3 if colour == 2 else 4
        raw, stride = zlib.decompress(idat), width * channels
        previous, counts, at = bytearray(stride), {}, 0
        for _ in range(height):
            kind, line = raw[at], bytearray(raw[at + 1:at + 1 + stride]); at += 1 + stride
            for i in range(stride):
                a = line[i - channels] if i >= channels else 0
                b = previous[i]
                c = previous[i - channels] if i >= channels else 0
                if kind == 1: line[i] = (line[i] + a) & 255
                elif kind == 2: line[i] = (line[i] + b) & 255
                elif kind == 3: line[i] = (line[i] + (a + b) // 2) & 255
                elif kind == 4:
                    p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                    line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            for i in range(0, stride, channels):
                key = "%02x%02x%02x" % (line[i], line[i + 1], line[i + 2])
                counts[key] = counts.get(key, 0) + 1
            previous = line
        print(" ".join("%s=%d" % (k, counts.get(k, 0)) for k in ("4e79a7", "f28e2b", "9d9d9d")), "width=%d height=%d" % (width, height))
        """#
}
}
