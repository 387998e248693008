import Accounting
import Foundation
import Reports

/// Writes completed buckets to a `HistoryStore` on a thread of its own, so the packet path
/// never waits for the disk.
///
/// `submit` only appends to a queue in memory and wakes the thread; the thread writes
/// everything queued in one transaction. When a write fails (disk full, read-only file system,
/// …) the buckets stay queued, `status.lastError` says why, and the thread tries again every
/// `retryInterval` (or at once on `flush`). The queue is bounded by `maxPendingRows` rows: past
/// it the oldest buckets are dropped (counted in `status.droppedBuckets`, their range in
/// `status.droppedRange`), so a long outage costs the oldest history, never the daemon's memory.
///
/// The thread also prunes (retention and size bound) after opening and every `pruneInterval`.
///
/// Threads: every method may be called from any thread. `submit` never blocks on I/O; `flush`
/// and `close` block until the thread has tried. The thread runs until `close()`: call it (it
/// also keeps the writer alive until then).
public final class HistoryWriter: @unchecked Sendable {
    /// What the daemon logs.
    public struct Status: Sendable, Equatable, CustomStringConvertible {
        /// The last write (or prune) failure; nil once a write succeeds again.
        public var lastError: HistoryError?
        /// Buckets waiting in memory.
        public var pendingBuckets: Int = 0
        /// Rows in those buckets.
        public var pendingRows: Int = 0
        /// Buckets written since the writer started.
        public var writtenBuckets: UInt64 = 0
        /// Buckets dropped because the queue was full while the database could not be written.
        public var droppedBuckets: UInt64 = 0
        /// The first and last start (Unix seconds) of the dropped buckets.
        public var droppedRange: ClosedRange<Int64>?
        /// Seconds between retries after a failure.
        public var retrySeconds: Int = 10

        /// "cannot write history to PATH: disk full; …; keeping 3 buckets in memory, retrying every 10 s",
        /// or "history: 120 buckets written" when all is well.
        public var description: String {
            var text: String
            if let lastError {
                text = "\(lastError.reason); keeping \(pendingBuckets) bucket\(pendingBuckets == 1 ? "" : "s") "
                    + "in memory, retrying every \(retrySeconds) s"
            } else {
                text = "history: \(writtenBuckets) buckets written, \(pendingBuckets) pending"
            }
            if droppedBuckets > 0 {
                text += "; dropped the \(droppedBuckets) oldest unwritten buckets"
                if let droppedRange {
                    text += " (\(Self.utc(droppedRange.lowerBound)) to \(Self.utc(droppedRange.upperBound)) UTC)"
                }
            }
            return text
        }

        private static func utc(_ seconds: Int64) -> String { ReportTime.readable(seconds) }
    }

    /// How much history the writer keeps: retention and size bound (`[storage]`).
    public struct Retention: Sendable, Equatable {
        public var days: Int
        public var maxBytes: Int64
        public init(days: Int, maxBytes: Int64) {
            self.days = days
            self.maxBytes = maxBytes
        }
    }

    /// The database file.
    public let path: String
    /// The retention and size bound in force (`setRetention` changes it; guarded by `condition`).
    private var currentRetention: Retention?
    public let maxPendingRows: Int
    public let retryInterval: TimeInterval
    public let pruneInterval: TimeInterval
    /// Called on the writer's thread when a write or prune fails for a new reason, and when writing
    /// works again after failures (status.lastError nil): the daemon logs it.
    let onChange: (@Sendable (Status) -> Void)?
    let clock: @Sendable () -> Int64

    /// Opens the store: on the writer's thread, again after each failure (a read-only or full
    /// file system at boot must not stop counting).
    private let open: @Sendable () throws(HistoryError) -> HistoryStore
    /// The open store; only the writer's thread touches it (and `close`, after the thread ended).
    private var store: HistoryStore?

    private let condition = NSCondition()
    // Everything below is guarded by `condition`.
    private var pending: [(sequence: UInt64, bucket: TrafficBucket)] = []
    private var nextSequence: UInt64 = 0
    /// The last sequence number of the batch being written, which dropping must not touch.
    private var inFlightThrough: UInt64?
    private var status = Status()
    private var flushRequested: UInt64 = 0
    private var flushCompleted: UInt64 = 0
    private var stopping = false
    /// Whether `status.lastError` came from pruning (cleared by the next good prune) rather than
    /// from writing (cleared only by the next good write).
    private var lastErrorIsFromPruning = false
    private var stopped = false
    private var closed = false
    /// Set by `setRetention`: the next turn prunes whatever the interval says.
    private var retentionChanged = false

    /// Starts the writer's thread, which opens (or creates) the history at `path` and writes to
    /// it. When opening fails, the failure is `status.lastError` (and `onChange`), buckets wait in
    /// memory as for a failed write, and opening is tried again every `retryInterval`.
    public convenience init(path: String, retention: Retention? = nil, maxPendingRows: Int = 50_000,
                            retryInterval: TimeInterval = 10, pruneInterval: TimeInterval = 3600,
                            clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
                            onChange: (@Sendable (Status) -> Void)? = nil) {
        self.init(path: path, store: nil, open: { () throws(HistoryError) in try HistoryStore(path: path) },
                  retention: retention, maxPendingRows: maxPendingRows, retryInterval: retryInterval,
                  pruneInterval: pruneInterval, clock: clock, onChange: onChange)
    }

    /// Starts the writer's thread on a store already open (read-write). The writer closes it.
    /// - Parameters:
    ///   - maxPendingRows: the most rows kept in memory while the database cannot be written
    ///     (up to about 400 bytes each, measured with distinct strings per row: about 20 MiB for
    ///     the default); the oldest buckets beyond it are dropped. The newest bucket is always
    ///     kept, whatever its size.
    ///   - retryInterval: seconds between retries after a failed write.
    ///   - retention: pruned after opening and every `pruneInterval` seconds; nil never prunes.
    ///   - clock: Unix seconds now (tests give their own).
    ///   - onChange: see `onChange`.
    public convenience init(store: HistoryStore, retention: Retention? = nil, maxPendingRows: Int = 50_000,
                            retryInterval: TimeInterval = 10, pruneInterval: TimeInterval = 3600,
                            clock: @escaping @Sendable () -> Int64 = { Int64(Date().timeIntervalSince1970) },
                            onChange: (@Sendable (Status) -> Void)? = nil) {
        self.init(path: store.path, store: store, open: { () throws(HistoryError) in store },
                  retention: retention, maxPendingRows: maxPendingRows, retryInterval: retryInterval,
                  pruneInterval: pruneInterval, clock: clock, onChange: onChange)
    }

    private init(path: String, store: HistoryStore?, open: @escaping @Sendable () throws(HistoryError) -> HistoryStore,
                 retention: Retention?, maxPendingRows: Int, retryInterval: TimeInterval, pruneInterval: TimeInterval,
                 clock: @escaping @Sendable () -> Int64, onChange: (@Sendable (Status) -> Void)?) {
        self.path = path
        self.store = store
        self.open = open
        currentRetention = retention
        self.maxPendingRows = max(1, maxPendingRows)
        self.retryInterval = retryInterval
        self.pruneInterval = pruneInterval
        self.clock = clock
        self.onChange = onChange
        status.retrySeconds = Int(retryInterval.rounded())
        let thread = Thread { [self] in run() }
        thread.name = "nfowner-history"
        thread.start()
    }

    /// The retention and size bound in force.
    public var retention: Retention? {
        condition.lock()
        defer { condition.unlock() }
        return currentRetention
    }

    /// A new retention and size bound (a reloaded config): applied by a prune right away.
    public func setRetention(_ retention: Retention?) {
        condition.lock()
        currentRetention = retention
        retentionChanged = true
        condition.broadcast()
        condition.unlock()
    }

    /// Queues completed buckets for writing. Never waits for the disk. After `close()`, the
    /// buckets are dropped (and counted).
    public func submit(_ buckets: [TrafficBucket]) {
        guard !buckets.isEmpty else { return }
        condition.lock()
        defer { condition.unlock() }
        if closed {
            status.droppedBuckets += UInt64(buckets.count)
            return
        }
        for bucket in buckets {
            pending.append((nextSequence, bucket))
            nextSequence += 1
            status.pendingRows += bucket.rows.count
        }
        status.pendingBuckets = pending.count
        dropOldestBeyondBound()
        condition.broadcast()
    }

    /// The writer's state now.
    public var currentStatus: Status {
        condition.lock()
        defer { condition.unlock() }
        return status
    }

    /// Writes everything queued now and waits for it (SIGTERM). Throws the write's error when
    /// buckets remain unwritten (they stay queued).
    public func flush() throws(HistoryError) {
        condition.lock()
        defer { condition.unlock() }
        if stopped { throw HistoryError.closed(path) }
        flushRequested += 1
        let ticket = flushRequested
        condition.broadcast()
        while flushCompleted < ticket && !stopped { condition.wait() }
        if !pending.isEmpty, !lastErrorIsFromPruning, let error = status.lastError { throw error }
    }

    /// Flushes, ends the thread and closes the store. What could not be written is dropped:
    /// the error says how many buckets. Later `submit`s are dropped; a second `close` does nothing.
    public func close() throws(HistoryError) {
        var flushError: HistoryError?
        do { try flush() } catch { flushError = error }
        condition.lock()
        if closed {
            condition.unlock()
            return
        }
        closed = true
        stopping = true
        condition.broadcast()
        while !stopped { condition.wait() }
        let lost = pending.count
        status.droppedBuckets += UInt64(lost)
        pending.removeAll()
        status.pendingBuckets = 0
        status.pendingRows = 0
        condition.unlock()
        try? store?.close()
        store = nil
        if let flushError, lost > 0 {
            throw HistoryError(code: flushError.code, path: flushError.path,
                               reason: "\(flushError.reason); \(lost) bucket\(lost == 1 ? "" : "s") of history lost")
        }
    }

    // MARK: The thread

    private func run() {
        var lastPrune: Date?
        var retryAt: Date?
        condition.lock()
        while true {
            if stopping {
                stopped = true
                condition.broadcast()
                condition.unlock()
                return
            }
            let flushTicket = flushRequested
            let retention = currentRetention
            let wantsFlush = flushTicket > flushCompleted
            let canRetry = retryAt.map { Date() >= $0 } ?? true
            let needsOpen = store == nil && (canRetry || wantsFlush)
            if retentionChanged {
                retentionChanged = false
                lastPrune = nil
            }
            let pruneDue = store != nil && retention != nil
                && (lastPrune.map { Date().timeIntervalSince($0) >= pruneInterval } ?? true)
            let hasWork = !pending.isEmpty && (canRetry || wantsFlush)
            if !hasWork && !pruneDue && !wantsFlush && !needsOpen {
                var deadline = Date().addingTimeInterval(pruneInterval)
                if let lastPrune { deadline = lastPrune.addingTimeInterval(pruneInterval) }
                if !pending.isEmpty || store == nil, let retryAt { deadline = min(deadline, retryAt) }
                _ = condition.wait(until: deadline)
                continue
            }
            let batch = hasWork ? pending : []
            inFlightThrough = batch.last?.sequence
            condition.unlock()

            var error: HistoryError?
            var opened = false
            if needsOpen {
                do {
                    store = try open()
                    opened = true
                } catch let failure { error = failure }
            }
            if let store, error == nil, !batch.isEmpty {
                do { try store.write(batch.map(\.bucket)) } catch let failure { error = failure }
            }
            var pruneError: HistoryError?
            // Pruning also runs right after opening (lastPrune is still nil then).
            if let store, let retention, error == nil,
               lastPrune.map({ Date().timeIntervalSince($0) >= pruneInterval }) ?? true {
                lastPrune = Date()
                do {
                    try store.prune(now: clock(), retentionDays: retention.days, maxBytes: retention.maxBytes)
                } catch let failure { pruneError = failure }
            }

            condition.lock()
            inFlightThrough = nil
            var changed = false
            if let error {
                retryAt = Date().addingTimeInterval(retryInterval)
                changed = status.lastError != error
                status.lastError = error
                lastErrorIsFromPruning = false
            } else {
                if let last = batch.last?.sequence {
                    pending.removeAll { $0.sequence <= last }
                    status.writtenBuckets += UInt64(batch.count)
                    status.pendingRows = pending.reduce(0) { $0 + $1.bucket.rows.count }
                    status.pendingBuckets = pending.count
                    retryAt = nil
                }
                if let pruneError {
                    // A failed write's error stays: it is what keeps buckets waiting.
                    if status.lastError == nil || lastErrorIsFromPruning {
                        changed = status.lastError != pruneError
                        status.lastError = pruneError
                        lastErrorIsFromPruning = true
                    }
                } else if status.lastError != nil, !batch.isEmpty || opened || (pruneDue && lastErrorIsFromPruning) {
                    status.lastError = nil
                    lastErrorIsFromPruning = false
                    changed = true
                }
            }
            if wantsFlush { flushCompleted = flushTicket }
            condition.broadcast()
            if changed, let onChange {
                let snapshot = status
                condition.unlock()
                onChange(snapshot)
                condition.lock()
            }
        }
    }

    /// Caller holds the lock. Drops the oldest buckets not being written until the rows fit
    /// (always keeping the newest).
    private func dropOldestBeyondBound() {
        while status.pendingRows > maxPendingRows {
            let first = inFlightThrough.map { through in pending.firstIndex { $0.sequence > through } ?? pending.count } ?? 0
            guard first < pending.count - 1 else { break }
            let dropped = pending.remove(at: first)
            status.pendingRows -= dropped.bucket.rows.count
            status.droppedBuckets += 1
            let start = dropped.bucket.start
            if let range = status.droppedRange {
                status.droppedRange = min(range.lowerBound, start)...max(range.upperBound, start)
            } else {
                status.droppedRange = start...start
            }
        }
        status.pendingBuckets = pending.count
    }
}
