import PacketParsing

/// What identifies a flow for caching: protocol, both ends, direction and owner uid.
public struct FlowKey: Hashable, Sendable {
    // Stored as plain words: the memo compares a key with the last one for every packet, and
    // the table hashes it for every other lookup; both cost a few instructions per word, where
    // enum-typed fields cost a switch each. An IPv4 address is (0, address) with a family flag.
    // Internal rather than private so that the initializers can be inlined into other modules
    // (the flow cache and the accounting build a key for every packet).
    @usableFromInline var sourceHigh: UInt64
    @usableFromInline var sourceLow: UInt64
    @usableFromInline var destinationHigh: UInt64
    @usableFromInline var destinationLow: UInt64
    /// protocol (bits 0–7), source port (8–23), destination port (24–39), and the flags below.
    @usableFromInline var layout: UInt64
    /// The uid, 0 when absent (the uid flag tells the two apart).
    @usableFromInline var ownerUID: UInt32

    @usableFromInline static let inboundFlag: UInt64 = 1 << 40
    @usableFromInline static let uidFlag: UInt64 = 1 << 41
    @usableFromInline static let sourceV6Flag: UInt64 = 1 << 42
    @usableFromInline static let destinationV6Flag: UInt64 = 1 << 43

    @inlinable
    public init(source: IPAddress, destination: IPAddress, protocolNumber: UInt8,
                sourcePort: UInt16, destinationPort: UInt16, inbound: Bool, uid: UInt32?) {
        var layout = UInt64(protocolNumber) | UInt64(sourcePort) << 8 | UInt64(destinationPort) << 24
        if inbound { layout |= Self.inboundFlag }
        if uid != nil { layout |= Self.uidFlag }
        (sourceHigh, sourceLow) = Self.words(source)
        (destinationHigh, destinationLow) = Self.words(destination)
        if case .v6 = source { layout |= Self.sourceV6Flag }
        if case .v6 = destination { layout |= Self.destinationV6Flag }
        self.layout = layout
        ownerUID = uid ?? 0
    }

    @inlinable @inline(__always)
    public init(packet: PacketSummary, direction: Direction, uid: UInt32?) {
        let sourcePort: UInt16
        let destinationPort: UInt16
        // ICMP flows are keyed by the echo id and type: a reply is not the request's flow.
        if let icmp = packet.icmp {
            sourcePort = icmp.echoIdentifier ?? 0
            destinationPort = UInt16(icmp.type ?? 0)
        } else {
            sourcePort = packet.sourcePort ?? 0
            destinationPort = packet.destinationPort ?? 0
        }
        self.init(source: packet.source, destination: packet.destination, protocolNumber: packet.protocolNumber,
                  sourcePort: sourcePort, destinationPort: destinationPort, inbound: direction == .inbound,
                  uid: uid)
    }

    /// An address as two words: (0, address) for IPv4, which the family flag tells apart.
    @inlinable @inline(__always)
    static func words(_ address: IPAddress) -> (high: UInt64, low: UInt64) {
        switch address {
        case .v4(let value): (0, UInt64(value))
        case .v6(let high, let low): (high, low)
        }
    }

    public var source: IPAddress {
        layout & Self.sourceV6Flag != 0 ? .v6(high: sourceHigh, low: sourceLow) : .v4(UInt32(truncatingIfNeeded: sourceLow))
    }
    public var destination: IPAddress {
        layout & Self.destinationV6Flag != 0
            ? .v6(high: destinationHigh, low: destinationLow) : .v4(UInt32(truncatingIfNeeded: destinationLow))
    }
    public var protocolNumber: UInt8 { UInt8(truncatingIfNeeded: layout) }
    public var sourcePort: UInt16 { UInt16(truncatingIfNeeded: layout >> 8) }
    public var destinationPort: UInt16 { UInt16(truncatingIfNeeded: layout >> 24) }
    public var inbound: Bool { layout & Self.inboundFlag != 0 }
    public var uid: UInt32? { layout & Self.uidFlag != 0 ? ownerUID : nil }

    /// The key's words mixed into one, starting from `seed` (multiply-xorshift per word): a
    /// cheap, unseeded hash for tables that hash it again or keep a second mix as a check (the
    /// accounting's flows, the connection owners).
    @inlinable @inline(__always)
    public func mixed(seed: UInt64 = 0x9E37_79B9_7F4A_7C15) -> UInt64 {
        @inline(__always) func step(_ hash: UInt64, _ word: UInt64) -> UInt64 {
            let mixed = (hash ^ word) &* 0xBF58_476D_1CE4_E5B9
            return mixed ^ (mixed >> 31)
        }
        let words = self.words
        return step(step(step(step(step(step(seed, words.0), words.1), words.2), words.3), words.4), words.5)
    }

    /// The key without its owner's uid: the flow as a connection, for counting. A connection's
    /// packets without a uid (a reset from a closed socket) are the same flow as those with one.
    @inlinable
    public var withoutOwner: FlowKey {
        var key = self
        key.layout &= ~Self.uidFlag
        key.ownerUID = 0
        return key
    }

    /// Whether `other` is the same key, word for word (cheaper than the synthesized `==`, which
    /// compares field by field with a branch each).
    @inlinable @inline(__always)
    public func isSame(as other: FlowKey) -> Bool {
        let (lhs, rhs) = (words, other.words)
        return (lhs.0 ^ rhs.0) | (lhs.1 ^ rhs.1) | (lhs.2 ^ rhs.2) | (lhs.3 ^ rhs.3) | (lhs.4 ^ rhs.4) | (lhs.5 ^ rhs.5) == 0
    }

    /// The key as words (what `FlowCache.check` mixes).
    @inlinable
    public var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) {
        (layout, UInt64(ownerUID), sourceHigh, sourceLow, destinationHigh, destinationLow)
    }
}
