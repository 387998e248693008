import Accounting
import PacketModel

/// Totals per remote endpoint and per sender, for `trace`'s closing table.
public final class TrafficSummarySink: PacketSink {
    public private(set) var summary = TrafficSummary()

    public init() {}

    public var needs: SinkNeeds { .events }

    public func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) {
        summary.add(event, owner: TrafficSummary.senderLabel(event))
    }
}
