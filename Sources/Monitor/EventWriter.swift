import Export
import NetfilterSystem

/// How events are shown.
public enum OutputFormat: String, Sendable, CaseIterable {
    /// Aligned columns for people.
    case text
    /// JSON Lines (docs/json-schema.md).
    case json
    /// Parse and count only: for benchmarks and for the summary line alone.
    case none
}

/// Buffers formatted events and writes them once per received batch, so a batch of 100
/// packets costs one write(2), not 100.
public struct EventWriter {
    public let format: OutputFormat
    private let output: OutputDescriptor
    private var buffer: [UInt8] = []
    /// Above this many buffered bytes the writer flushes early, bounding memory.
    private let flushThreshold = 1 << 20

    public init(format: OutputFormat, output: OutputDescriptor = .standardOutput) {
        self.format = format
        self.output = output
        buffer.reserveCapacity(flushThreshold + 4096)
    }

    /// Writes the column header for text output (nothing for other formats).
    public func writeHeader() throws(SystemError) {
        if format == .text { try output.write(TextLines.header) }
    }

    public mutating func add(_ event: PacketEvent) throws(SystemError) {
        switch format {
        case .text: TextLines.append(event, to: &buffer)
        case .json: JSONLines.append(event, to: &buffer)
        case .none: return
        }
        if buffer.count >= flushThreshold { try flush() }
    }

    public mutating func flush() throws(SystemError) {
        guard !buffer.isEmpty else { return }
        defer { buffer.removeAll(keepingCapacity: true) }
        try output.write(buffer)
    }
}
