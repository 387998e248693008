import Foundation
@testable import Reports
import Testing

@Suite struct ReportTimeTests {
    static let now: Int64 = 1_764_936_000 // 2025-12-05T12:00:00Z

    @Test(arguments: [
        ("now", 0), ("90s", 90), ("30m", 1800), ("1h", 3600), ("2d", 172_800), ("1w", 604_800),
        ("1h30m", 5400), (" 1h ", 3600), ("0s", 0),
    ] as [(String, Int64)])
    func relativeTimesCountBackFromNow(text: String, secondsBefore: Int64) throws {
        #expect(try ReportTime.parse(text, now: Self.now) == Self.now - secondsBefore)
    }

    @Test(arguments: [
        ("2025-12-05", "2025-12-05T00:00:00Z"),
        ("2025-12-05 14:30", "2025-12-05T14:30:00Z"),
        ("2025-12-05 14:30:15", "2025-12-05T14:30:15Z"),
        ("2025-12-05T14:30:15", "2025-12-05T14:30:15Z"),
        ("2025-12-05T14:30:15Z", "2025-12-05T14:30:15Z"),
        ("2025-12-05T14:30:15.750Z", "2025-12-05T14:30:15Z"),
        ("2025-12-05T15:30:15+01:00", "2025-12-05T14:30:15Z"),
        ("2025-12-05T09:00:15-05:30", "2025-12-05T14:30:15Z"),
        ("2024-02-29", "2024-02-29T00:00:00Z"),
        ("1970-01-01", "1970-01-01T00:00:00Z"),
    ])
    func absoluteTimesAreUTCUnlessAnOffsetIsGiven(text: String, expected: String) throws {
        let parsed = try ReportTime.parse(text, now: Self.now)
        let reference = try #require(ISO8601DateFormatter().date(from: expected))
        #expect(parsed == Int64(reference.timeIntervalSince1970))
        #expect(ReportTime.rfc3339(parsed) == expected)
    }

    @Test(arguments: [
        "", "yesterday", "1x", "h", "1h30", "-1h", "2025-13-01", "2025-02-29", "2025-12-05 25:00",
        "2025-12-05T14:30:15+0100", "2025-12-05 14", "2025-12-05T14:30:15Zjunk", "99999999999999999999s",
    ])
    func anythingElseIsRefusedWithTheSyntax(text: String) {
        #expect(throws: ReportTime.ParseError.self) { try ReportTime.parse(text, now: Self.now) }
        #expect(ReportTime.ParseError(text: text).description.contains("1h30m"))
    }

    /// The calendar arithmetic agrees with Foundation's over a wide spread of instants.
    @Test func formattingAgreesWithFoundation() {
        let formatter = ISO8601DateFormatter()
        var seconds: Int64 = -86400 * 366 * 3
        while seconds < 4_102_444_800 { // 2100-01-01
            #expect(ReportTime.rfc3339(seconds) == formatter.string(from: Date(timeIntervalSince1970: TimeInterval(seconds))))
            seconds += 7_777_777
        }
    }

    @Test func durationsAreWrittenInTheRelativeSyntax() {
        #expect(ReportTime.durationText(3600) == "1h")
        #expect(ReportTime.durationText(5400) == "1h30m")
        #expect(ReportTime.durationText(90061) == "1d1h1m1s")
        #expect(ReportTime.durationText(0) == "0s")
    }
}
