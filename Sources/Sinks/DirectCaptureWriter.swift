import Capture
import Foundation
import NetfilterSystem
import Synchronization

/// A pcapng file written around the page cache, from a thread of its own.
///
/// The sink encodes each packet straight into a 1 MiB aligned chunk (`output`) and commits what
/// it encoded once a batch, or when the chunk is nearly full (`PcapngChunkLayout` keeps every
/// write ending on a block boundary); a full chunk goes to the
/// writer thread, which writes it with one direct write while the sink fills the next. Chunks are
/// reused (at most `chunkLimit`), so a long capture touches the same few megabytes of memory
/// instead of a new page-cache page per 4 KiB of file — the kernel's copy into those pages was
/// the larger part of a capture's CPU. When the disk falls behind by `chunkLimit` chunks, the
/// receive thread waits for it (and the kernel counts what it could not deliver meanwhile, as it
/// would for any slow consumer).
///
/// A capture that goes quiet still reaches the disk: `writeEarly` (the sink's tick, twice a
/// second) pads the chunk to the next 4 KiB and writes what is new. The last piece of the file is
/// written unpadded, so the file is valid after any write and exact after `finish`.
final class DirectCaptureWriter {
    let path: String
    /// Where the next packet's blocks are encoded: the current chunk after its committed blocks.
    /// Past `chunkSize` there is room for the longest packet nfowner can write (64 KiB of data
    /// and two owner options of at most 64 KiB each), so a packet is never cut.
    ///
    /// This and the chunk's bookkeeping belong to the receive thread alone: no dynamic
    /// exclusivity checks (they cost ~200 instructions a packet, callgrind).
    @exclusivity(unchecked) var output: RawBlockOutput
    private let file: DirectOutputFile
    @exclusivity(unchecked) private var layout: PcapngChunkLayout
    @exclusivity(unchecked) private var chunk: AlignedBuffer
    /// Where the current chunk starts in the file.
    @exclusivity(unchecked) private var chunkOffset = 0
    private let chunkLimit: Int
    private var chunksAllocated = 1
    private var thread: DedicatedThread?
    /// What the writer thread shares with this one (the thread holds it, not `self`).
    private let channel: Channel

    static let roomPastChunk = 512 << 10

    /// Opens `path` for direct writes and starts the writer thread; nil when the file system does
    /// not take direct writes (the caller writes through the page cache instead).
    init?(path: String, chunkSize: Int = 1 << 20, chunkLimit: Int = 8) throws(SystemError) {
        guard let file = try DirectOutputFile(path: path) else { return nil }
        self.path = path
        self.file = file
        self.chunkLimit = max(2, chunkLimit)
        layout = PcapngChunkLayout(chunkSize: chunkSize, alignment: DirectOutputFile.alignment)
        chunk = try AlignedBuffer(capacity: chunkSize + Self.roomPastChunk)
        output = RawBlockOutput(base: chunk.base, capacity: chunk.capacity)
        let channel = Channel(file: file)
        self.channel = channel
        thread = try DedicatedThread(name: "nfowner-capture") { channel.writeLoop() }
    }

    /// Bytes in the file once everything handed over is written (blocks and padding).
    var size: Int { chunkOffset + layout.filled }

    /// `commit` once `output` holds this much: what is encoded past it, up to one packet, and
    /// what may have to move to the next chunk, stays below a chunk.
    var commitThreshold: Int { layout.chunkSize - Self.roomPastChunk / 2 }

    /// Keeps the whole blocks encoded into `output` since the last commit (packets, with the
    /// interface or process blocks they need). Blocks that would leave a gap no padding fills
    /// open the next chunk, the current one closed with padding. The sink commits when
    /// `output.count` passes `commitThreshold` and before each flush, tick and finish — not per
    /// packet, where it cost more than the rest of the packet's bookkeeping.
    func commit() throws(SinkError) {
        guard !output.overflowed else {
            throw SinkError(.writeFailed, "a capture block longer than \(Self.roomPastChunk) bytes (nfowner writes none)")
        }
        while true {
            let kept: Int
            do { kept = try layout.commitWholeBlocks(upTo: output.count, in: UnsafeRawBufferPointer(chunk.bytes)) } catch {
                throw SinkError(.writeFailed, "a malformed capture block at \(error.offset) of a chunk (a bug in nfowner)")
            }
            if kept == output.count { break }
            if layout.filled == 0 {
                throw SinkError(.writeFailed, "a capture block is longer than a direct-write chunk")
            }
            // The rest opens the next chunk.
            let rest = output.count - kept
            let next = try nextChunk()
            next.base.copyMemory(from: chunk.base + kept, byteCount: rest)
            layout.closeWithPadding(in: chunk.bytes)
            handOverFullChunk(then: next)
            output.count = rest
        }
        if layout.isFull {
            handOverFullChunk(then: try nextChunk())
            output.count = 0
        }
        try throwFailure()
    }

    /// Writes what is new in the current chunk, padded to the next 4 KiB (a quiet capture).
    func writeEarly() throws(SinkError) {
        try commit()
        let range = layout.writeEarly(in: chunk.bytes)
        if layout.isFull {
            handOverFullChunk(then: try nextChunk())
        } else if !range.isEmpty {
            submit(Channel.Request(buffer: chunk, range: range, fileOffset: chunkOffset + range.lowerBound,
                                   unaligned: false, releasesChunk: false))
        }
        output.count = layout.filled
    }

    /// Writes the rest exactly (no padding at the end of the file), waits for the writer and
    /// closes the file. Throws the first write error of the run.
    func finish() throws(SinkError) {
        if thread != nil {
            do { try commit() } catch {
                stopThread()
                file.close()
                throw error
            }
            let tail = layout.takeTail()
            submit(Channel.Request(buffer: chunk, range: tail, fileOffset: chunkOffset + tail.lowerBound,
                           unaligned: true, releasesChunk: true))
            chunkOffset += tail.upperBound
            stopThread()
            file.close()
        }
        try throwFailure()
    }

    deinit { stopThread() }

    private func stopThread() {
        guard let thread else { return }
        channel.withLock { $0.closing = true }
        thread.join()
        self.thread = nil
    }

    /// The full chunk's unwritten rest to the writer thread (which returns the chunk after it);
    /// `next` becomes the chunk blocks are encoded into.
    private func handOverFullChunk(then next: AlignedBuffer) {
        let range = layout.takeFull()
        submit(Channel.Request(buffer: chunk, range: range, fileOffset: chunkOffset + range.lowerBound,
                               unaligned: false, releasesChunk: true))
        chunkOffset += layout.chunkSize
        chunk = next
        output = RawBlockOutput(base: next.base, capacity: next.capacity)
    }

    private func submit(_ request: Channel.Request) {
        channel.withLock { $0.queue.append(request) }
    }

    /// A free chunk: a returned one, a new one while fewer than `chunkLimit` exist, or else the
    /// next one the writer returns (the receive thread waits for the disk).
    private func nextChunk() throws(SinkError) -> AlignedBuffer {
        let limit = chunksAllocated >= chunkLimit
        let (reused, failure) = channel.waitForChunk(untilFreeIf: limit)
        if let reused { return reused }
        if let failure { throw Self.sinkError(failure) }
        chunksAllocated += 1
        do { return try AlignedBuffer(capacity: layout.chunkSize + Self.roomPastChunk) } catch {
            throw SinkError(.writeFailed, "cannot allocate a capture chunk: \(error)")
        }
    }

    private func throwFailure() throws(SinkError) {
        if let failure = channel.failure { throw Self.sinkError(failure) }
    }

    private static func sinkError(_ error: SystemError) -> SinkError {
        SinkError(.writeFailed, "cannot write the capture: \(error)")
    }

}

/// The queue between the receive thread and the writer thread, and the writer thread's loop.
private final class Channel: @unchecked Sendable {
    struct Request {
        var buffer: AlignedBuffer
        var range: Range<Int>
        var fileOffset: Int
        /// The file's last piece: written through the page cache, any length.
        var unaligned: Bool
        /// The chunk's last request: its buffer goes back to the free list after it.
        var releasesChunk: Bool
    }
    struct State {
        var queue: [Request] = []
        var head = 0
        var freeChunks: [AlignedBuffer] = []
        var failure: SystemError?
        var closing = false
    }

    private let file: DirectOutputFile
    private let condition = NSCondition()
    private var state = State()

    init(file: DirectOutputFile) { self.file = file }

    /// Set once a write failed: read without the lock on every batch, so that the common
    /// answer ("no failure") neither takes the lock nor wakes the writer thread.
    private let failed = Atomic<Bool>(false)

    /// Runs `body` on the state under the lock, and wakes the other thread (a request or a
    /// returned chunk is waiting for it).
    func withLock<Result>(_ body: (inout State) -> Result) -> Result {
        condition.lock()
        defer {
            condition.broadcast()
            condition.unlock()
        }
        return body(&state)
    }

    /// The first write failure, if any.
    var failure: SystemError? {
        guard failed.load(ordering: .acquiring) else { return nil }
        condition.lock()
        defer { condition.unlock() }
        return state.failure
    }

    /// A returned chunk, if any; with `untilFreeIf`, waits for one (or a failure) first.
    func waitForChunk(untilFreeIf mustWait: Bool) -> (AlignedBuffer?, SystemError?) {
        condition.lock()
        defer { condition.unlock() }
        while mustWait, state.freeChunks.isEmpty, state.failure == nil { condition.wait() }
        return (state.freeChunks.popLast(), state.failure)
    }

    /// The writer thread: requests in order; after a failure, the rest are dropped (their chunks
    /// returned) and the receive thread reports the failure at its next call.
    func writeLoop() {
        while true {
            condition.lock()
            while state.head == state.queue.count, !state.closing { condition.wait() }
            if state.head == state.queue.count {
                condition.unlock()
                return
            }
            let request = state.queue[state.head]
            state.head += 1
            if state.head == state.queue.count {
                state.queue.removeAll(keepingCapacity: true)
                state.head = 0
            }
            let failed = state.failure != nil
            condition.unlock()

            var failure: SystemError?
            if !failed, !request.range.isEmpty {
                let start = request.buffer.base + request.range.lowerBound
                do {
                    if request.unaligned {
                        try file.writeUnaligned(start, count: request.range.count, at: request.fileOffset)
                    } else {
                        try file.write(start, count: request.range.count, at: request.fileOffset)
                    }
                } catch {
                    failure = error
                }
            }

            withLock { state in
                if let failure, state.failure == nil {
                    state.failure = failure
                    self.failed.store(true, ordering: .releasing)
                }
                if request.releasesChunk { state.freeChunks.append(request.buffer) }
            }
        }
    }
}
