import NetfilterSystem
import ProcessResolution

/// The parts of owner resolution the receive thread runs: the process table fed by kernel
/// process events (or periodic /proc scans when those are unavailable), the socket resolver,
/// and the attributor on top. Create it on the thread that will use it, inside the namespace.
public final class OwnerResolution: @unchecked Sendable {
    public let table: ProcessTable
    public let events: ProcessEventSource
    public let attributor: OwnerAttributor
    private var lastRescan = WallClock.monotonicNanoseconds()
    private static let rescanInterval: UInt64 = 1_000_000_000

    init(table: ProcessTable, events: ProcessEventSource, attributor: OwnerAttributor) {
        self.table = table
        self.events = events
        self.attributor = attributor
    }

    /// Subscribes to process events. Call it BEFORE entering another network namespace: the
    /// kernel's process connector exists only in the initial one (elsewhere the subscription is
    /// refused), and a socket stays in the namespace it was opened in.
    public static func subscribeToProcessEvents() -> ProcessEventSource {
        ProcessEventSource()
    }

    /// Seeds the table from /proc and opens the socket resolver (in the calling thread's
    /// namespace: sock_diag answers for it). Reports once what is missing (no connector:
    /// periodic scans; no sock_diag: no exact matches).
    public static func start(events: ProcessEventSource, flushTimeout: UInt32,
                             report: (String) -> Void) -> OwnerResolution {
        if case .rescan(let reason) = events.mode { report(reason) }
        let table = ProcessTable()
        table.seed()
        var sockets: SocketResolver?
        do {
            sockets = try SocketResolver()
        } catch {
            report("exact socket lookup unavailable (\(error)); attributing by uid and cgroup only")
        }
        return OwnerResolution(table: table, events: events,
                               attributor: OwnerAttributor(table: table, sockets: sockets, flushTimeoutHundredths: flushTimeout))
    }

    /// The process-event descriptor, for the receive loop to poll and drain before each batch.
    public var sources: [PollSource] {
        guard let descriptor = events.descriptor else { return [] }
        return [PollSource(descriptor: descriptor) { [self] in table.drain(events) }]
    }

    /// Periodic work on the receive thread: expire exited processes and stale flows; in
    /// fallback mode, rescan /proc.
    public func housekeeping() {
        let now = WallClock.monotonicNanoseconds()
        attributor.housekeeping(now: now)
        if events.descriptor == nil, now - lastRescan >= Self.rescanInterval {
            lastRescan = now
            table.rescan()
        }
    }
}
