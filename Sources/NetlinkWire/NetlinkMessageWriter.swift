// Building netlink messages: the inverse of NetlinkFraming.swift, same layout.
//
//   [nlmsghdr: len u32 | type u16 | flags u16 | seq u32 | pid u32]   host order
//   [fixed payload, e.g. nfgenmsg: family u8 | version u8 | res_id be16]
//   [nla_len u16 | nla_type u16 | value | pad to 4] ...              host-order header
//
// nlmsg_len includes the padding of the last attribute, as the kernel's nla_put does.

/// Accumulates one netlink message; `finish()` patches nlmsg_len.
struct NetlinkMessageWriter {
    private(set) var bytes: [UInt8] = []

    init(type: UInt16, flags: NetlinkMessageFlags, sequence: UInt32, portID: UInt32 = 0) {
        bytes.reserveCapacity(64)
        appendHost(UInt32(0))  // nlmsg_len, patched in finish()
        appendHost(type)
        appendHost(flags.rawValue)
        appendHost(sequence)
        appendHost(portID)
    }

    mutating func appendNfgenmsg(family: UInt8, group: UInt16) {
        bytes.append(family)
        bytes.append(NfgenMessage.version0)
        appendBigEndian(group)
    }

    /// Appends an attribute with `value` and zero padding to 4 bytes. Values longer than an
    /// attribute can describe (65531 bytes) are cut, since nla_len is a u16.
    mutating func appendAttribute(type: UInt16, _ value: some Collection<UInt8>) {
        let valueCount = min(value.count, Int(UInt16.max) - NetlinkAttribute.headerSize)
        appendHost(UInt16(NetlinkAttribute.headerSize + valueCount))
        appendHost(type)
        bytes.append(contentsOf: value.prefix(valueCount))
        padToAlignment()
    }

    mutating func appendAttribute(type: UInt16, bigEndian value: UInt32) {
        appendAttribute(type: type, value.bigEndianBytes)
    }

    mutating func appendAttribute(type: UInt16, bigEndian value: UInt16) {
        appendAttribute(type: type, value.bigEndianBytes)
    }

    mutating func appendHost<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    mutating func appendBigEndian<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value.bigEndian) { bytes.append(contentsOf: $0) }
    }

    private mutating func padToAlignment() {
        while bytes.count % 4 != 0 { bytes.append(0) }
    }

    /// The finished message with nlmsg_len set (host order).
    func finish() -> [UInt8] {
        var result = bytes
        let length = UInt32(truncatingIfNeeded: result.count)
        withUnsafeBytes(of: length) { lengthBytes in
            for (index, byte) in lengthBytes.enumerated() { result[index] = byte }
        }
        return result
    }
}

extension FixedWidthInteger {
    /// The value's bytes in network order.
    var bigEndianBytes: [UInt8] {
        withUnsafeBytes(of: bigEndian) { Array($0) }
    }
}
