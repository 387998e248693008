import Accounting
import Foundation
import History
import TestSupport
import Testing

/// The history as the daemon and `nfowner report` use it, through the built binaries: a writer
/// killed with SIGKILL mid-write leaves a consistent file, and `report` reads what was written
/// in every format. No root needed.
@Suite struct HistoryEndToEndTests {
    static var writerTool: String { Harness.binDirectory.appendingPathComponent("nfowner-history-writer").path }

    static func temporaryPath(_ name: String) -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-e2e-\(UUID().uuidString)-\(name)").path
    }

    static func remove(_ path: String) {
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + suffix) }
    }

    /// The tool commits bucket after bucket (200 rows of 1000 + index bytes each, 1 unaccounted
    /// packet) and prints "written N" after each commit. Killed at three different moments, the
    /// file must pass `PRAGMA integrity_check` and hold every bucket it said it wrote, whole, and
    /// at most one more (committed before the kill, not yet announced), never part of one.
    @Test(arguments: [0.4, 0.75, 1.3])
    func aWriterKilledMidWriteLeavesAConsistentFile(after seconds: Double) throws {
        let path = Self.temporaryPath("killed.db")
        defer { Self.remove(path) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.writerTool)
        process.arguments = [path]
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        // Wait for the first commits, then let it write for a while and kill it mid-stream.
        var text = ""
        let deadline = Date().addingTimeInterval(20)
        while !text.contains("written 3\n") && Date() < deadline {
            text += String(decoding: output.fileHandleForReading.availableData, as: UTF8.self)
        }
        try #require(text.contains("written 3\n"), "the writer started: \(text)")
        Thread.sleep(forTimeInterval: seconds)
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        #expect(process.terminationReason == .uncaughtSignal)
        text += String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        let announced = try #require(text.split(separator: "\n").last.flatMap { Int($0.dropFirst("written ".count)) })

        let store = try HistoryStore(path: path, access: .readOnly)
        try store.integrityCheck()
        let buckets = try store.query(since: 0, until: Int64(announced + 10) * 60, by: [])
        #expect(buckets.unaccountedPackets == UInt64(announced + 1) || buckets.unaccountedPackets == UInt64(announced + 2),
                "announced \(announced): every announced bucket and at most the one in flight")
        let stored = Int(buckets.unaccountedPackets)
        for index in 0..<stored {
            let start = Int64(index) * 60
            let bucket = try store.query(since: start, until: start + 60, by: [.remote])
            #expect(bucket.rows.count == 200, "bucket \(index) is whole")
            #expect(bucket.rows.allSatisfy { $0.counts == AccountingCounts(bytes: UInt64(1000 + index), packets: 1, flows: 1) })
        }
        // And the file can be written again: the next open recovers the WAL.
        let writer = try HistoryStore(path: path)
        try writer.write([TrafficBucket(start: Int64(stored) * 60, seconds: 60, unaccountedPackets: 1)])
        try writer.integrityCheck()
    }

    static func writeSample(to path: String, now: Int64) throws -> Int64 {
        let start = now / 60 * 60 - 600
        let store = try HistoryStore(path: path)
        let web = AccountingKey(unit: "web.service", cgroup: "/system.slice/web.service", user: "www-data",
                                program: "/usr/bin/web", direction: .out, proto: "tcp",
                                remoteAddress: "2001:db8::1", remotePort: 443)
        var webIn = web
        webIn.direction = .in
        let unknown = AccountingKey(direction: .out, proto: "icmp", remoteAddress: "192.0.2.1")
        try store.write([
            TrafficBucket(start: start, seconds: 60, rows: [
                web: AccountingCounts(bytes: 1_048_576, packets: 800, flows: 2),
                webIn: AccountingCounts(bytes: 40_000, packets: 700, flows: 0),
                unknown: AccountingCounts(bytes: 1028, packets: 1, flows: 1),
            ], unaccountedPackets: 5),
            TrafficBucket(start: start + 60, seconds: 60, rows: [
                web: AccountingCounts(bytes: 1_048_576, packets: 800, flows: 1),
            ]),
            // Two days old: outside --since 1h.
            TrafficBucket(start: start - 2 * 86400, seconds: 60, rows: [
                web: AccountingCounts(bytes: 999, packets: 9, flows: 9),
            ], unaccountedPackets: 100),
        ])
        try store.close()
        return start
    }

    @Test func reportPrintsWhatTheHistoryHoldsAsJSON() throws {
        let path = Self.temporaryPath("report.db")
        defer { Self.remove(path) }
        _ = try Self.writeSample(to: path, now: Int64(Date().timeIntervalSince1970))
        let result = try Harness.run(Harness.nfowner, ["report", "--db", path, "--since", "1h", "--by", "unit,remote",
                                                       "--format", "json"])
        #expect(result.status == 0, "\(result.stderr)")
        let object = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
        #expect(Set(object.keys) == ["since", "until", "modes", "rows", "unaccounted"])
        #expect(object["unaccounted"] as? Int == 5)
        #expect(object["modes"] as? [String] == ["packets"])
        let untilText = try #require(object["until"] as? String)
        let sinceText = try #require(object["since"] as? String)
        let until = try #require(ISO8601DateFormatter().date(from: untilText))
        let since = try #require(ISO8601DateFormatter().date(from: sinceText))
        #expect(until.timeIntervalSince(since) == 3600)
        #expect(abs(until.timeIntervalSinceNow) < 60)
        let rows = try #require(object["rows"] as? [[String: Any]])
        #expect(rows.count == 3)
        #expect(rows[0]["unit"] as? String == "web.service")
        #expect(rows[0]["remote"] as? String == "[2001:db8::1]:443")
        #expect(rows[0]["direction"] as? String == "out")
        #expect(rows[0]["bytes"] as? Int == 2_097_152)
        #expect(rows[0]["packets"] as? Int == 1600)
        #expect(rows[0]["flows"] as? Int == 3)
        #expect(rows[1]["direction"] as? String == "in")
        #expect(rows[2]["unit"] is NSNull)
        #expect(rows[2]["remote"] as? String == "192.0.2.1")
        for row in rows {
            #expect(Set(row.keys) == ["unit", "remote", "direction", "mode", "bytes", "packets", "flows"])
        }
    }

    @Test func reportTableAndCSVAndTheConfigsPath() throws {
        let path = Self.temporaryPath("report.db")
        let config = Self.temporaryPath("nfowner.toml")
        defer {
            Self.remove(path)
            try? FileManager.default.removeItem(atPath: config)
        }
        let start = try Self.writeSample(to: path, now: Int64(Date().timeIntervalSince1970))
        try "[storage]\npath = \"\(path)\"\n".write(toFile: config, atomically: true, encoding: .utf8)

        let table = try Harness.run(Harness.nfowner, ["report", "--config", config, "--by", "user"])
        #expect(table.status == 0, "\(table.stderr)")
        let lines = table.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first?.contains("unaccounted: 5 packets") == true)
        #expect(lines.dropFirst().first?.hasPrefix("USER      DIR") == true)
        let fields = lines.dropFirst(2).map { $0.split(separator: " ").joined(separator: " ") }
        #expect(fields == ["www-data out 2.0 MiB 1600 3", "www-data in 39.1 KiB 700 0", "- out 1.0 KiB 1 1"])
        #expect(Set(lines.dropFirst().map(\.count)).count == 1, "aligned: every line as wide")

        let since = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(start)))
        let csv = try Harness.run(Harness.nfowner, ["report", "--db", path, "--since", since, "--until", "now",
                                                    "--by", "program,proto", "--format", "csv"])
        #expect(csv.status == 0, "\(csv.stderr)")
        #expect(csv.stdout == "program,proto,direction,mode,bytes,packets,flows\r\n"
                + "/usr/bin/web,tcp,out,packets,2097152,1600,3\r\n"
                + "/usr/bin/web,tcp,in,packets,40000,700,0\r\n"
                + ",icmp,out,packets,1028,1,1\r\n")

        let later = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(start + 60)))
        let first = try Harness.run(Harness.nfowner, ["report", "--db", path, "--since", "2h", "--until", later,
                                                      "--by", "unit", "--format", "csv"])
        #expect(first.stdout.contains("web.service,out,packets,1048576,800,2\r\n"), "only the first bucket")
    }

    @Test func reportErrorsSayWhatToDo() throws {
        let missing = Self.temporaryPath("missing.db")
        let none = try Harness.run(Harness.nfowner, ["report", "--db", missing])
        #expect(none.status != 0)
        #expect(none.stderr.contains("no history at \(missing): start `nfowner run`"))
        #expect(!FileManager.default.fileExists(atPath: missing))

        let badBy = try Harness.run(Harness.nfowner, ["report", "--db", missing, "--by", "unit,pid"])
        #expect(badBy.status != 0)
        #expect(badBy.stderr.contains("'pid' is not a dimension"))

        let backwards = try Harness.run(Harness.nfowner, ["report", "--db", missing, "--since", "now", "--until", "1h"])
        #expect(backwards.status != 0)
        #expect(backwards.stderr.contains("must be before --until"))

        let badTime = try Harness.run(Harness.nfowner, ["report", "--db", missing, "--since", "last tuesday"])
        #expect(badTime.status != 0)
        #expect(badTime.stderr.contains("'last tuesday' is not a time"))

        let config = Self.temporaryPath("nohistory.toml")
        defer { try? FileManager.default.removeItem(atPath: config) }
        try "[storage]\npath = \"\"\n".write(toFile: config, atomically: true, encoding: .utf8)
        let off = try Harness.run(Harness.nfowner, ["report", "--config", config])
        #expect(off.status != 0)
        #expect(off.stderr.contains("keeps no history ([storage] path is empty): give --db"))
    }

    /// `report` as an unprivileged user, on files root's daemon wrote: a directory it may not
    /// enter is named as a permission problem (not "no history"); a readable file in a directory
    /// it may not write is read, with the daemon running (its -wal and -shm exist) or stopped.
    @Test(.enabled(if: Harness.isRoot, "needs root: runs report as nobody (setpriv)"))
    func reportAsAnUnprivilegedUser() throws {
        let directory = Self.temporaryPath("dir")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: false,
                                                attributes: [.posixPermissions: 0o755])
        let path = directory + "/nfowner.db"
        _ = try Self.writeSample(to: path, now: Int64(Date().timeIntervalSince1970))
        func reportAsNobody() throws -> CommandResult {
            try Harness.run("/usr/bin/setpriv", ["--reuid=\(Harness.unprivilegedUID)", "--regid=\(Harness.unprivilegedGID)",
                                                 "--clear-groups", Harness.nfowner, "report", "--db", path, "--format", "json"])
        }
        #expect(!FileManager.default.fileExists(atPath: path + "-wal"), "closed cleanly")
        let stopped = try reportAsNobody()
        #expect(stopped.status == 0, "\(stopped.stderr)")
        #expect(stopped.stdout.contains("\"unaccounted\":5"))

        let daemon = try HistoryStore(path: path) // as `run` holds it: -wal and -shm exist
        try daemon.write([TrafficBucket(start: Int64(Date().timeIntervalSince1970) / 60 * 60 - 60, seconds: 60,
                                        unaccountedPackets: 1)])
        #expect(FileManager.default.fileExists(atPath: path + "-wal"))
        let running = try reportAsNobody()
        #expect(running.status == 0, "\(running.stderr)")
        #expect(running.stdout.contains("\"unaccounted\":6"), "sees the daemon's latest write")
        try daemon.close()

        try FileManager.default.setAttributes([.posixPermissions: 0o700], ofItemAtPath: directory)
        let forbidden = try reportAsNobody()
        #expect(forbidden.status != 0)
        #expect(forbidden.stderr.contains("cannot read history at \(path): permission denied; run as root"))
    }
}
