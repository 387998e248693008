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
