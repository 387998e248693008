import Export
import NetfilterSystem

/// Receives NFLOG batches until told to stop, feeding each to a `BatchProcessor` and writing
/// the events. Runs on a dedicated thread: it blocks in poll(2) on the netlink socket, the
/// termination signalfd and a wakeup eventfd.
public final class ReceiveLoop: @unchecked Sendable {
    /// Why the loop ended.
    public enum Ending: Sendable, Equatable {
        case signal(Int32)
        case countReached
        case outputClosed
        case stopRequested
        case failed(String)
    }

    private let subscription: NflogSubscription
    private var processor: BatchProcessor
    private var writer: EventWriter
    private let signals: TerminationSignals?
    private let wakeup: WakeupEvent
    /// Sees every event after it is written (e.g. a trace's summary).
    private let observe: ((PacketEvent) -> Void)?
    /// Called about every `tickMilliseconds` (housekeeping: expiring exited processes).
    private let tick: (() -> Void)?
    private let tickMilliseconds: Int32 = 500
    private var lastTick = WallClock.monotonicNanoseconds()
    /// At least 256 KiB: a smaller buffer truncates large batches (MSG_TRUNC) and loses them.
    private let buffer: UnsafeMutableRawBufferPointer

    public init(subscription: NflogSubscription, processor: BatchProcessor, writer: EventWriter,
                signals: TerminationSignals?, wakeup: WakeupEvent, observe: ((PacketEvent) -> Void)? = nil,
                tick: (() -> Void)? = nil) {
        self.observe = observe
        self.tick = tick
        self.subscription = subscription
        self.processor = processor
        self.writer = writer
        self.signals = signals
        self.wakeup = wakeup
        let size = max(256 << 10, Int(subscription.settings.netlinkBufferSize) * 2)
        buffer = .allocate(byteCount: size, alignment: 8)
    }

    deinit { buffer.deallocate() }

    public var counters: MonitorCounters { processor.counters }

    /// Asks the loop to stop (from any thread).
    public func requestStop() { wakeup.signal() }

    /// Runs until a signal, the event limit, a closed output, a stop request or an error.
    ///
    /// One poll(2) and one recv(2) per NFLOG batch: poll returns at once when the next batch is
    /// already queued, and a recv that would block (the usual case when keeping up) is never
    /// made. Anything more per batch is paid on every few dozen packets.
    public func run() -> Ending {
        var descriptors = [subscription.socket.descriptor, wakeup.descriptor]
        if let signals { descriptors.append(signals.descriptor) }
        var pollSet = PollSet(descriptors)
        while true {
            if processor.isFinished { return .countReached }
            do {
                guard try pollSet.wait(timeoutMilliseconds: tick == nil ? -1 : tickMilliseconds) else {
                    runTickIfDue()
                    continue
                }
            } catch {
                return .failed(MonitorError.receive(error).description)
            }
            if let signals, pollSet.isReady(signals.descriptor), let number = signals.take() {
                drainAvailable()
                return .signal(number)
            }
            runTickIfDue()
            if pollSet.isReady(wakeup.descriptor) {
                drainAvailable()
                return .stopRequested
            }
            if pollSet.isReady(subscription.socket.descriptor) {
                if let ending = receiveAvailable(limit: 1) { return ending }
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

    /// Reads whatever is queued without blocking (used before exiting on a signal so the
    /// summary covers what the kernel had already delivered).
    private func drainAvailable() {
        _ = receiveAvailable(limit: 1024)
    }

    /// Receives up to `limit` datagrams without blocking; returns an ending if one occurred.
    private func receiveAvailable(limit: Int) -> Ending? {
        for _ in 0..<limit {
            let received: NetlinkSocket.Received
            do {
                received = try subscription.socket.receive(into: buffer, nonBlocking: true)
            } catch {
                return .failed(MonitorError.receive(error).description)
            }
            switch received {
            case .wouldBlock:
                return nil
            case .overrun:
                processor.recordOverrun()
                continue
            case .truncated(let count, _):
                processor.recordTruncatedBatch()
                if let ending = consume(count: count) { return ending }
            case .bytes(let count):
                if let ending = consume(count: count) { return ending }
            }
            if processor.isFinished { return .countReached }
        }
        return nil
    }

    private func consume(count: Int) -> Ending? {
        var writeError: SystemError?
        processor.process(batch: UnsafeRawBufferPointer(rebasing: buffer[0..<count])) { event in
            observe?(event)
            guard writeError == nil else { return }
            do throws(SystemError) { try writer.add(event) } catch { writeError = error }
        }
        if writeError == nil {
            do { try writer.flush() } catch { writeError = error }
        }
        guard let writeError else { return nil }
        if writeError.code == Errno.brokenPipe { return .outputClosed }
        return .failed("cannot write events: \(writeError)")
    }
}
