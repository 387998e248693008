/// A packet as its source hands it to the pipeline, before parsing: a view into the source's
/// receive buffer with the few fields every packet needs. Valid only during the consumer call.
///
/// The rest of the metadata (time, interfaces, mark, prefix as a value) is read again from
/// `message` by the source, and only for packets that become events (`PacketSource.metadata`),
/// so counting a packet copies nothing.
public struct UnsafeSourcePacket {
    public var origin: PacketOrigin
    /// The packet's bytes from the network header on (IPv4 or IPv6), up to the snap length.
    public var payload: UnsafeRawBufferPointer
    /// NFPROTO_* family, as the source reported it (2 = IPv4, 10 = IPv6).
    public var family: UInt8
    /// Netfilter hook number (see `Hook`).
    public var hookNumber: UInt8
    /// The socket owner's fsuid/fsgid as the kernel reported them.
    public var uid: UInt32?
    public var gid: UInt32?
    /// The rule's label (an NFLOG prefix), empty when none.
    public var label: UnsafeRawBufferPointer
    /// The whole source message, for `PacketSource.metadata`.
    public var message: UnsafeRawBufferPointer

    @inlinable
    public init(origin: PacketOrigin, payload: UnsafeRawBufferPointer, family: UInt8, hookNumber: UInt8,
                uid: UInt32?, gid: UInt32?, label: UnsafeRawBufferPointer, message: UnsafeRawBufferPointer) {
        self.origin = origin
        self.payload = payload
        self.family = family
        self.hookNumber = hookNumber
        self.uid = uid
        self.gid = gid
        self.label = label
        self.message = message
    }

    /// The direction from the hook (outbound when the hook is not an inet one).
    @inlinable
    public var direction: Direction {
        Hook(family: family, number: hookNumber)?.direction ?? .outbound
    }
}

/// What a queue source (NFQUEUE) tells the kernel to do with a packet it holds.
public enum PacketVerdict: Sendable, Equatable {
    /// Let it go on (NF_ACCEPT).
    case accept
    /// Drop it silently (NF_DROP).
    case drop
    /// Drop it and tell the sender at once (a TCP reset or an ICMP unreachable, sent by a rule
    /// the verdict's mark selects).
    case reject
}

/// Two bits of the packet mark that carry a queue's allow and reject verdicts back to the rules
/// (enforce mode): the queue answers NF_REPEAT with one of them set, and the chain that queued
/// the packet, run again, lets it go on or rejects it (see `EnforceRules`). The mark's other bits
/// are kept as they were.
public struct VerdictMarks: Sendable, Equatable {
    /// The bits used; the others are never changed.
    public var mask: UInt32
    public var allow: UInt32
    public var reject: UInt32

    /// Bits 22 and 23 by default: clear of the low bits firewalls and container tools use.
    public init(mask: UInt32 = 0x00C0_0000, allow: UInt32 = 0x0040_0000, reject: UInt32 = 0x0080_0000) {
        self.mask = mask
        self.allow = allow
        self.reject = reject
    }

    /// `original` with the mask's bits set to `bits`.
    @inlinable
    public func mark(_ original: UInt32?, with bits: UInt32) -> UInt32 {
        ((original ?? 0) & ~mask) | (bits & mask)
    }
}
