import Accounting
import Foundation
@testable import Reports
import Testing

@Suite struct ReportRenderingTests {
    /// 2025-12-05 11:00 to 12:00 UTC, by unit and program; one unknown program, one program
    /// path that needs CSV quoting, one row in each direction.
    static let result = ReportResult(
        since: 1_764_932_400, until: 1_764_936_000, dimensions: [.unit, .program],
        rows: [
            ReportRow(keys: ["sshd.service", ""], direction: .in, mode: .packets,
                      counts: AccountingCounts(bytes: 2048, packets: 20, flows: 1)),
            ReportRow(keys: ["nginx.service", "/usr/sbin/nginx"], direction: .out, mode: .packets,
                      counts: AccountingCounts(bytes: 1_572_864, packets: 1100, flows: 12)),
            ReportRow(keys: ["", "/opt/a \"b\",c"], direction: .out, mode: .packets,
                      counts: AccountingCounts(bytes: 512, packets: 4, flows: 2)),
        ],
        unaccountedPackets: 7, modes: [.packets])

    @Test func tableIsAlignedSortedByBytesWithAHeaderLine() {
        let expected = """
            Traffic from 2025-12-05 11:00:00 to 2025-12-05 12:00:00 UTC (1h) by unit,program; counted from packets; unaccounted: 7 packets
            UNIT           PROGRAM          DIR    BYTES  PACKETS  FLOWS
            nginx.service  /usr/sbin/nginx  out  1.5 MiB     1100     12
            sshd.service   -                in   2.0 KiB       20      1
            -              /opt/a "b",c     out    512 B        4      2

            """
        #expect(ReportRendering.table(Self.result) == expected)
    }

    @Test func tableSaysWhenTheRangeIsEmptyAndShowsModesWhenMixed() {
        let empty = ReportResult(since: 0, until: 60, dimensions: [.user], rows: [])
        #expect(ReportRendering.table(empty) == """
            Traffic from 1970-01-01 00:00:00 to 1970-01-01 00:01:00 UTC (1m) by user; counted from none recorded; unaccounted: 0 packets
            No traffic recorded in this range.

            """)
        let mixed = ReportResult(since: 0, until: 60, dimensions: [.user], rows: [
            ReportRow(keys: ["alice"], direction: .out, mode: .kernel, counts: AccountingCounts(bytes: 10, packets: 1)),
            ReportRow(keys: ["alice"], direction: .out, mode: .packets, counts: AccountingCounts(bytes: 10, packets: 1)),
        ], modes: [.kernel, .packets])
        #expect(ReportRendering.table(mixed).contains("USER   DIR  MODE     BYTES  PACKETS  FLOWS\nalice  out  packets   10 B"))
        #expect(ReportRendering.table(mixed).contains("counted from packets and kernel"))
    }

    @Test func jsonIsTheDocumentedObject() throws {
        let text = ReportRendering.json(Self.result)
        #expect(text == """
            {"since":"2025-12-05T11:00:00Z","until":"2025-12-05T12:00:00Z","modes":["packets"],"rows":[\
            {"unit":"nginx.service","program":"/usr/sbin/nginx","direction":"out","mode":"packets","bytes":1572864,"packets":1100,"flows":12},\
            {"unit":"sshd.service","program":null,"direction":"in","mode":"packets","bytes":2048,"packets":20,"flows":1},\
            {"unit":null,"program":"/opt/a \\"b\\",c","direction":"out","mode":"packets","bytes":512,"packets":4,"flows":2}],\
            "unaccounted":7}

            """)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["since", "until", "modes", "rows", "unaccounted"])
        #expect(object["since"] as? String == "2025-12-05T11:00:00Z")
        #expect(object["unaccounted"] as? Int == 7)
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(rows.count == 3)
        for row in rows {
            #expect(Set(row.keys) == ["unit", "program", "direction", "mode", "bytes", "packets", "flows"])
        }
        #expect(rows[1]["program"] is NSNull)
        #expect(rows[2]["program"] as? String == "/opt/a \"b\",c")
        #expect(rows[0]["bytes"] as? Int == 1_572_864)
    }

    @Test func jsonEscapesControlCharacters() throws {
        let result = ReportResult(since: 0, until: 60, dimensions: [.program], rows: [
            ReportRow(keys: ["a\u{1}b\n\\"], direction: .out, mode: .packets, counts: AccountingCounts()),
        ])
        let text = ReportRendering.json(result)
        #expect(text.contains(#""program":"a\u0001b\n\\""#))
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(rows[0]["program"] as? String == "a\u{1}b\n\\")
    }

    @Test func csvIsRFC4180WithAHeaderRow() throws {
        let text = ReportRendering.csv(Self.result)
        #expect(text == "unit,program,direction,mode,bytes,packets,flows\r\n"
                + "nginx.service,/usr/sbin/nginx,out,packets,1572864,1100,12\r\n"
                + "sshd.service,,in,packets,2048,20,1\r\n"
                + ",\"/opt/a \"\"b\"\",c\",out,packets,512,4,2\r\n")
        let records = try Self.parseCSV(text)
        #expect(records.count == 4)
        #expect(records.allSatisfy { $0.count == 7 })
        #expect(records[3][1] == "/opt/a \"b\",c")
    }

    @Test func csvQuotesLineBreaks() throws {
        let result = ReportResult(since: 0, until: 60, dimensions: [.program, .user], rows: [
            ReportRow(keys: ["two\nlines", "x"], direction: .out, mode: .packets, counts: AccountingCounts(bytes: 1)),
        ])
        let records = try Self.parseCSV(ReportRendering.csv(result))
        #expect(records == [["program", "user", "direction", "mode", "bytes", "packets", "flows"],
                            ["two\nlines", "x", "out", "packets", "1", "0", "0"]])
    }

    @Test func humanBytesUseBinaryUnits() {
        #expect(ReportRendering.humanBytes(0) == "0 B")
        #expect(ReportRendering.humanBytes(1023) == "1023 B")
        #expect(ReportRendering.humanBytes(1024) == "1.0 KiB")
        #expect(ReportRendering.humanBytes(1536) == "1.5 KiB")
        #expect(ReportRendering.humanBytes(1024 * 1024 - 1) == "1.0 MiB")
        #expect(ReportRendering.humanBytes(5 * 1024 * 1024 * 1024) == "5.0 GiB")
        #expect(ReportRendering.humanBytes(UInt64.max) == "16.0 EiB")
    }

    @Test func rowsAreOrderedBiggestFirstThenByKey() {
        let rows = [
            ReportRow(keys: ["b"], direction: .out, mode: .packets, counts: AccountingCounts(bytes: 5, packets: 1)),
            ReportRow(keys: ["a"], direction: .in, mode: .packets, counts: AccountingCounts(bytes: 5, packets: 1)),
            ReportRow(keys: ["a"], direction: .out, mode: .packets, counts: AccountingCounts(bytes: 5, packets: 1)),
            ReportRow(keys: ["c"], direction: .out, mode: .packets, counts: AccountingCounts(bytes: 9, packets: 1)),
            ReportRow(keys: ["d"], direction: .out, mode: .packets, counts: AccountingCounts(bytes: 5, packets: 3)),
        ]
        let sorted = ReportResult(since: 0, until: 1, dimensions: [.unit], rows: rows).rows
        #expect(sorted.map { $0.keys[0] + $0.direction.rawValue } == ["cout", "dout", "aout", "ain", "bout"])
    }

    @Test func remoteEndpointsAreWrittenWithTheirPort() {
        #expect(RemoteEndpoint.text(address: "10.0.0.1", port: 443) == "10.0.0.1:443")
        #expect(RemoteEndpoint.text(address: "2001:db8::1", port: 53) == "[2001:db8::1]:53")
        #expect(RemoteEndpoint.text(address: "10.0.0.1", port: nil) == "10.0.0.1")
        #expect(RemoteEndpoint.text(address: "other", port: nil) == "other")
        #expect(RemoteEndpoint.text(address: "", port: nil) == "")
    }

    /// A strict RFC 4180 reader: CRLF records, quoted fields with doubled quotes.
    static func parseCSV(_ text: String) throws -> [[String]] {
        struct Malformed: Error {}
        var records: [[String]] = []
        var record: [String] = []
        var field = ""
        var quoted = false
        var characters = Array(text.unicodeScalars)[...]
        while let c = characters.popFirst() {
            if quoted {
                if c == "\"" {
                    if characters.first == "\"" { characters.removeFirst(); field.unicodeScalars.append("\"") } else { quoted = false }
                } else {
                    field.unicodeScalars.append(c)
                }
            } else if c == "\"" {
                guard field.isEmpty else { throw Malformed() }
                quoted = true
            } else if c == "," {
                record.append(field)
                field = ""
            } else if c == "\r" {
                guard characters.popFirst() == "\n" else { throw Malformed() }
                record.append(field)
                records.append(record)
                record = []
                field = ""
            } else if c == "\n" {
                throw Malformed()
            } else {
                field.unicodeScalars.append(c)
            }
        }
        guard !quoted, record.isEmpty, field.isEmpty else { throw Malformed() }
        return records
    }
}
