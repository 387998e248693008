import Export
import NetfilterSystem
import PacketModel

/// How events are shown.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// Aligned columns for people.
    case text
    /// JSON Lines (docs/json-schema.md).
    case json
    /// Parse and count only: for benchmarks and for the summary line alone.
    case none
}

/// Events as text lines or JSON Lines on an output (stdout by default), buffered and written
/// once per received batch, so a batch of 100 packets costs one write(2), not 100.
public final class EventStreamSink: PacketSink {
    public let format: OutputFormat
    private let output: OutputDescriptor
    @exclusivity(unchecked) private var buffer = ByteBuffer(capacity: (1 << 20) + 65536)
    /// A text line is built here, then copied into `buffer`.
    @exclusivity(unchecked) private var line: [UInt8] = []
    /// A write that failed mid-batch, reported by the next `flush`.
    private var pendingError: SinkError?
    @exclusivity(unchecked) private var json = JSONLines.Encoder()
    /// Above this many buffered bytes the sink writes early, bounding memory.
    private let flushThreshold = 1 << 20

    public init(format: OutputFormat, output: OutputDescriptor = .standardOutput) {
        self.format = format
        self.output = output
    }

    public var needs: SinkNeeds { format == .none ? .counters : .events }

    /// The column header for text output (nothing for other formats).
    public func start() throws(SinkError) {
        guard format == .text else { return }
        do { try output.write(TextLines.header) } catch { throw Self.sinkError(error) }
    }

    public func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) {
        switch format {
        case .text:
            line.removeAll(keepingCapacity: true)
            TextLines.append(event, to: &line)
            line.withUnsafeBytes { buffer.write($0) }
        case .json: json.append(event, to: &buffer)
        case .none: return
        }
        if buffer.count >= flushThreshold, pendingError == nil {
            do throws(SinkError) { try flush() } catch { pendingError = error }
        }
    }

    public func flush() throws(SinkError) {
        if let pendingError { throw pendingError }
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll() }
        do { try buffer.withBytes { bytes throws(SystemError) in try output.write(bytes) } } catch {
            throw Self.sinkError(error)
        }
    }

    private static func sinkError(_ error: SystemError) -> SinkError {
        error.code == Errno.brokenPipe
            ? SinkError(.outputClosed, "the output was closed")
            : SinkError(.writeFailed, "cannot write events: \(error)")
    }
}
