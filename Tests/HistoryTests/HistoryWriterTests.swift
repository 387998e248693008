import Accounting
import Foundation
@testable import History
import Reports
import Testing

/// Status changes the writer reported, collected across threads.
final class Changes: @unchecked Sendable {
    private let lock = NSLock()
    private var list: [HistoryWriter.Status] = []
    func append(_ status: HistoryWriter.Status) { lock.withLock { list.append(status) } }
    var all: [HistoryWriter.Status] { lock.withLock { list } }
}

@Suite struct HistoryWriterTests {
    static func bucket(start: Int64, rows: Int, bytes: UInt64 = 1) -> TrafficBucket {
        var bucket = TrafficBucket(start: start, seconds: 60, unaccountedPackets: 1)
        for row in 0..<rows {
            var key = Sample.nginxOut
            key.remotePort = UInt16(row)
            bucket.rows[key] = AccountingCounts(bytes: bytes, packets: 1, flows: 0)
        }
        return bucket
    }

    static func wait(_ seconds: Double = 10, until condition: () throws -> Bool) rethrows -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if try condition() { return true }
            Thread.sleep(forTimeInterval: 0.02)
        }
        return try condition()
    }

    @Test func submittedBucketsAreWrittenByTheThread() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let writer = HistoryWriter(store: store)
        writer.submit(Sample.buckets)
        #expect(try Self.wait { try store.query(since: 0, until: 1000, by: [.unit]).unaccountedPackets == 7 },
                "written without a flush")
        try writer.flush()
        #expect(writer.currentStatus.writtenBuckets == 2)
        #expect(writer.currentStatus.pendingBuckets == 0)
        #expect(writer.currentStatus.lastError == nil)
        try writer.close()
    }

    @Test func concurrentSubmittersLoseNothing() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let writer = HistoryWriter(store: store)
        DispatchQueue.concurrentPerform(iterations: 4) { thread in
            for index in 0..<50 {
                writer.submit([Self.bucket(start: Int64(thread * 50 + index) * 60, rows: 10, bytes: 3)])
            }
        }
        try writer.flush()
        let result = try store.query(since: 0, until: 200 * 60, by: [.unit])
        #expect(result.rows.map(\.counts) == [AccountingCounts(bytes: 6000, packets: 2000, flows: 0)])
        #expect(result.unaccountedPackets == 200)
        #expect(writer.currentStatus.writtenBuckets == 200)
        try writer.close()
    }

    @Test func aFullDiskKeepsBucketsInMemoryUntilTheyCanBeWritten() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let changes = Changes()
        let writer = HistoryWriter(store: store, retryInterval: 0.2, onChange: changes.append)
        try store.limitGrowthForTesting(extraPages: 0)
        writer.submit([Self.bucket(start: 0, rows: 3000)])
        let error = #expect(throws: HistoryError.self) { try writer.flush() }
        #expect(error?.code == .diskFull)
        let status = writer.currentStatus
        #expect(status.pendingBuckets == 1)
        #expect(status.pendingRows == 3000)
        #expect(status.lastError?.code == .diskFull)
        #expect(status.description == "cannot write history to \(store.path): disk full; free space on its file "
                + "system, or lower [storage] max_mb or retention_days; keeping 1 bucket in memory, retrying every 0 s")
        #expect(Self.wait(1) { !changes.all.isEmpty })
        #expect(changes.all.first?.lastError?.code == .diskFull, "the daemon is told")

        // Counting goes on meanwhile.
        writer.submit([Self.bucket(start: 60, rows: 5)])
        #expect(try Self.wait(1) { writer.currentStatus.pendingBuckets == 2 })

        // Space again: the next retry writes both, with no flush.
        try store.limitGrowthForTesting(extraPages: nil)
        #expect(Self.wait { writer.currentStatus.pendingBuckets == 0 })
        #expect(writer.currentStatus.lastError == nil)
        #expect(try Self.wait(1) { changes.all.last?.lastError == nil }, "and told that it works again")
        let result = try store.query(since: 0, until: 120, by: [.unit])
        #expect(result.rows.first?.counts.packets == 3005)
        #expect(result.unaccountedPackets == 2)
        try writer.close()
    }

    @Test func aHistoryThatCannotBeOpenedYetIsOpenedLater() throws {
        let directory = try TemporaryDirectory()
        // A file where the database's directory should be: creating the directory fails.
        let blocker = directory.path("state")
        #expect(FileManager.default.createFile(atPath: blocker, contents: Data("x".utf8)))
        let path = blocker + "/history.db"
        let changes = Changes()
        let writer = HistoryWriter(path: path, retention: .init(days: 30, maxBytes: 1 << 30), retryInterval: 0.2,
                                   clock: { 1000 }, onChange: changes.append)
        writer.submit(Sample.buckets)
        let error = #expect(throws: HistoryError.self) { try writer.flush() }
        #expect(error?.code == .cannotOpen)
        #expect(error?.reason == "cannot create the history at \(path): \(blocker) is not a directory; "
                + "give [storage] path another place")
        #expect(writer.currentStatus.pendingBuckets == 2)
        #expect(writer.currentStatus.description.hasSuffix("keeping 2 buckets in memory, retrying every 0 s"))

        try FileManager.default.removeItem(atPath: blocker)
        #expect(Self.wait { writer.currentStatus.pendingBuckets == 0 }, "opened and written on a retry, no flush")
        #expect(writer.currentStatus.lastError == nil)
        #expect(Self.wait(1) { changes.all.last?.lastError == nil })
        try writer.close()
        let reader = try HistoryStore(path: path, access: .readOnly)
        #expect(try reader.query(since: 0, until: 1000, by: [.unit]).unaccountedPackets == 7)
    }

    @Test func theMemoryBoundDropsTheOldestBucketsAndSaysWhich() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let writer = HistoryWriter(store: store, maxPendingRows: 10, retryInterval: 600)
        try store.limitGrowthForTesting(extraPages: 0)
        writer.submit([Self.bucket(start: 0, rows: 3000)])
        #expect(throws: HistoryError.self) { try writer.flush() }
        // Over the bound already: the newest bucket is always kept.
        #expect(writer.currentStatus.pendingBuckets == 1)
        for index in 1...4 { writer.submit([Self.bucket(start: Int64(index) * 60, rows: 3)]) }
        let status = writer.currentStatus
        #expect(status.pendingBuckets == 3)
        #expect(status.pendingRows == 9)
        #expect(status.droppedBuckets == 2)
        #expect(status.droppedRange == 0...60)
        #expect(status.description.hasSuffix("; dropped the 2 oldest unwritten buckets (1970-01-01 00:00:00 to "
                                             + "1970-01-01 00:01:00 UTC)"))
        try store.limitGrowthForTesting(extraPages: nil)
        try writer.flush()
        let starts = try store.database.read { db in try Int64.fetchAll(db, sql: "SELECT start FROM bucket ORDER BY start") }
        #expect(starts == [120, 180, 240])
        try writer.close()
    }

    @Test func theWriterPrunesByItsRetention() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let day: Int64 = 86400
        try store.write([Self.bucket(start: 0, rows: 2), Self.bucket(start: 9 * day, rows: 2)])
        let writer = HistoryWriter(store: store, retention: .init(days: 1, maxBytes: 1 << 30), clock: { 10 * day })
        try writer.flush()
        let starts = try store.database.read { db in try Int64.fetchAll(db, sql: "SELECT start FROM bucket ORDER BY start") }
        #expect(starts == [9 * day])
        try writer.close()
    }

    @Test func aGoodPruneDoesNotHideAFailedWrite() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let writer = HistoryWriter(store: store, retention: .init(days: 30, maxBytes: 1 << 30), retryInterval: 600,
                                   pruneInterval: 0.05, clock: { 0 })
        try store.limitGrowthForTesting(extraPages: 0)
        writer.submit([Self.bucket(start: 0, rows: 3000)])
        #expect(throws: HistoryError.self) { try writer.flush() }
        Thread.sleep(forTimeInterval: 0.5) // several prunes
        #expect(writer.currentStatus.lastError?.code == .diskFull)
        #expect(writer.currentStatus.pendingBuckets == 1)
        try store.limitGrowthForTesting(extraPages: nil)
        try writer.close()
    }

    @Test func closeFlushesAndLaterCallsAreRefused() throws {
        let directory = try TemporaryDirectory()
        let path = directory.path("history.db")
        let writer = HistoryWriter(store: try HistoryStore(path: path))
        writer.submit(Sample.buckets)
        try writer.close()
        try writer.close()
        writer.submit(Sample.buckets)
        #expect(writer.currentStatus.droppedBuckets == 2)
        let error = #expect(throws: HistoryError.self) { try writer.flush() }
        #expect(error?.code == .closed)
        let wal = (try? FileManager.default.attributesOfItem(atPath: path + "-wal")[.size] as? Int) ?? 0
        #expect(wal == 0, "a clean close leaves everything in the file itself")
        let reader = try HistoryStore(path: path, access: .readOnly)
        #expect(try reader.query(since: 0, until: 1000, by: [.unit]).unaccountedPackets == 7)
    }

    @Test func closingWithUnwritableBucketsSaysHowManyAreLost() throws {
        let directory = try TemporaryDirectory()
        let store = try HistoryStore(path: directory.path("history.db"))
        let writer = HistoryWriter(store: store, retryInterval: 600)
        try store.limitGrowthForTesting(extraPages: 0)
        writer.submit([Self.bucket(start: 0, rows: 3000)])
        let error = #expect(throws: HistoryError.self) { try writer.close() }
        #expect(error?.code == .diskFull)
        #expect(error?.reason.hasSuffix("; 1 bucket of history lost") == true)
    }
}
