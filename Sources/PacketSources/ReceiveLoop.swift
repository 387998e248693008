import NetfilterSystem
import PacketModel
import Synchronization

/// Receives a source's datagrams until told to stop, the source decoding each into packets for
/// the consumer (the session's pipeline). Runs on a dedicated thread that waits between batches blocked in recv(2) on the
/// netlink socket or, under load, in a coalescing pause (`WakeCoalescer`); a second thread waits
/// for the termination signals and the wakeup eventfd, and interrupts that wait when one comes.
public final class ReceiveLoop: @unchecked Sendable {
    /// Why the loop ended.
    public enum Ending: Sendable, Equatable {
        case signal(Int32)
        case countReached
        case outputClosed
        case stopRequested
        case failed(String)
    }

    private let source: any PacketSource
    private let consumer: any PacketConsumer
    private let signals: TerminationSignals?
    private let wakeup: WakeupEvent
    /// Called on SIGHUP (on the stop watcher's thread); without one, SIGHUP stops the loop.
    private let reload: (() -> Void)?
    /// Called about every `tickMilliseconds` (housekeeping: expiring exited processes).
    private let tick: (() -> Void)?
    private let tickMilliseconds: Int32 = 500
    private var lastTick = WallClock.monotonicNanoseconds()
    /// At least 256 KiB: a smaller buffer truncates large batches (MSG_TRUNC) and loses them.
    private let buffer: UnsafeMutableRawBufferPointer
    /// Under load, wake at most once per interval (`NflogSettings.coalesceMicroseconds`).
    private var coalescer: WakeCoalescer
    /// With an urgent socket: the urgent socket alone (watched during a pause), and both (the
    /// wait when idle, instead of a blocking recv on the main socket).
    private var urgentOnly: PollSet
    private var either: PollSet
    /// The source's own socket alone: the wait when it has a mark (`receiveMainWaiting`).
    private var mainOnly: PollSet
    /// The source's urgent sockets, asked once (see `PacketSource.urgentSockets`), each with
    /// the latest moment its queue was seen empty.
    public let urgentQueueMarks: [EmptyQueueMark]
    /// The source's own socket's mark, when the kernel writes to it at send time (a queue:
    /// `PacketSource.writesAtSendTime`); nil for NFLOG's batches.
    public let mainQueueMark: EmptyQueueMark?
    /// Every socket whose datagrams carry `sentAfter`: the urgent ones and a queue source's own.
    public var sendTimeQueueMarks: [EmptyQueueMark] { urgentQueueMarks + (mainQueueMark.map { [$0] } ?? []) }
    /// For the datagram being read from an urgent socket: the latest moment its queue was seen
    /// empty before the read (the packet was queued, so sent, after it); nil for the others.
    private var sentAfter: UInt64?
    /// When a pause an urgent datagram interrupted is due to end (monotonic ns), nil otherwise.
    private var pauseDeadline: UInt64?
    /// When the urgent socket was last read while batches were being taken back to back
    /// (monotonic ns; 0 after every wait, so the first read after one always looks).
    private var lastUrgentCheck: UInt64 = 0
    /// When the loop last stopped waiting (found nothing, or woke from a wait): what it reads
    /// afterwards was queued about then or later (see `PacketConsumer.beginDatagram`).
    private var busySince = WallClock.monotonicNanoseconds()
    /// Between batches read back to back, the urgent socket is looked at no more often than
    /// this: a recv per batch cost more than the clock read, and a new flow waits at most this
    /// much longer.
    private static let urgentCheckInterval: UInt64 = 100_000

    /// `marksSendTimes`: whether the datagrams of a source that writes at send time carry
    /// `sentAfter` (`mainQueueMark`); it costs a ppoll before each wait's recv, so a consumer that
    /// never names a packet's process (an enforce policy that reads nothing of it) goes without.
    public init(source: any PacketSource, consumer: any PacketConsumer, signals: TerminationSignals?,
                wakeup: WakeupEvent, reload: (() -> Void)? = nil, tick: (() -> Void)? = nil,
                marksSendTimes: Bool = true) {
        self.source = source
        self.consumer = consumer
        self.reload = reload
        self.tick = tick
        self.signals = signals
        self.wakeup = wakeup
        buffer = .allocateForKernelCopies(byteCount: source.receiveBufferSize)
        coalescer = WakeCoalescer(intervalMicroseconds: source.coalesceMicroseconds,
                                  receiveBufferBytes: source.socketReceiveBufferBytes)
        urgentQueueMarks = source.urgentSockets.map(EmptyQueueMark.init(socket:))
        mainQueueMark = source.writesAtSendTime && marksSendTimes ? EmptyQueueMark(socket: source.socket) : nil
        let urgent = urgentQueueMarks.map(\.socket.descriptor)
        urgentOnly = PollSet(urgent)
        either = PollSet([source.socket.descriptor] + urgent)
        mainOnly = PollSet([source.socket.descriptor])
    }

    deinit { buffer.deallocate() }

    /// Asks the loop to stop (from any thread).
    public func requestStop() { wakeup.signal() }

    /// Why the loop must stop, set by the stop watcher: `noStop`, `stopRequestedCode`, or a
    /// signal number.
    private let stopReason = Atomic<Int32>(ReceiveLoop.noStop)
    private static let noStop: Int32 = 0
    private static let stopRequestedCode: Int32 = -1
    /// Set when `run` has returned, so the watcher stops interrupting and exits.
    private let finished = Atomic<Bool>(false)

    /// Runs until a signal, the event limit, a closed output, a stop request or an error.
    ///
    /// One recv(2) per NFLOG batch, blocking in it when nothing is queued: a poll(2) before each
    /// recv cost about 7% more CPU per message. Under load the loop wakes at most once per
    /// coalescing interval and reads every batch queued meanwhile (`WakeCoalescer`). Signals and
    /// stop requests are waited for on another thread, which interrupts the recv or the pause
    /// (`ThreadInterrupter`); the receive timeout wakes the loop for its housekeeping tick.
    public func run() -> Ending {
        let interrupter = ThreadInterrupter()
        let watcher: DedicatedThread
        do {
            try source.socket.setReceiveTimeout(milliseconds: tick == nil ? 0 : Int(tickMilliseconds))
            watcher = try DedicatedThread(name: "nfowner-stop") { [self] in watchForStop(interrupter) }
        } catch {
            return .failed(SourceError.receive(error).description)
        }
        defer {
            source.sendHeldReplies()
            finished.store(true, ordering: .releasing)
            wakeup.signal()
            watcher.join()
        }
        while true {
            if consumer.isFinished { return .countReached }
            if let ending = requestedStop() {
                source.stopDelivery()
                drainAvailable()
                return ending
            }
            let received: NetlinkSocket.Received?
            do {
                received = try receiveNext()
            } catch {
                return .failed(SourceError.receive(error).description)
            }
            runTickIfDue()
            guard let received else {
                busySince = WallClock.monotonicNanoseconds()
                continue
            }
            if let ending = handle(received) { return ending }
        }
    }

    /// The next datagram, or nil when a wait ended without one (timeout, interrupt, pause over).
    ///
    /// Without coalescing: one blocking recv. With it: what is queued is taken without
    /// blocking; when nothing is and the loop is under load (see `WakeCoalescer`), the thread
    /// sleeps out the rest of the interval since its last wakeup (batches collect in the socket
    /// buffer meanwhile) instead of blocking in recv, which would wake it for the very next batch.
    ///
    /// With urgent sockets (held packets, each flow's first packet: `PacketSource.urgentSockets`),
    /// they are read first, a pause watches them (an urgent datagram ends the sleep, is handled,
    /// and the pause resumes until its end: the bulk still waits), and an idle loop polls all.
    private func receiveNext() throws(SystemError) -> NetlinkSocket.Received? {
        let hasUrgent = !urgentQueueMarks.isEmpty
        sentAfter = nil
        if hasUrgent {
            let now = WallClock.monotonicNanoseconds()
            if pauseDeadline != nil || now &- lastUrgentCheck >= Self.urgentCheckInterval {
                lastUrgentCheck = now
                for mark in urgentQueueMarks {
                    if mark.takeOverrun() { source.recordOverrun() }
                    let emptySince = mark.latest
                    let first = try mark.socket.receive(into: buffer, nonBlocking: true)
                    if first != .wouldBlock {
                        lastUrgentCheck = 0  // more may be queued behind it
                        sentAfter = emptySince
                        return first
                    }
                    mark.recordEmpty(since: now)
                }
                if let deadline = pauseDeadline { return try pauseWatchingUrgent(until: deadline) }
            }
        }
        if source.holdsReplies {
            // Verdicts go out together, one send for all, when no further packet is queued
            // (so an isolated packet is answered at once) or when enough wait (the source's bound).
            let queued = try receiveMainQueued()
            if queued != .wouldBlock { return queued }
            source.sendHeldReplies()
        }
        guard coalescer.isEnabled else {
            source.recordWakeup()
            guard hasUrgent else { return try receiveMainWaiting() }
            let queued = try receiveMainQueued()
            if queued != .wouldBlock { return queued }
            _ = try either.waitInterruptibly(nanoseconds: tickNanoseconds)
            lastUrgentCheck = 0
            return nil
        }
        let queued = try receiveMainQueued()
        guard queued == .wouldBlock else {
            coalescer.recordRead()
            return queued
        }
        source.recordWakeup()
        let now = WallClock.monotonicNanoseconds()
        let pause = coalescer.remainingPause(at: now)
        if pause > 0 {
            if hasUrgent { return try pauseWatchingUrgent(until: now + pause) }
            ThreadInterrupter.sleep(nanoseconds: pause)
            coalescer.woke(at: WallClock.monotonicNanoseconds(), endingPause: true)
            return nil
        }
        if hasUrgent {
            _ = try either.waitInterruptibly(nanoseconds: tickNanoseconds)
            lastUrgentCheck = 0
            coalescer.woke(at: WallClock.monotonicNanoseconds(), endingPause: false)
            return nil
        }
        let received = try receiveMainWaiting()
        coalescer.woke(at: WallClock.monotonicNanoseconds(), endingPause: false)
        if received != nil { coalescer.recordRead() }
        return received
    }

    /// A non-blocking recv on the source's socket. When the source writes at send time (a queue:
    /// `mainQueueMark`), an empty queue is noted and a datagram carries the moment it was sent after.
    private func receiveMainQueued() throws(SystemError) -> NetlinkSocket.Received {
        guard let mark = mainQueueMark else { return try source.socket.receive(into: buffer, nonBlocking: true) }
        let before = WallClock.monotonicNanoseconds()
        let emptySince = mark.latest
        let received = try source.socket.receive(into: buffer, nonBlocking: true)
        if received == .wouldBlock { mark.recordEmpty(since: before) } else { sentAfter = emptySince }
        return received
    }

    /// A blocking recv; a datagram it returns was queued while it waited, so the loop is busy
    /// from now on. With a mark, a wait in ppoll and then a non-blocking recv instead: the mark
    /// must be read after the wait and before the datagram is taken — read before a blocking
    /// recv it would miss every look made while the loop waited (the exits of the programs that
    /// ran meanwhile), and read after the recv it could be a look that found the queue empty
    /// only because the datagram had just been taken.
    private func receiveMainWaiting() throws(SystemError) -> NetlinkSocket.Received? {
        if let mark = mainQueueMark {
            guard try mainOnly.waitInterruptibly(nanoseconds: tickNanoseconds) else { return nil }
            let emptySince = mark.latest
            let received = try source.socket.receive(into: buffer, nonBlocking: true)
            guard received != .wouldBlock else { return nil }
            busySince = WallClock.monotonicNanoseconds()
            sentAfter = emptySince
            return received
        }
        let received = try source.socket.receiveWaiting(into: buffer)
        if received != nil { busySince = WallClock.monotonicNanoseconds() }
        return received
    }

    /// Sleeps until `deadline` unless the urgent socket becomes readable first; then the pause is
    /// remembered, to resume once the urgent datagrams are handled.
    private func pauseWatchingUrgent(until deadline: UInt64) throws(SystemError) -> NetlinkSocket.Received? {
        lastUrgentCheck = 0
        let now = WallClock.monotonicNanoseconds()
        if now < deadline, try urgentOnly.waitInterruptibly(nanoseconds: deadline - now) {
            pauseDeadline = deadline
            return nil
        }
        pauseDeadline = nil
        coalescer.woke(at: WallClock.monotonicNanoseconds(), endingPause: true)
        return nil
    }

    /// How long an idle wait lasts before the housekeeping tick (nil: no tick, wait for packets).
    private var tickNanoseconds: UInt64? { tick == nil ? nil : UInt64(tickMilliseconds) * 1_000_000 }

    /// The stop the watcher asked for, if any.
    private func requestedStop() -> Ending? {
        switch stopReason.load(ordering: .acquiring) {
        case Self.noStop: nil
        case Self.stopRequestedCode: .stopRequested
        case let number: .signal(number)
        }
    }

    /// On its own thread: waits for a termination signal or a stop request, records it, then
    /// interrupts the receive loop until it has returned (a signal sent just before the loop
    /// enters recv is lost, so it is repeated every 10 ms).
    private func watchForStop(_ interrupter: ThreadInterrupter) {
        var descriptors = [wakeup.descriptor]
        if let signals { descriptors.append(signals.descriptor) }
        var pollSet = PollSet(descriptors)
        while !finished.load(ordering: .acquiring) {
            let waited = (try? pollSet.wait(timeoutMilliseconds: -1)) != nil
            if finished.load(ordering: .acquiring) { return }
            if !waited {
                // poll(2) itself failed: better a monitor that stops than one no signal can stop.
                stopReason.store(Self.stopRequestedCode, ordering: .releasing)
            } else if let signals, pollSet.isReady(signals.descriptor), let number = signals.take() {
                if number == TerminationSignals.hangup, let reload {
                    reload()
                    continue
                }
                stopReason.store(number, ordering: .releasing)
            } else if pollSet.isReady(wakeup.descriptor) {
                stopReason.store(Self.stopRequestedCode, ordering: .releasing)
            } else {
                continue
            }
            var pause = PollSet([])
            while !finished.load(ordering: .acquiring) {
                interrupter.interrupt()
                _ = try? pause.wait(timeoutMilliseconds: 10)
            }
        }
    }

    private func runTickIfDue() {
        guard let tick else { return }
        let now = WallClock.monotonicNanoseconds()
        guard now - lastTick >= UInt64(tickMilliseconds) * 1_000_000 else { return }
        lastTick = now
        tick()
    }

    /// Reads whatever is queued without blocking (used before exiting on a signal, after
    /// `stopDelivery`, so the summary covers what the kernel had logged).
    private func drainAvailable() {
        _ = receiveAvailable(limit: 1024)
    }

    /// Receives up to `limit` datagrams from each socket without blocking; returns an ending if
    /// one occurred.
    private func receiveAvailable(limit: Int) -> Ending? {
        sentAfter = nil
        for socket in urgentQueueMarks.map(\.socket) + [source.socket] {
            for _ in 0..<limit {
                let received: NetlinkSocket.Received
                do {
                    received = try socket.receive(into: buffer, nonBlocking: true)
                } catch {
                    return .failed(SourceError.receive(error).description)
                }
                if received == .wouldBlock { break }
                if let ending = handle(received) { return ending }
            }
        }
        return nil
    }

    /// Processes what one receive returned; an ending if one occurred.
    private func handle(_ received: NetlinkSocket.Received) -> Ending? {
        switch received {
        case .wouldBlock:
            return nil
        case .overrun:
            source.recordOverrun()
            return nil
        case .truncated(let count, _):
            source.recordTruncatedDatagram()
            if let ending = consume(count: count) { return ending }
        case .bytes(let count):
            if let ending = consume(count: count) { return ending }
        }
        return consumer.isFinished ? .countReached : nil
    }

    private func consume(count: Int) -> Ending? {
        consumer.beginDatagram(busySince: busySince, sentAfter: sentAfter)
        source.process(datagram: UnsafeRawBufferPointer(rebasing: buffer[0..<count]), into: consumer)
        return consumer.endDatagram()
    }
}
