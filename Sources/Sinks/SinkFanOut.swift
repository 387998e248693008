import PacketModel

/// The sinks that read one kind of packet, called in order for every packet.
///
/// The first is kept apart from the rest: Swift calls a class existential held directly in a
/// stored optional without retaining it, while each element taken from an array is retained
/// and released around its call — a pair of atomic operations per packet and sink. Most runs
/// have one sink of a kind, which then costs no reference counting at all.
///
/// Inlinable: the pipeline (another module) calls it for every packet, and a call that only
/// forwards to the sink cost about 30 instructions per packet (callgrind).
public struct SinkFanOut {
    @usableFromInline let first: (any PacketSink)?
    @usableFromInline let rest: [any PacketSink]

    public init(_ sinks: [any PacketSink]) {
        first = sinks.first
        rest = Array(sinks.dropFirst())
    }

    public var isEmpty: Bool { first == nil }

    @inlinable @inline(__always)
    public func consume(_ facts: borrowing PacketFacts) {
        first?.consume(facts)
        for sink in rest { sink.consume(facts) }
    }

    @inlinable @inline(__always)
    public func consume(_ event: borrowing PacketEvent, payload: UnsafeRawBufferPointer) {
        first?.consume(event, payload: payload)
        for sink in rest { sink.consume(event, payload: payload) }
    }
}
