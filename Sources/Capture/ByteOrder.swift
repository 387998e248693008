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

/// Where encoded blocks go: a growable array, or raw memory the caller owns
/// (`RawBlockOutput`: a direct-write chunk, so a packet's block is encoded where the disk reads it).
public protocol BlockOutput {
    /// Bytes written so far.
    var count: Int { get }
    /// Appends `bytes`.
    mutating func appendRaw(_ bytes: UnsafeRawBufferPointer)
    /// Appends the bytes of a value of fixed layout (a block's fixed fields, an option), in
    /// memory order.
    mutating func appendBytes<T: BitwiseCopyable>(of value: T)
}

extension Array: BlockOutput where Element == UInt8 {
    /// Raw bytes, seen as `UInt8`s: Array's append copies a buffer of its own element type with
    /// one memcpy, while a raw buffer, a generic sequence to it, went byte by byte (callgrind:
    /// ~500 instructions of a captured packet's ~530 bytes).
    @inline(__always)
    public mutating func appendRaw(_ bytes: UnsafeRawBufferPointer) {
        bytes.withMemoryRebound(to: UInt8.self) { append(contentsOf: $0) }
    }

    /// Overwrites four bytes at `offset` with `value`, little-endian (a block's length, known
    /// only once its body is written).
    mutating func storeLittleEndian(_ value: UInt32, at offset: Int) {
        Swift.withUnsafeBytes(of: value.littleEndian) { bytes in
            for index in 0..<4 { self[offset + index] = bytes[index] }
        }
    }
}

/// Blocks encoded straight into memory the caller owns, up to `capacity` bytes from `base`. A
/// write that does not fit is not made and sets `overflowed` (the caller reserves room for the
/// longest block it can be given, so this only guards the memory).
public struct RawBlockOutput: BlockOutput {
    public let base: UnsafeMutableRawPointer
    public let capacity: Int
    public var count: Int
    public private(set) var overflowed = false

    public init(base: UnsafeMutableRawPointer, capacity: Int, count: Int = 0) {
        self.base = base
        self.capacity = capacity
        self.count = count
    }

    @inline(__always)
    public mutating func appendRaw(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, !bytes.isEmpty else { return }
        guard bytes.count <= capacity &- count else {
            overflowed = true
            return
        }
        (base + count).copyMemory(from: source, byteCount: bytes.count)
        count &+= bytes.count
    }

    /// One store instead of a call to memcpy: most of a packet's block is fields and options of
    /// 4 to 28 bytes.
    @inline(__always)
    public mutating func appendBytes<T: BitwiseCopyable>(of value: T) {
        guard MemoryLayout<T>.size <= capacity &- count else {
            overflowed = true
            return
        }
        (base + count).storeBytes(of: value, as: T.self)
        count &+= MemoryLayout<T>.size
    }
}

extension BlockOutput {
    mutating func appendLittleEndian<T: FixedWidthInteger & BitwiseCopyable>(_ value: T) {
        appendBytes(of: value.littleEndian)
    }

    @inline(__always)
    public mutating func appendBytes<T: BitwiseCopyable>(of value: T) {
        Swift.withUnsafeBytes(of: value) { appendRaw($0) }
    }

    mutating func append(contentsOf bytes: [UInt8]) {
        bytes.withUnsafeBytes { appendRaw($0) }
    }

    /// An option with a u32 value: code, length 4 and the value, in one append.
    mutating func appendOption(_ code: UInt16, _ value: UInt32) {
        let option = UInt64(code) | UInt64(4) << 16 | UInt64(value) << 32
        appendLittleEndian(option)
    }

    /// Zero bytes up to the next multiple of 4 of `length` (pcapng pads every value to 32 bits).
    @inline(__always)
    mutating func appendPadding(after length: Int) {
        let padding = paddedTo4(length) - length
        if padding > 0 {
            Swift.withUnsafeBytes(of: UInt32(0)) { appendRaw(UnsafeRawBufferPointer(rebasing: $0[0..<padding])) }
        }
    }
}

/// `length` rounded up to a multiple of 4. Cannot overflow: callers pass lengths from a 16- or
/// 32-bit field or a buffer's count, far below Int.max.
@inline(__always)
func paddedTo4(_ length: Int) -> Int {
    (length + 3) & ~3
}
