import Capture
import NetfilterSystem
import PacketModel

/// Packets with their owners into a pcapng (or classic pcap) file, or stdout for `-w -`.
///
/// A pcapng file is written around the page cache when its file system allows
/// (`DirectCaptureWriter`: each packet encoded into a 1 MiB chunk, written with one direct write
/// from a thread of its own when full, and what is new written at least every tick, about twice
/// a second). Stdout, classic pcap, `--buffered-writes` and file systems without O_DIRECT get
/// each packet encoded into a buffer that `flush` (once per received batch) writes — whole
/// blocks only — with one write(2). Either way every write ends on a block boundary, so a
/// capture killed with SIGKILL is readable up to its last complete block.
///
/// With rotation, a file that has reached `rotateBytes` is closed after the batch and renamed
/// FILE → FILE.1 → … → FILE.<count-1> (the oldest dropped); each file is a complete capture with
/// its own header.
public final class CaptureSink: PacketSink {
    public enum FileFormat: String, Sendable, CaseIterable {
        case pcapng
        case pcap
    }

    /// Which packets go into the file: every field that is set must match.
    public struct Filter: Sendable {
        /// IP protocol numbers (empty: any).
        public var protocols: Set<UInt8> = []
        /// systemd units, by exact name (empty: any); packets without a unit never match.
        public var units: Set<String> = []

        public init(protocols: Set<UInt8> = [], units: Set<String> = []) {
            self.protocols = protocols
            self.units = units
        }

        public func matches(_ event: borrowing PacketEvent) -> Bool {
            if !protocols.isEmpty && !protocols.contains(event.packet.protocolNumber) { return false }
            if !units.isEmpty {
                guard let unit = event.owner.unit, units.contains(unit) else { return false }
            }
            return true
        }
    }

    /// Where the file goes: a path, or nil for stdout.
    public let path: String?
    public let format: FileFormat
    public let snapLength: UInt32
    public let filter: Filter
    /// Stop after this many packets written (the session is asked to stop through `onLimit`).
    public let limit: UInt64?
    /// Rotate when the current file holds at least this many bytes (nil: never).
    public let rotateBytes: Int?
    /// Files kept with rotation: FILE and FILE.1 … FILE.<rotateCount-1>.
    public let rotateCount: Int
    /// Write pcapng files with direct I/O where the file system takes it (else through the page
    /// cache, as always for stdout and pcap).
    public let directWrites: Bool
    /// Called (once) when `limit` packets have been written.
    public var onLimit: () -> Void = {}

    @exclusivity(unchecked) public private(set) var packetsWritten: UInt64 = 0
    public private(set) var filesStarted = 0

    private var file: OutputFile?
    @exclusivity(unchecked) private var direct: DirectCaptureWriter?
    private var output: OutputDescriptor = .standardOutput
    @exclusivity(unchecked) private var pcapng: PcapngWriter
    private var bytesInFile = 0
    /// Where packets are encoded when the file is not written directly: written with one
    /// write(2) per batch (or when it holds `flushThreshold` bytes). Raw memory rather than an
    /// array: an array's append costs more than the bytes it copies (callgrind: ~260
    /// instructions a packet). Room past the threshold for the longest packet (see
    /// `DirectCaptureWriter.roomPastChunk`); untouched pages cost no memory.
    private let staging: UnsafeMutableRawBufferPointer
    @exclusivity(unchecked) private var buffer: RawBlockOutput
    @exclusivity(unchecked) private var pendingError: SinkError?
    private var limitReported = false
    private let flushThreshold = 1 << 20

    public init(path: String?, format: FileFormat = .pcapng, snapLength: UInt32 = 0, filter: Filter = Filter(),
                limit: UInt64? = nil, rotateBytes: Int? = nil, rotateCount: Int = 1, directWrites: Bool = true) {
        self.path = path
        self.format = format
        self.snapLength = snapLength
        self.filter = filter
        self.limit = limit
        self.rotateBytes = rotateBytes
        self.rotateCount = max(1, rotateCount)
        self.directWrites = directWrites
        pcapng = PcapngWriter(snapLength: snapLength)
        staging = .allocateForKernelCopies(byteCount: flushThreshold + (512 << 10))
        buffer = RawBlockOutput(base: staging.baseAddress!, capacity: staging.count)
    }

    public var needs: SinkNeeds { .events }

    /// Opens the file and writes its header, so even a capture that sees no packet is a valid file.
    public func start() throws(SinkError) {
        try startFile()
        try flush()
        try direct?.writeEarly()
    }

    /// Whether the current file is written with direct I/O.
    public var writesDirectly: Bool { direct != nil }

    public func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) {
        if let limit, packetsWritten >= limit { return }
        guard filter.matches(event) else { return }
        switch format {
        case .pcapng:
            if let direct {
                // Encoded where the disk reads it from: no buffer, no copy.
                guard pendingError == nil else { return }
                pcapng.append(event, payload: payload, to: &direct.output)
                if direct.output.count >= direct.commitThreshold {
                    do throws(SinkError) { try direct.commit() } catch { pendingError = error }
                }
            } else {
                pcapng.append(event, payload: payload, to: &buffer)
            }
        case .pcap: PcapWriter(snapLength: snapLength).append(event, payload: payload, to: &buffer)
        }
        packetsWritten += 1
        if buffer.count >= flushThreshold, pendingError == nil {
            do throws(SinkError) { try flush() } catch { pendingError = error }
        }
    }

    public func flush() throws(SinkError) {
        if let pendingError { throw pendingError }
        if let direct {
            try direct.commit()
            bytesInFile = direct.size
        } else if buffer.count > 0 {
            defer { buffer.count = 0 }
            guard !buffer.overflowed else {
                throw SinkError(.writeFailed, "a capture packet longer than the write buffer (nfowner writes none)")
            }
            do { try output.write(UnsafeRawBufferPointer(start: staging.baseAddress, count: buffer.count)) } catch {
                throw error.code == Errno.brokenPipe
                    ? SinkError(.outputClosed, "the output was closed")
                    : SinkError(.writeFailed, "cannot write the capture: \(error)")
            }
            bytesInFile += buffer.count
        }
        if let rotateBytes, path != nil, bytesInFile >= rotateBytes, limit.map({ packetsWritten < $0 }) ?? true {
            try rotate()
        }
        if let limit, packetsWritten >= limit, !limitReported {
            limitReported = true
            onLimit()
        }
    }

    /// A quiet capture's packets reach the disk within a tick (direct writes wait for a full
    /// chunk otherwise).
    public func tick() {
        guard let direct, pendingError == nil else { return }
        do throws(SinkError) { try direct.writeEarly() } catch { pendingError = error }
    }

    deinit { staging.deallocate() }

    public func finish() {
        if pendingError == nil { try? flush() }
        closeFile()
    }

    /// Ends the current file: the direct writer's last piece and its thread, or the descriptor.
    private func closeFile() {
        if let direct {
            self.direct = nil
            do throws(SinkError) { try direct.finish() } catch { if pendingError == nil { pendingError = error } }
        }
        file?.close()
        file = nil
    }

    /// The name of the `index`th file of a rotation: FILE, FILE.1, FILE.2 …
    public static func rotatedName(_ path: String, _ index: Int) -> String {
        index == 0 ? path : "\(path).\(index)"
    }

    private func startFile() throws(SinkError) {
        if let path {
            if directWrites, format == .pcapng {
                do { direct = try DirectCaptureWriter(path: path) } catch {
                    throw SinkError(.writeFailed, "cannot create the capture file: \(error)")
                }
            }
            if direct == nil {
                do { file = try OutputFile(path: path) } catch {
                    throw SinkError(.writeFailed, "cannot create the capture file: \(error)")
                }
                output = file?.descriptor ?? .standardOutput
            }
        }
        filesStarted += 1
        bytesInFile = 0
        switch format {
        case .pcapng:
            pcapng = PcapngWriter(snapLength: snapLength)
            if let direct {
                pcapng.appendSectionHeader(to: &direct.output)
                try direct.commit()
            } else {
                pcapng.appendSectionHeader(to: &buffer)
            }
        case .pcap: PcapWriter(snapLength: snapLength).appendFileHeader(to: &buffer)
        }
    }

    /// FILE.<n-2> → FILE.<n-1>, …, FILE → FILE.1, then a new FILE.
    private func rotate() throws(SinkError) {
        guard let path else { return }
        closeFile()
        if let pendingError { throw pendingError }
        do {
            if rotateCount == 1 {
                try OutputFile.remove(path)
            } else {
                for index in stride(from: rotateCount - 2, through: 0, by: -1) {
                    let from = Self.rotatedName(path, index)
                    do { try OutputFile.rename(from, to: Self.rotatedName(path, index + 1)) } catch
                        where error.code == Errno.notFound {}
                }
            }
        } catch {
            throw SinkError(.writeFailed, "cannot rotate the capture: \(error)")
        }
        try startFile()
    }
}
