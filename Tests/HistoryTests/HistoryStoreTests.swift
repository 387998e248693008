import Accounting
import Foundation
import GRDB
@testable import History
import Reports
import Testing

/// A fresh directory per test, removed afterwards.
final class TemporaryDirectory {
    let url: URL
    init() throws {
        url = FileManager.default.temporaryDirectory.appendingPathComponent("nfowner-history-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    }
    deinit { try? FileManager.default.removeItem(at: url) }
    func path(_ name: String) -> String { url.appendingPathComponent(name).path }
}

/// Buckets with known sums, shared by the store and writer tests.
enum Sample {
    static let nginxOut = AccountingKey(unit: "nginx.service", cgroup: "/system.slice/nginx.service", user: "www-data",
                                        program: "/usr/sbin/nginx", direction: .out, proto: "tcp",
                                        remoteAddress: "192.0.2.7", remotePort: 443)
    static let nginxIn = AccountingKey(unit: "nginx.service", cgroup: "/system.slice/nginx.service", user: "www-data",
                                       program: "/usr/sbin/nginx", direction: .in, proto: "tcp",
                                       remoteAddress: "192.0.2.7", remotePort: 443)
    static let dnsOut = AccountingKey(unit: "", cgroup: "/user.slice/user-1000.slice", user: "alice",
                                      program: "/usr/bin/dig", direction: .out, proto: "udp",
                                      remoteAddress: "2001:db8::53", remotePort: 53)
    static let pingOut = AccountingKey(unit: "", cgroup: "/user.slice/user-1000.slice", user: "alice",
                                       program: "", direction: .out, proto: "icmp", remoteAddress: "192.0.2.7")
    static let folded = AccountingKey(unit: "nginx.service", cgroup: "/system.slice/nginx.service", user: "www-data",
                                      program: "/usr/sbin/nginx", direction: .out, proto: "tcp",
                                      remoteAddress: AccountingKey.other)

    /// Two minutes: 600 and 660.
    static let buckets: [TrafficBucket] = [
        TrafficBucket(start: 600, seconds: 60, rows: [
            nginxOut: AccountingCounts(bytes: 10_000, packets: 10, flows: 1),
            nginxIn: AccountingCounts(bytes: 2_000, packets: 8, flows: 0),
            dnsOut: AccountingCounts(bytes: 70, packets: 1, flows: 1),
        ], unaccountedPackets: 3),
        TrafficBucket(start: 660, seconds: 60, rows: [
            nginxOut: AccountingCounts(bytes: 5_000, packets: 5, flows: 0),
            pingOut: AccountingCounts(bytes: 84, packets: 1, flows: 1),
            folded: AccountingCounts(bytes: 300, packets: 3, flows: 3),
        ], unaccountedPackets: 4),
    ]

    /// Rows of a result as "key|key|direction" -> counts.
    static func table(_ result: ReportResult) -> [String: AccountingCounts] {
        var table: [String: AccountingCounts] = [:]
        for row in result.rows {
            let name = (row.keys + [row.direction.rawValue]).joined(separator: "|")
            #expect(table[name] == nil, "one row per group")
            table[name] = row.counts
        }
        return table
    }
}

@Suite struct HistoryStoreTests {
    @Test func roundTripGroupsByEveryDimension() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        try store.write(Sample.buckets)

        let byUnit = try store.query(since: 0, until: 1000, by: [.unit])
        #expect(Sample.table(byUnit) == [
            "nginx.service|out": AccountingCounts(bytes: 15_300, packets: 18, flows: 4),
            "nginx.service|in": AccountingCounts(bytes: 2_000, packets: 8, flows: 0),
            "|out": AccountingCounts(bytes: 154, packets: 2, flows: 2),
        ])
        #expect(byUnit.unaccountedPackets == 7)
        #expect(byUnit.modes == [.packets])
        #expect(byUnit.rows.first?.keys == ["nginx.service"], "biggest first")

        #expect(Sample.table(try store.query(since: 0, until: 1000, by: [.cgroup])) == [
            "/system.slice/nginx.service|out": AccountingCounts(bytes: 15_300, packets: 18, flows: 4),
            "/system.slice/nginx.service|in": AccountingCounts(bytes: 2_000, packets: 8, flows: 0),
            "/user.slice/user-1000.slice|out": AccountingCounts(bytes: 154, packets: 2, flows: 2),
        ])
        #expect(Sample.table(try store.query(since: 0, until: 1000, by: [.user])) == [
            "www-data|out": AccountingCounts(bytes: 15_300, packets: 18, flows: 4),
            "www-data|in": AccountingCounts(bytes: 2_000, packets: 8, flows: 0),
            "alice|out": AccountingCounts(bytes: 154, packets: 2, flows: 2),
        ])
        #expect(Sample.table(try store.query(since: 0, until: 1000, by: [.program])) == [
            "/usr/sbin/nginx|out": AccountingCounts(bytes: 15_300, packets: 18, flows: 4),
            "/usr/sbin/nginx|in": AccountingCounts(bytes: 2_000, packets: 8, flows: 0),
            "/usr/bin/dig|out": AccountingCounts(bytes: 70, packets: 1, flows: 1),
            "|out": AccountingCounts(bytes: 84, packets: 1, flows: 1),
        ])
        #expect(Sample.table(try store.query(since: 0, until: 1000, by: [.remote])) == [
            "192.0.2.7:443|out": AccountingCounts(bytes: 15_000, packets: 15, flows: 1),
            "192.0.2.7:443|in": AccountingCounts(bytes: 2_000, packets: 8, flows: 0),
            "[2001:db8::53]:53|out": AccountingCounts(bytes: 70, packets: 1, flows: 1),
            "192.0.2.7|out": AccountingCounts(bytes: 84, packets: 1, flows: 1),
            "other|out": AccountingCounts(bytes: 300, packets: 3, flows: 3),
        ])
        #expect(Sample.table(try store.query(since: 0, until: 1000, by: [.proto])) == [
            "tcp|out": AccountingCounts(bytes: 15_300, packets: 18, flows: 4),
            "tcp|in": AccountingCounts(bytes: 2_000, packets: 8, flows: 0),
            "udp|out": AccountingCounts(bytes: 70, packets: 1, flows: 1),
            "icmp|out": AccountingCounts(bytes: 84, packets: 1, flows: 1),
        ])
        let two = try store.query(since: 0, until: 1000, by: [.user, .program, .user])
        #expect(two.dimensions == [.user, .program], "duplicates dropped, order kept")
        #expect(Sample.table(two)["alice|/usr/bin/dig|out"] == AccountingCounts(bytes: 70, packets: 1, flows: 1))
    }

    @Test func theRangeIsBucketStartsInSinceUntil() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        try store.write(Sample.buckets)
        let first = try store.query(since: 600, until: 660, by: [.unit])
        #expect(Sample.table(first)["nginx.service|out"]?.bytes == 10_000)
        #expect(first.unaccountedPackets == 3)
        let second = try store.query(since: 601, until: 661, by: [.unit])
        #expect(Sample.table(second)["nginx.service|out"]?.bytes == 5_300)
        #expect(second.unaccountedPackets == 4)
        let none = try store.query(since: 720, until: 10_000, by: [.unit])
        #expect(none.rows.isEmpty)
        #expect(none.unaccountedPackets == 0)
        #expect(none.modes.isEmpty)
    }

    @Test func writingABucketAgainAddsToIt() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        try store.write(Sample.buckets)
        try store.write([Sample.buckets[0]])
        let result = try store.query(since: 600, until: 660, by: [.unit, .remote])
        #expect(Sample.table(result)["nginx.service|192.0.2.7:443|out"] == AccountingCounts(bytes: 20_000, packets: 20, flows: 2))
        #expect(result.unaccountedPackets == 6)
        let rows = try store.database.read { db in try Int.fetchOne(db, sql: "SELECT count(*) FROM traffic") }
        #expect(rows == 6, "upserts, no duplicate rows")
    }

    @Test func modesAreKeptApart() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let key = AccountingKey(unit: "a.service", user: "root", direction: .out, proto: "tcp")
        try store.write([
            TrafficBucket(start: 0, seconds: 60, mode: .packets, rows: [key: AccountingCounts(bytes: 100, packets: 1)]),
            TrafficBucket(start: 0, seconds: 60, mode: .kernel, rows: [key: AccountingCounts(bytes: 104, packets: 1)]),
        ])
        let result = try store.query(since: 0, until: 60, by: [.unit])
        #expect(result.modes == [.packets, .kernel])
        #expect(result.rows.map(\.mode) == [.kernel, .packets])
        #expect(result.rows.map(\.counts.bytes) == [104, 100])
    }

    @Test func anEmptyBucketStillRecordsItsUnaccountedPackets() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        try store.write([TrafficBucket(start: 60, seconds: 60, unaccountedPackets: 9)])
        let result = try store.query(since: 0, until: 120, by: [.unit])
        #expect(result.rows.isEmpty)
        #expect(result.unaccountedPackets == 9)
        #expect(result.modes == [.packets])
    }

    @Test func retentionDeletesOldBuckets() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let day: Int64 = 86400
        let key = Sample.nginxOut
        try store.write([0, 10, 29, 31].map { days in
            TrafficBucket(start: 100 * day - days * day, seconds: 60,
                          rows: [key: AccountingCounts(bytes: UInt64(days), packets: 1)], unaccountedPackets: 1)
        })
        let outcome = try store.prune(now: 100 * day, retentionDays: 30, maxBytes: 1 << 30)
        #expect(outcome.expiredBuckets == 1)
        #expect(outcome.evictedBuckets == 0)
        let left = try store.query(since: 0, until: 200 * day, by: [.unit])
        #expect(left.rows.first?.counts.packets == 3)
        #expect(left.unaccountedPackets == 3)
    }

    @Test func theSizeBoundEvictsTheOldestBucketsAndShrinksTheFile() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("history.db")
        let store = try HistoryStore(path: path)
        let autoVacuum = try store.database.read { db in try Int.fetchOne(db, sql: "PRAGMA auto_vacuum") }
        #expect(autoVacuum == 2, "incremental")
        var buckets: [TrafficBucket] = []
        for index in 0..<40 {
            var rows: [AccountingKey: AccountingCounts] = [:]
            for row in 0..<250 {
                var key = Sample.nginxOut
                key.remoteAddress = "198.51.100.\(row)"
                key.program = "/usr/lib/some/rather/long/path/to/a/program/number/\(row)"
                rows[key] = AccountingCounts(bytes: 1, packets: 1)
            }
            buckets.append(TrafficBucket(start: Int64(index) * 60, seconds: 60, rows: rows))
        }
        try store.write(buckets)
        let before = try store.usedBytes()
        #expect(before > 1_000_000)
        let bound = before / 3
        let outcome = try store.prune(now: 40 * 60, retentionDays: 30, maxBytes: bound)
        #expect(outcome.expiredBuckets == 0)
        #expect(outcome.evictedBuckets > 20)
        #expect(outcome.bytesAfter <= bound)
        #expect(try store.usedBytes() <= bound)
        let fileSize = try #require(try FileManager.default.attributesOfItem(atPath: path)[.size] as? Int)
        #expect(Int64(fileSize) <= bound + 64 * 1024, "freed pages went back to the file system")
        let walSize = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        #expect(walSize == 0, "the WAL was checkpointed and truncated")
        let starts = try store.database.read { db in try Int64.fetchAll(db, sql: "SELECT start FROM bucket ORDER BY start") }
        #expect(!starts.isEmpty)
        #expect(starts == (40 - starts.count..<40).map { Int64($0) * 60 }, "the oldest went first, the newest stayed")
        try store.integrityCheck()

        // Even a bound smaller than one bucket keeps the newest.
        try store.prune(now: 40 * 60, retentionDays: 30, maxBytes: 1)
        let last = try store.database.read { db in try Int64.fetchAll(db, sql: "SELECT start FROM bucket") }
        #expect(last == [39 * 60])
    }

    @Test func aNewFileIsMigratedAndMarkedAsNfowners() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("deeper/still/history.db")
        _ = try HistoryStore(path: path)
        let mode = try FileManager.default.attributesOfItem(atPath: directory.path("deeper/still"))[.posixPermissions] as? Int
        #expect(mode == 0o750)
        // An empty file (touch) is a new database too.
        let empty = directory.path("empty.db")
        #expect(FileManager.default.createFile(atPath: empty, contents: Data()))
        let store = try HistoryStore(path: empty)
        let (migrations, applicationID, journal, tables) = try store.database.read { db in
            (try HistorySchema.migrator.appliedMigrations(db), try Int32.fetchOne(db, sql: "PRAGMA application_id"),
             try String.fetchOne(db, sql: "PRAGMA journal_mode"), try db.tableExists("traffic") && db.tableExists("bucket"))
        }
        #expect(migrations == ["v1"])
        #expect(applicationID == HistorySchema.applicationID)
        #expect(journal == "wal")
        #expect(tables)
        try store.close()
        // Opening again is a no-op, and read-only works.
        _ = try HistoryStore(path: empty)
        let reader = try HistoryStore(path: empty, access: .readOnly)
        #expect(try reader.query(since: 0, until: 1, by: [.unit]).rows.isEmpty)
    }

    @Test func aNewerSchemaIsRefusedWithWhatToDo() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("history.db")
        let store = try HistoryStore(path: path)
        try store.database.write { db in try db.execute(sql: "INSERT INTO grdb_migrations VALUES ('v2-from-the-future')") }
        try store.close()
        for access in [HistoryStore.Access.readWrite, .readOnly] {
            let error = #expect(throws: HistoryError.self) { try HistoryStore(path: path, access: access) }
            #expect(error?.code == .newerSchema)
            #expect(error?.reason.contains("upgrade nfowner") == true)
            #expect(error?.reason.contains(path) == true)
        }
    }

    @Test func filesThatAreNotNfownersHistoryAreRefused() throws {
        let directory = try TemporaryDirectory()
        let junk = directory.path("junk.db")
        try Data((0..<8192).map { UInt8(truncatingIfNeeded: $0 &* 7 &+ 13) }).write(to: URL(fileURLWithPath: junk))
        for access in [HistoryStore.Access.readWrite, .readOnly] {
            let error = #expect(throws: HistoryError.self) { try HistoryStore(path: junk, access: access) }
            #expect(error?.code == .notADatabase)
            #expect(error?.reason.contains("not an nfowner history database") == true)
        }
        let foreign = directory.path("foreign.db")
        let queue = try DatabaseQueue(path: foreign)
        try queue.write { db in try db.execute(sql: "CREATE TABLE notes (text TEXT)") }
        try queue.close()
        let error = #expect(throws: HistoryError.self) { try HistoryStore(path: foreign) }
        #expect(error?.code == .notADatabase)
        #expect(error?.reason.contains("something else") == true)
        let untouched = try DatabaseQueue(path: foreign)
        #expect(try untouched.read { db in try db.tableExists("traffic") } == false, "nothing was added to it")
    }

    @Test func readingAMissingFileSaysHowToGetHistory() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("none.db")
        let error = #expect(throws: HistoryError.self) { try HistoryStore(path: path, access: .readOnly) }
        #expect(error?.code == .noDatabase)
        #expect(error?.reason == "no history at \(path): start `nfowner run` (it writes [storage] path) or give --db")
        #expect(!FileManager.default.fileExists(atPath: path), "reading creates nothing")
    }

    @Test func aReadOnlyStoreRefusesToWrite() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("history.db")
        try HistoryStore(path: path).write(Sample.buckets)
        let reader = try HistoryStore(path: path, access: .readOnly)
        let error = #expect(throws: HistoryError.self) { try reader.write(Sample.buckets) }
        #expect(error?.code == .readOnly)
        #expect(error?.reason.contains("read-only") == true)
        #expect(Sample.table(try reader.query(since: 0, until: 1000, by: [.unit]))["nginx.service|in"]?.bytes == 2_000)
    }

    @Test func aFullDiskIsReportedAndNothingHalfWritten() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        try store.write([Sample.buckets[0]])
        try store.limitGrowthForTesting(extraPages: 0)
        var big = Sample.buckets[1]
        for row in 0..<2000 {
            var key = Sample.dnsOut
            key.remoteAddress = "2001:db8::\(row)"
            big.rows[key] = AccountingCounts(bytes: 1, packets: 1)
        }
        let error = #expect(throws: HistoryError.self) { try store.write([big]) }
        #expect(error?.code == .diskFull)
        #expect(error?.reason.hasPrefix("cannot write history to \(store.path): disk full") == true)
        #expect(try store.query(since: 660, until: 720, by: [.unit]).rows.isEmpty, "the failed transaction left nothing")
        try store.limitGrowthForTesting(extraPages: nil)
        try store.write([big])
        #expect(try store.query(since: 660, until: 720, by: [.remote]).rows.count == 2003)
    }

    @Test func uriFilenamesEscapeWhatSQLiteWouldReadAsSyntax() {
        #expect(HistoryStore.uriEscaped("/var/lib/nfowner/nfowner.db") == "/var/lib/nfowner/nfowner.db")
        #expect(HistoryStore.uriEscaped("/a b/%x?y#z.db") == "/a%20b/%25x%3Fy%23z.db")
        #expect(HistoryStore.uriEscaped("/é") == "/%C3%A9")
    }

    @Test func integrityCheckFindsDamage() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("history.db")
        let store = try HistoryStore(path: path)
        var bucket = Sample.buckets[0]
        for row in 0..<3000 {
            var key = Sample.nginxOut
            key.remotePort = UInt16(row)
            bucket.rows[key] = AccountingCounts(bytes: 1, packets: 1)
        }
        try store.write([bucket])
        try store.integrityCheck()
        try store.close()
        // Overwrite every page but the first (the header and schema): damaged b-tree pages.
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        let size = try handle.seekToEnd()
        #expect(size > 16384)
        try handle.seek(toOffset: 4096)
        try handle.write(contentsOf: Data(repeating: 0x5A, count: Int(size) - 4096))
        try handle.close()
        do {
            let damaged = try HistoryStore(path: path, access: .readOnly)
            let error = #expect(throws: HistoryError.self) { try damaged.integrityCheck() }
            #expect(error?.code == .corrupt || error?.code == .notADatabase)
        } catch {
            #expect(error.code == .notADatabase)
        }
    }
}
