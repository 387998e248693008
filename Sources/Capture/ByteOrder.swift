import BinaryParsing

/// The byte order of a capture file's numbers: a pcapng section says it in its byte-order
/// magic, a pcap file in its magic number. Files from big-endian machines are still around.
public enum ByteOrder: Sendable, Equatable {
    case littleEndian, bigEndian
}

// Reads in a chosen byte order, on top of BinaryParsing's checked big-endian reads: every read
// returns nil instead of reading past the buffer, so the reader has one kind of bounds check.
extension UnsafeRawBufferPointer {
    func uint16(at offset: Int, _ order: ByteOrder) -> UInt16? {
        guard let value = bigEndianUInt16(at: offset) else { return nil }
        return order == .bigEndian ? value : value.byteSwapped
    }

    func uint32(at offset: Int, _ order: ByteOrder) -> UInt32? {
        guard let value = bigEndianUInt32(at: offset) else { return nil }
        return order == .bigEndian ? value : value.byteSwapped
    }

    func uint64(at offset: Int, _ order: ByteOrder) -> UInt64? {
        guard let value = bigEndianUInt64(at: offset) else { return nil }
        return order == .bigEndian ? value : value.byteSwapped
    }
}

// Writing: nfowner's files are little-endian on every host, so fixtures are the same bytes
// everywhere.
extension Array where Element == UInt8 {
    mutating func appendLittleEndian<T: FixedWidthInteger>(_ value: T) {
        Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) }
    }

    /// An option with a u32 value: code, length 4 and the value, in one append.
    mutating func appendOption(_ code: UInt16, _ value: UInt32) {
        let option = UInt64(code) | UInt64(4) << 16 | UInt64(value) << 32
        appendLittleEndian(option)
    }

    /// Zero bytes up to the next multiple of 4 of `length` (pcapng pads every value to 32 bits).
    mutating func appendPadding(after length: Int) {
        let padding = paddedTo4(length) - length
        if padding > 0 { append(contentsOf: repeatElement(0, count: padding)) }
    }

    /// Overwrites four bytes at `offset` with `value`, little-endian (a block's length, known
    /// only once its body is written).
    mutating func storeLittleEndian(_ value: UInt32, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { bytes in
            for index in 0..<4 { self[offset + index] = bytes[index] }
        }
    }
}

/// `length` rounded up to a multiple of 4. Cannot overflow: callers pass lengths from a 16- or
/// 32-bit field or a buffer's count, far below Int.max.
@inline(__always)
func paddedTo4(_ length: Int) -> Int {
    (length + 3) & ~3
}
