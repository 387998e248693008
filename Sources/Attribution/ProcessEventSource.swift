// The live feed of process events: a NETLINK_CONNECTOR socket subscribed to cn_proc, or —
// when the kernel or our privileges do not allow that — nothing but a note that the caller must
// rescan /proc on a timer.
//
// Not thread-safe: the monitor drains it under the process table's lock, from a thread that
// waits on `descriptor`, and from the receive thread before it resolves a new flow, so a sender's
// exec is in the table before its packet is attributed.
import NetfilterSystem
import NetlinkWire
import Foundation  // errno names (EPERM…) only

public final class ProcessEventSource {
    public enum Mode: Sendable, Equatable {
        /// Events arrive on `descriptor`.
        case connector
        /// No events: call `ProcessTable.rescan()` periodically. `reason` is one line for the
        /// user: what is missing and what it costs.
        case rescan(reason: String)
    }

    public let mode: Mode
    /// Exit records (taskstats), which name a program whose exec was read too late; nil in
    /// rescan mode (nothing would read them), and when the kernel or our privileges do not allow
    /// them (`exitRecordsUnavailable` says why).
    public private(set) var exitRecords: TaskExitSource?
    /// One line for the user when the connector works and `exitRecords` is nil.
    public private(set) var exitRecordsUnavailable: String?
    /// The connector socket to poll for readability; nil in rescan mode.
    public var descriptor: Int32? { socket?.descriptor }
    /// Times the kernel dropped events because our socket buffer was full (ENOBUFS). After
    /// each, `takeOverrun()` is true once and the table must re-seed from /proc.
    public private(set) var overruns = 0
    /// Messages that could not be decoded (counted, skipped).
    public private(set) var malformed = 0

    private let socket: NetlinkSocket?
    private var pendingOverrun = false
    private var early: [ProcEvent] = []
    private var buffer: UnsafeMutableRawBufferPointer

    /// Opens the connector and subscribes, waiting up to `acknowledgementTimeoutMilliseconds`
    /// for the kernel's answer. Never throws: every failure selects rescan mode with a reason.
    public init(receiveBufferBytes: Int = 4 << 20, acknowledgementTimeoutMilliseconds: Int32 = 1000) {
        buffer = .allocateForKernelCopies(byteCount: 64 * 1024)
        let opened: NetlinkSocket
        do {
            opened = try NetlinkSocket(protocol: ProcConnector.netlinkProtocol, groups: ProcConnector.index)
        } catch {
            socket = nil
            mode = .rescan(reason: Self.explain(error.code, "open the proc connector"))
            return
        }
        // A burst of forks (a build, a shell loop) is thousands of events; the default buffer
        // (~200 KiB) overruns quickly. Forcing needs CAP_NET_ADMIN, which LISTEN needs anyway.
        _ = try? opened.setReceiveBufferSize(receiveBufferBytes, force: true)
        let tag = UInt32.random(in: 1..<UInt32.max)
        do {
            try opened.send(ProcConnector.subscription(.listen, tag: tag, portID: opened.portID))
        } catch {
            opened.close()
            socket = nil
            mode = .rescan(reason: Self.explain(error.code, "subscribe to process events"))
            return
        }
        // The answer is multicast to every listener; ours echoes our tag. Events
        // that arrive before it are real and kept for the first read().
        var answer: UInt32?
        let deadline = WallClock.monotonicNanoseconds() + UInt64(max(0, acknowledgementTimeoutMilliseconds)) * 1_000_000
        var collected: [ProcEvent] = []
        var overrun = false
        while answer == nil, waitReadable(opened.descriptor, until: deadline) {
            let drained = Self.drain(opened, buffer, malformed: &malformed, overrun: &overrun)
            for event in drained {
                if case .acknowledgement(let error, let answering) = event.kind {
                    if answering == tag { answer = error }
                } else {
                    collected.append(event)
                }
            }
        }
        switch answer {
        case 0?:
            socket = opened
            mode = .connector
            do {
                exitRecords = try TaskExitSource()
            } catch {
                exitRecordsUnavailable = error.description
            }
            early = collected
            pendingOverrun = overrun
            if overrun { overruns += 1 }
        case let code?:
            opened.close()
            socket = nil
            mode = .rescan(reason: Self.explain(Int32(bitPattern: code), "subscribe to process events"))
        case nil:
            opened.close()
            socket = nil
            // The kernel ignores subscriptions from outside the initial user and pid namespaces.
            mode = .rescan(reason: "process events unavailable: the kernel did not answer the proc connector subscription (outside the initial user/pid namespace?); falling back to periodic /proc scans, so processes that live shorter than the scan interval can be missed")
        }
    }

    deinit {
        socket?.close()
        buffer.deallocate()
    }

    /// Every event waiting now (never blocks). Empty in rescan mode.
    public func read() -> [ProcEvent] {
        guard let socket else { return [] }
        var overrun = false
        var events = early
        early = []
        events += Self.drain(socket, buffer, malformed: &malformed, overrun: &overrun)
        if overrun {
            overruns += 1
            pendingOverrun = true
        }
        return events.filter { if case .acknowledgement = $0.kind { false } else { true } }
    }

    /// Every exit record waiting now (never blocks); empty without exit records.
    public func readExits() -> [TaskExit] {
        exitRecords?.read() ?? []
    }

    /// True once after events were lost: the caller must re-seed the table from /proc.
    public func takeOverrun() -> Bool {
        defer { pendingOverrun = false }
        return pendingOverrun
    }

    private static func drain(_ socket: NetlinkSocket, _ buffer: UnsafeMutableRawBufferPointer,
                              malformed: inout Int, overrun: inout Bool) -> [ProcEvent] {
        var events: [ProcEvent] = []
        var undecodable = 0
        let losses = socket.drainWaiting(into: buffer) { bytes in
            ProcConnector.forEachEvent(in: bytes) { result in
                switch result {
                case .success(let event): events.append(event)
                case .failure: undecodable += 1
                }
            }
        }
        malformed += undecodable + losses.unreadable
        if losses.overruns > 0 { overrun = true }
        return events
    }

    private static func explain(_ code: Int32, _ operation: String) -> String {
        let cause: String
        switch code {
        case EPERM, EACCES: cause = "needs CAP_NET_ADMIN (run as root)"
        case EPROTONOSUPPORT: cause = "this kernel has no proc connector (CONFIG_PROC_EVENTS)"
        default: cause = Errno.describe(code)
        }
        return "process events unavailable: cannot \(operation): \(cause); falling back to periodic /proc scans, so processes that live shorter than the scan interval can be missed"
    }
}

extension ProcessTable {
    /// Applies every waiting event of `source`, re-seeding from /proc after an overrun.
    /// Call it before handling each NFLOG batch.
    public func drain(_ source: ProcessEventSource) {
        let events = source.read()
        let reads = readAhead(events)
        let exits = source.readExits()
        apply(events, reads: reads)
        recordExits(exits, receivedAt: WallClock.monotonicNanoseconds())
        if source.takeOverrun() { seed() }
    }
}
