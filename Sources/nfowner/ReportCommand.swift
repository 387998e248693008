import ArgumentParser
import Configuration
import Foundation
import History
import Reports

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Report traffic from the history `nfowner run` keeps: per unit, cgroup, user, program, protocol or remote end.",
        discussion: """
            Sums the bytes, packets and flows of the history's time buckets that start in \
            [--since, --until), grouped by the --by dimensions and always by direction (out: sent by \
            local sockets; in: delivered to them); a range counts whole buckets ([accounting] \
            bucket_s, 60 s by default). Figures from the two accounting modes (packets: every packet \
            through NFLOG; kernel: nftables counters) are never added together: each row names its \
            mode. Unknown values (a packet no process owned has no \
            program) show as "-" in the table, null in JSON and empty in CSV. "unaccounted" counts \
            the packets the kernel dropped before nfowner could count them. No root needed when the \
            database is readable (it is opened read-only). The JSON and CSV formats are a contract: \
            see docs/report.md. The HTML page \
            charts the 8 biggest groups of each direction (the rest stacked as "other") in at \
            most 120 bars of whole buckets, and needs no network or script to display.

            Times: now; a duration before now (90s, 30m, 1h, 2d, 1w, 1h30m); a date and time in \
            UTC (2026-12-05, 2026-12-05 14:30, 2026-12-05 14:30:15); or RFC 3339 with its offset \
            (2026-12-05T14:30:15Z, 2026-12-05T15:30:15+01:00).

            Examples:
              nfowner report                                  # the last hour, per unit
              nfowner report --since 1d --by user,program     # the last day, per user, program
              nfowner report --since 2026-12-01 --until 2026-12-02 --by unit,remote
              nfowner report --since 30m --by program --format json | jq '.rows[0]'
              nfowner report --db /tmp/copy.db --by cgroup --format csv > traffic.csv
              nfowner report --since 1w --by unit --format html > week.html
            """)

    @Option(help: ArgumentHelp(
        "The history database. Default: [storage] path of the configuration (/var/lib/nfowner/nfowner.db).",
        valueName: "file"))
    var db: String?

    @Option(name: .customLong("config"), help: ArgumentHelp(
        "Configuration file whose [storage] path is the default --db. Default: \(ConfigLoader.defaultPath) when it exists.",
        valueName: "file"))
    var configPath: String?

    @Option(help: ArgumentHelp("Start of the range (inclusive); 1h is an hour ago.", valueName: "time"))
    var since: String = "1h"

    @Option(help: ArgumentHelp("End of the range (exclusive).", valueName: "time"))
    var until: String = "now"

    @Option(help: ArgumentHelp(
        "What to group by, comma-separated, in column order: unit, cgroup, user, program, proto, remote "
            + "(ADDR:PORT, [V6]:PORT, ADDR, or other: the endpoints folded together).",
        valueName: "dimensions"))
    var by: String = "unit"

    @Option(help: ArgumentHelp("Output: table (aligned, human units, biggest first), json (one object), csv (RFC 4180, header row), "
                + "html (one self-contained page: bytes over time per group, sent and received, as stacked bar charts, and the table)."))
    var format: ReportFormat = .table

    /// `--by` as dimensions; throws for an unknown name.
    static func dimensions(_ text: String) throws -> [ReportDimension] {
        let names = text.split(separator: ",", omittingEmptySubsequences: false)
            .map { $0.trimmingCharacters(in: .whitespaces).lowercased() }
        var dimensions: [ReportDimension] = []
        for name in names {
            guard let dimension = ReportDimension(rawValue: name) else {
                throw ValidationError("--by: '\(name)' is not a dimension: give one or more of "
                                      + ReportDimension.allCases.map(\.rawValue).joined(separator: ", ")
                                      + ", separated by commas")
            }
            if !dimensions.contains(dimension) { dimensions.append(dimension) }
        }
        return dimensions
    }

    /// The range in Unix seconds.
    func range(now: Int64) throws -> (since: Int64, until: Int64) {
        let start: Int64
        let end: Int64
        do {
            // "Now" is the end of the current second, for `now` and for durations before it: a
            // bucket that started in this second (the one being filled, or the partial one a
            // daemon just wrote as it stopped) holds traffic up to now and belongs in the range.
            start = try ReportTime.parse(since, now: now + 1)
            end = try ReportTime.parse(until, now: now + 1)
        } catch {
            throw ValidationError(error.description)
        }
        guard start < end else {
            throw ValidationError("--since (\(ReportTime.readable(start)) UTC) must be before --until "
                                  + "(\(ReportTime.readable(end)) UTC)")
        }
        return (start, end)
    }

    func validate() throws {
        _ = try Self.dimensions(by)
        _ = try range(now: Int64(Date().timeIntervalSince1970))
    }

    func databasePath() throws -> String {
        if let db { return db }
        let config: NfownerConfig
        do { config = try ConfigLoader.load(path: configPath) } catch { throw UserFacingError(error.description) }
        guard !config.storage.path.isEmpty else {
            throw UserFacingError("the configuration keeps no history ([storage] path is empty): give --db")
        }
        return config.storage.path
    }

    func run() throws {
        let (start, end) = try range(now: Int64(Date().timeIntervalSince1970))
        let path = try databasePath()
        let result: ReportResult
        var timeline = ReportTimeline(bucketSeconds: 60, points: [])
        do {
            let store = try HistoryStore(path: path, access: .readOnly)
            result = try store.query(since: start, until: end, by: Self.dimensions(by))
            if format == .html { timeline = try store.timeline(since: start, until: end, by: Self.dimensions(by)) }
            try? store.close()
        } catch let error as HistoryError {
            throw UserFacingError(error.reason)
        }
        let text: String
        switch format {
        case .table: text = ReportRendering.table(result)
        case .json: text = ReportRendering.json(result)
        case .csv: text = ReportRendering.csv(result)
        case .html: text = HTMLReport.render(result, timeline: timeline, generatedAt: Int64(Date().timeIntervalSince1970))
        }
        print(text, terminator: "")
    }
}

enum ReportFormat: String, ExpressibleByArgument, CaseIterable {
    case table
    case json
    case csv
    case html
}
