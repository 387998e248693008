import GRDB

/// The database's schema, as versioned migrations (GRDB's `grdb_migrations` table records which
/// ran). Never edit a migration that has shipped: add the next one.
///
/// v1:
///   bucket(start, mode, seconds, unaccounted_packets)     one per bucket written, even empty
///   traffic(bucket_start, mode, bucket_seconds, unit, cgroup, "user", program, direction, proto,
///           remote_address, remote_port, bytes, packets, flows)
/// Unknown text values are stored as "" and a missing port as -1, so that the primary keys (the
/// grouping columns, the bucket start and the mode) make a second write of the same bucket add
/// to the first (UPSERT) instead of making a second row. Counts are bytes, packets and flows as
/// SQLite integers. Both tables are WITHOUT ROWID, clustered by bucket start first: range
/// queries and pruning read from the front.
enum HistorySchema {
    /// `PRAGMA application_id`: "nfow". Tells nfowner's files from other SQLite databases.
    static let applicationID: Int32 = 0x6E66_6F77

    /// The migration identifiers this nfowner knows, oldest first.
    static var knownVersions: [String] { ["v1"] }

    static var migrator: DatabaseMigrator {
        var migrator = DatabaseMigrator()
        migrator.registerMigration("v1") { db in
            try db.execute(sql: """
                CREATE TABLE bucket (
                    start INTEGER NOT NULL,
                    mode TEXT NOT NULL,
                    seconds INTEGER NOT NULL,
                    unaccounted_packets INTEGER NOT NULL DEFAULT 0,
                    PRIMARY KEY (start, mode)
                ) WITHOUT ROWID;
                CREATE TABLE traffic (
                    bucket_start INTEGER NOT NULL,
                    mode TEXT NOT NULL,
                    bucket_seconds INTEGER NOT NULL,
                    unit TEXT NOT NULL,
                    cgroup TEXT NOT NULL,
                    "user" TEXT NOT NULL,
                    program TEXT NOT NULL,
                    direction TEXT NOT NULL,
                    proto TEXT NOT NULL,
                    remote_address TEXT NOT NULL,
                    remote_port INTEGER NOT NULL,
                    bytes INTEGER NOT NULL,
                    packets INTEGER NOT NULL,
                    flows INTEGER NOT NULL,
                    PRIMARY KEY (bucket_start, mode, unit, cgroup, "user", program, direction, proto,
                                 remote_address, remote_port)
                ) WITHOUT ROWID;
                PRAGMA application_id = \(applicationID);
                """)
        }
        return migrator
    }
}
