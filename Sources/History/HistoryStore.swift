import Accounting
import Foundation
import GRDB
import Reports

/// nfowner's accounting history: one SQLite file (WAL) of traffic buckets.
///
/// Threads: a store may be used from any thread. Read-write stores use a `DatabasePool`: one
/// writer at a time (writes queue behind each other), reads beside it. The daemon writes through
/// a `HistoryWriter`, never from the packet path; `report` opens the file read-only.
public final class HistoryStore: Sendable {
    public enum Access: Sendable {
        /// Creates the file (and its directory, mode 0750) when missing, migrates it to this
        /// nfowner's schema.
        case readWrite
        /// The file must exist and hold nfowner's history; nothing is written.
        case readOnly
    }

    public let path: String
    public let access: Access
    let database: any DatabaseWriter

    /// Opens (or, read-write, creates) the history at `path`. Throws a `HistoryError`: no file
    /// (read-only), not a database, a newer schema, cannot open.
    public init(path: String, access: Access = .readWrite) throws(HistoryError) {
        self.path = path
        self.access = access
        switch access {
        case .readOnly:
            try Self.checkCanRead(path)
            var configuration = Configuration()
            configuration.readonly = true
            configuration.busyMode = .timeout(5)
            do {
                database = try DatabaseQueue(path: Self.readLocation(path), configuration: configuration)
            } catch {
                throw HistoryError.from(error, path: path, doing: "read history from")
            }
            try Self.checkReadable(database, path: path)
        case .readWrite:
            try Self.createDirectory(for: path)
            var configuration = Configuration()
            configuration.busyMode = .timeout(5)
            do {
                database = try DatabasePool(path: path, configuration: configuration)
            } catch {
                if !Self.canWriteDirectory(of: path) {
                    throw HistoryError(code: .readOnly, path: path,
                                       reason: "cannot write history to \(path): its directory is not writable (a "
                                           + "read-only file system, or permissions); give [storage] path a writable "
                                           + "place (systemd: StateDirectory=nfowner)")
                }
                throw HistoryError.from(error, path: path, doing: "open history at")
            }
            try Self.prepareForWriting(database, path: path)
        }
    }

    /// Closes the file; a read-write store first moves the WAL's pages into the file, so that a
    /// clean shutdown leaves one self-contained file (to copy, or read on read-only media). Later
    /// calls throw. (The store also closes when released, without the checkpoint.)
    public func close() throws(HistoryError) {
        do {
            if let pool = database as? DatabasePool {
                try? pool.writeWithoutTransaction { db in try db.checkpoint(.truncate) }
                try pool.close()
            }
            if let queue = database as? DatabaseQueue { try queue.close() }
        } catch {
            throw HistoryError.from(error, path: path, doing: "close")
        }
    }

    // MARK: Opening

    /// The file must exist and be readable: a missing file and a forbidden one get different advice.
    static func checkCanRead(_ path: String) throws(HistoryError) {
        do {
            _ = try FileManager.default.attributesOfItem(atPath: path)
        } catch let error as CocoaError where error.code == .fileReadNoSuchFile || error.code == .fileNoSuchFile {
            throw .noDatabase(path)
        } catch {
            throw .permissionDenied(path, detail: "permission denied")
        }
        if !FileManager.default.isReadableFile(atPath: path) { throw .permissionDenied(path, detail: "permission denied") }
    }

    /// Where a read-only connection opens `path`. A WAL database needs its shared-memory file
    /// (PATH-shm): when no writer has the file open (no PATH-wal) and this process cannot create
    /// PATH-shm (a read-only file system, a directory only root may write), the file is read as
    /// immutable (an SQLite URI filename), which needs no -shm and is safe with no writer.
    static func readLocation(_ path: String) -> String {
        if canWriteDirectory(of: path) || FileManager.default.fileExists(atPath: path + "-wal") { return path }
        return "file:\(uriEscaped(path))?immutable=1"
    }

    /// Whether this process may create files beside `path` (false on a read-only file system too).
    static func canWriteDirectory(of path: String) -> Bool {
        let directory = (path as NSString).deletingLastPathComponent
        return FileManager.default.isWritableFile(atPath: directory.isEmpty ? "." : directory)
    }

    /// Percent-escapes what a URI filename cannot hold as is.
    static func uriEscaped(_ path: String) -> String {
        var out = ""
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "%"), UInt8(ascii: "?"), UInt8(ascii: "#"), 0..<0x21, 0x7F...:
                out += "%" + String(byte, radix: 16, uppercase: true).leftPadded(2)
            default: out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out
    }

    static func createDirectory(for path: String) throws(HistoryError) {
        let directory = (path as NSString).deletingLastPathComponent
        var isDirectory: ObjCBool = false
        if directory.isEmpty || FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            if directory.isEmpty || isDirectory.boolValue { return }
            throw HistoryError(code: .cannotOpen, path: path,
                               reason: "cannot create the history at \(path): \(directory) is not a directory; "
                                   + "give [storage] path another place")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true,
                                                    attributes: [.posixPermissions: 0o750])
        } catch {
            throw HistoryError(code: .cannotOpen, path: path,
                               reason: "cannot create \(directory) for the history: "
                                   + "\((error as NSError).localizedDescription); create it or give another [storage] path")
        }
    }

    /// A new file gets incremental auto-vacuum (so pruning gives pages back to the file system
    /// without rewriting the file) and the schema; an existing one must be nfowner's and not newer.
    static func prepareForWriting(_ database: any DatabaseWriter, path: String) throws(HistoryError) {
        let migrator = HistorySchema.migrator
        do {
            try database.writeWithoutTransaction { db in
                let tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
                if tables == 0 {
                    // Must precede the first table; cannot run inside a transaction.
                    try db.execute(sql: "PRAGMA auto_vacuum = INCREMENTAL")
                    try db.execute(sql: "VACUUM")
                } else {
                    try checkOwnership(db, path: path)
                }
                let unknown = try migrator.appliedIdentifiers(db).subtracting(HistorySchema.knownVersions)
                if !unknown.isEmpty { throw HistoryError.newerSchema(path, unknown: Array(unknown)) }
            }
            try migrator.migrate(database)
        } catch {
            throw HistoryError.from(error, path: path, doing: "open history at")
        }
    }

    static func checkReadable(_ database: any DatabaseWriter, path: String) throws(HistoryError) {
        do {
            try database.read { db in
                let tables = try Int.fetchOne(db, sql: "SELECT count(*) FROM sqlite_master") ?? 0
                if tables == 0 {
                    throw HistoryError(code: .noDatabase, path: path,
                                       reason: "no history at \(path) yet (the file is empty): start `nfowner run` "
                                           + "or give --db")
                }
                try checkOwnership(db, path: path)
                let applied = try HistorySchema.migrator.appliedIdentifiers(db)
                let unknown = applied.subtracting(HistorySchema.knownVersions)
                if !unknown.isEmpty { throw HistoryError.newerSchema(path, unknown: Array(unknown)) }
                if applied != Set(HistorySchema.knownVersions) {
                    throw HistoryError(code: .other, path: path,
                                       reason: "\(path) has an older history schema: run `nfowner run` once to "
                                           + "upgrade it, then report")
                }
            }
        } catch {
            throw HistoryError.from(error, path: path, doing: "read history from")
        }
    }

    static func checkOwnership(_ db: Database, path: String) throws {
        let id = try Int32.fetchOne(db, sql: "PRAGMA application_id") ?? 0
        if id != HistorySchema.applicationID {
            throw HistoryError(code: .notADatabase, path: path,
                               reason: "\(path) is an SQLite database of something else, not nfowner's history: "
                                   + "give [storage] path (or --db) a file of nfowner's own")
        }
    }

    // MARK: Writing

    /// Writes the buckets in one transaction: each row is added to a row already stored under
    /// the same bucket start, mode and key (so writing a bucket twice doubles it), and each
    /// bucket's unaccounted packets likewise. All or nothing.
    public func write(_ buckets: [TrafficBucket]) throws(HistoryError) {
        guard !buckets.isEmpty else { return }
        do {
            try database.write { db in
                let bucketStatement = try db.cachedStatement(sql: """
                    INSERT INTO bucket (start, mode, seconds, unaccounted_packets) VALUES (?, ?, ?, ?)
                    ON CONFLICT (start, mode) DO UPDATE SET
                        seconds = max(seconds, excluded.seconds),
                        unaccounted_packets = unaccounted_packets + excluded.unaccounted_packets
                    """)
                let rowStatement = try db.cachedStatement(sql: """
                    INSERT INTO traffic (bucket_start, mode, bucket_seconds, unit, cgroup, "user", program,
                                         direction, proto, remote_address, remote_port, bytes, packets, flows)
                    VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (bucket_start, mode, unit, cgroup, "user", program, direction, proto,
                                 remote_address, remote_port) DO UPDATE SET
                        bytes = bytes + excluded.bytes,
                        packets = packets + excluded.packets,
                        flows = flows + excluded.flows
                    """)
                for bucket in buckets {
                    let mode = bucket.mode.rawValue
                    try bucketStatement.execute(arguments: [
                        bucket.start, mode, bucket.seconds, Int64(clamping: bucket.unaccountedPackets),
                    ])
                    for (key, counts) in bucket.rows {
                        try rowStatement.execute(arguments: [
                            bucket.start, mode, bucket.seconds, key.unit, key.cgroup, key.user, key.program,
                            key.direction.rawValue, key.proto, key.remoteAddress, key.remotePort.map(Int.init) ?? -1,
                            Int64(clamping: counts.bytes), Int64(clamping: counts.packets),
                            Int64(clamping: counts.flows),
                        ])
                    }
                }
            }
        } catch {
            throw HistoryError.from(error, path: path, doing: "write history to")
        }
    }

    // MARK: Pruning

    /// What `prune` deleted.
    public struct PruneOutcome: Sendable, Equatable {
        /// Buckets (start and mode) deleted for being older than the retention.
        public var expiredBuckets: Int = 0
        /// Buckets deleted, oldest first, to get under the size bound.
        public var evictedBuckets: Int = 0
        /// Bytes of database pages in use, before and after.
        public var bytesBefore: Int64 = 0
        public var bytesAfter: Int64 = 0
    }

    /// Deletes buckets that started more than `retentionDays` days before `now` (Unix seconds),
    /// then, while the pages in use exceed `maxBytes`, the oldest buckets (a tenth of them at a
    /// time, at least one); freed pages go back to the file system (incremental vacuum) and the
    /// WAL is checkpointed and truncated. The newest bucket is never evicted for size.
    @discardableResult
    public func prune(now: Int64, retentionDays: Int, maxBytes: Int64) throws(HistoryError) -> PruneOutcome {
        var outcome = PruneOutcome()
        do {
            outcome.bytesBefore = try usedBytes()
            let cutoff = now - Int64(retentionDays) * 86400
            try database.write { db in
                outcome.expiredBuckets = try Int.fetchOne(db, sql: "SELECT count(*) FROM bucket WHERE start < ?",
                                                          arguments: [cutoff]) ?? 0
                try db.execute(sql: "DELETE FROM traffic WHERE bucket_start < ?", arguments: [cutoff])
                try db.execute(sql: "DELETE FROM bucket WHERE start < ?", arguments: [cutoff])
            }
            var used = try usedBytes()
            var rounds = 0
            while used > maxBytes && rounds < 64 {
                rounds += 1
                let evicted = try database.write { db -> Int in
                    let starts = try Int64.fetchAll(db, sql: "SELECT DISTINCT start FROM bucket ORDER BY start")
                    guard starts.count > 1 else { return 0 }
                    let count = min(max(1, starts.count / 10), starts.count - 1)
                    let limit = starts[count - 1]
                    let buckets = try Int.fetchOne(db, sql: "SELECT count(*) FROM bucket WHERE start <= ?",
                                                   arguments: [limit]) ?? 0
                    try db.execute(sql: "DELETE FROM traffic WHERE bucket_start <= ?", arguments: [limit])
                    try db.execute(sql: "DELETE FROM bucket WHERE start <= ?", arguments: [limit])
                    return buckets
                }
                if evicted == 0 { break }
                outcome.evictedBuckets += evicted
                used = try usedBytes()
            }
            if outcome.expiredBuckets + outcome.evictedBuckets > 0 {
                try database.writeWithoutTransaction { db in
                    try db.execute(sql: "PRAGMA incremental_vacuum")
                    try db.checkpoint(.truncate)
                }
            }
            outcome.bytesAfter = try usedBytes()
        } catch {
            throw HistoryError.from(error, path: path, doing: "prune history in")
        }
        return outcome
    }

    /// Bytes of the pages in use (the file's pages less its free list); the WAL is not counted.
    public func usedBytes() throws(HistoryError) -> Int64 {
        do {
            return try database.read { db in
                let pages = try Int64.fetchOne(db, sql: "PRAGMA page_count") ?? 0
                let free = try Int64.fetchOne(db, sql: "PRAGMA freelist_count") ?? 0
                let size = try Int64.fetchOne(db, sql: "PRAGMA page_size") ?? 4096
                return (pages - free) * size
            }
        } catch {
            throw HistoryError.from(error, path: path, doing: "read history from")
        }
    }

    /// Tests: caps the writer connection's file at its current size plus `extraPages` pages
    /// (`PRAGMA max_page_count`), so growing it fails with SQLITE_FULL as a full disk does;
    /// nil lifts the cap.
    func limitGrowthForTesting(extraPages: Int?) throws {
        try database.writeWithoutTransaction { db in
            let pages = try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0
            let limit = extraPages.map { pages + $0 } ?? 1_073_741_823
            _ = try Int.fetchOne(db, sql: "PRAGMA max_page_count = \(limit)")
        }
    }

    // MARK: Checking

    /// `PRAGMA integrity_check`: returns normally when SQLite answers "ok", else throws
    /// `.corrupt` with what it found (at most 20 problems).
    public func integrityCheck() throws(HistoryError) {
        let problems: [String]
        do {
            problems = try database.read { db in try String.fetchAll(db, sql: "PRAGMA integrity_check(20)") }
        } catch {
            throw HistoryError.from(error, path: path, doing: "check")
        }
        if problems != ["ok"] {
            throw HistoryError(code: .corrupt, path: path,
                               reason: "\(path) is damaged (\(problems.joined(separator: "; "))): move it away; "
                                   + "nfowner starts a new history")
        }
    }

    // MARK: Reporting

    /// The columns that hold `dimensions`, in order, duplicates dropped (remote is two columns).
    private static func groupingColumns(_ dimensions: [ReportDimension]) -> (dimensions: [ReportDimension], columns: [String]) {
        var seen = Set<ReportDimension>()
        let dimensions = dimensions.filter { seen.insert($0).inserted }
        var columns: [String] = []
        for dimension in dimensions {
            switch dimension {
            case .unit: columns.append("unit")
            case .cgroup: columns.append("cgroup")
            case .user: columns.append("\"user\"")
            case .program: columns.append("program")
            case .proto: columns.append("proto")
            case .remote: columns += ["remote_address", "remote_port"]
            }
        }
        return (dimensions, columns)
    }

    /// Reads the values of `dimensions` from the front of `row`; returns them and the index of
    /// the first column after them.
    private static func keys(of row: Row, dimensions: [ReportDimension], from first: Int = 0) -> (keys: [String], next: Int) {
        var keys: [String] = []
        var index = first
        for dimension in dimensions {
            if dimension == .remote {
                let port: Int = row[index + 1]
                keys.append(RemoteEndpoint.text(address: row[index], port: port < 0 ? nil : UInt16(clamping: port)))
                index += 2
            } else {
                keys.append(row[index])
                index += 1
            }
        }
        return (keys, index)
    }

    /// Sums over the buckets whose start is in [since, until), grouped by `dimensions` (in that
    /// order, duplicates dropped), direction and mode; plus the unaccounted packets in the range
    /// and the modes that produced the buckets.
    public func query(since: Int64, until: Int64, by dimensions: [ReportDimension]) throws(HistoryError) -> ReportResult {
        let (dimensions, columns) = Self.groupingColumns(dimensions)
        let grouping = (columns + ["direction", "mode"]).joined(separator: ", ")
        let sql = "SELECT \(grouping), SUM(bytes), SUM(packets), SUM(flows) FROM traffic "
            + "WHERE bucket_start >= ? AND bucket_start < ? GROUP BY \(grouping)"
        do {
            return try database.read { db in
                var rows: [ReportRow] = []
                let cursor = try Row.fetchCursor(db, sql: sql, arguments: [since, until])
                while let row = try cursor.next() {
                    let (keys, index) = Self.keys(of: row, dimensions: dimensions)
                    let directionText: String = row[index]
                    let modeText: String = row[index + 1]
                    guard let direction = TrafficDirection(rawValue: directionText),
                          let mode = AccountingMode(rawValue: modeText) else { continue }
                    let counts = AccountingCounts(bytes: UInt64(clamping: row[index + 2] as Int64),
                                                  packets: UInt64(clamping: row[index + 3] as Int64),
                                                  flows: UInt64(clamping: row[index + 4] as Int64))
                    rows.append(ReportRow(keys: keys, direction: direction, mode: mode, counts: counts))
                }
                let unaccounted = try Int64.fetchOne(db, sql: """
                    SELECT COALESCE(SUM(unaccounted_packets), 0) FROM bucket WHERE start >= ? AND start < ?
                    """, arguments: [since, until]) ?? 0
                let modes = try String.fetchAll(db, sql: "SELECT DISTINCT mode FROM bucket WHERE start >= ? AND start < ?",
                                                arguments: [since, until]).compactMap(AccountingMode.init(rawValue:))
                return ReportResult(since: since, until: until, dimensions: dimensions, rows: rows,
                                    unaccountedPackets: UInt64(clamping: unaccounted), modes: modes)
            }
        } catch {
            throw HistoryError.from(error, path: path, doing: "read history from")
        }
    }

    /// The bytes per bucket of each group (by `dimensions`, direction and mode) over the buckets
    /// whose start is in [since, until), in bucket order: the series the HTML report draws.
    public func timeline(since: Int64, until: Int64, by dimensions: [ReportDimension]) throws(HistoryError) -> ReportTimeline {
        let (dimensions, columns) = Self.groupingColumns(dimensions)
        let grouping = (columns + ["direction", "mode"]).joined(separator: ", ")
        let sql = "SELECT bucket_start, \(grouping), SUM(bytes) FROM traffic "
            + "WHERE bucket_start >= ? AND bucket_start < ? GROUP BY bucket_start, \(grouping) ORDER BY bucket_start"
        do {
            return try database.read { db in
                var points: [ReportTimeline.Point] = []
                let cursor = try Row.fetchCursor(db, sql: sql, arguments: [since, until])
                while let row = try cursor.next() {
                    let (keys, index) = Self.keys(of: row, dimensions: dimensions, from: 1)
                    let directionText: String = row[index]
                    let modeText: String = row[index + 1]
                    guard let direction = TrafficDirection(rawValue: directionText),
                          let mode = AccountingMode(rawValue: modeText) else { continue }
                    points.append(ReportTimeline.Point(start: row[0], keys: keys, direction: direction, mode: mode,
                                                       bytes: UInt64(clamping: row[index + 2] as Int64)))
                }
                let seconds = try Int64.fetchOne(db, sql: "SELECT MIN(seconds) FROM bucket WHERE start >= ? AND start < ?",
                                                 arguments: [since, until]) ?? 60
                return ReportTimeline(bucketSeconds: seconds, points: points)
            }
        } catch {
            throw HistoryError.from(error, path: path, doing: "read history from")
        }
    }
}

extension String {
    fileprivate func leftPadded(_ width: Int) -> String {
        String(repeating: "0", count: max(0, width - count)) + self
    }
}
