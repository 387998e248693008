import Accounting
import Configuration
import Daemon
import History
import Logging

/// The history writer for `[storage]`; nil when the path is "" (no history). Opening happens on
/// the writer's thread: a file that cannot be opened yet (read-only, full) is logged, buckets
/// wait in memory, and opening is tried again.
func openHistory(_ storage: NfownerConfig.Storage, logger: Logger) -> (any BucketWriter)? {
    guard !storage.path.isEmpty else { return nil }
    let writer = HistoryWriter(path: storage.path, retention: HistoryBucketWriter.retention(storage), onChange: { status in
        if status.lastError != nil {
            logger.error("cannot write history to \(storage.path): \(status)")
        } else {
            logger.notice("history: writing to \(storage.path) again; \(status)")
        }
    })
    return HistoryBucketWriter(writer: writer, logger: logger)
}

/// The daemon's side of `HistoryWriter`.
final class HistoryBucketWriter: BucketWriter, @unchecked Sendable {
    private let writer: HistoryWriter
    private let logger: Logger

    init(writer: HistoryWriter, logger: Logger) {
        self.writer = writer
        self.logger = logger
    }

    static func retention(_ storage: NfownerConfig.Storage) -> HistoryWriter.Retention {
        HistoryWriter.Retention(days: storage.retentionDays, maxBytes: Int64(storage.maxMegabytes) << 20)
    }

    func submit(_ buckets: [TrafficBucket]) { writer.submit(buckets) }

    func apply(_ storage: NfownerConfig.Storage) { writer.setRetention(Self.retention(storage)) }

    func close() {
        do { try writer.close() } catch { logger.error("history: \(error)") }
    }
}
