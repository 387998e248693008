import BinaryParsing
import Testing

@Suite struct CheckedReadsTests {
    let bytes: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]

    @Test func readsInBothByteOrders() {
        bytes.withUnsafeBytes { buffer in
            #expect(buffer.byte(at: 0) == 0x12)
            #expect(buffer.bigEndianUInt16(at: 1) == 0x3456)
            #expect(buffer.bigEndianUInt32(at: 0) == 0x1234_5678)
            #expect(buffer.bigEndianUInt64(at: 0) == 0x1234_5678_9abc_def0)
            #expect(buffer.hostUInt16(at: 0) == UInt16(littleEndian: 0x3412))
            #expect(buffer.hostUInt32(at: 4) == UInt32(littleEndian: 0xf0de_bc9a))
        }
    }

    @Test func rejectsEveryOutOfBoundsRead() {
        bytes.withUnsafeBytes { buffer in
            #expect(buffer.byte(at: 8) == nil)
            #expect(buffer.byte(at: -1) == nil)
            #expect(buffer.bigEndianUInt16(at: 7) == nil)
            #expect(buffer.bigEndianUInt32(at: 5) == nil)
            #expect(buffer.bigEndianUInt64(at: 1) == nil)
            #expect(buffer.hostUInt32(at: Int.max - 1) == nil)
            #expect(buffer.subrange(at: 4, count: 5) == nil)
            #expect(buffer.subrange(at: Int.max, count: Int.max) == nil)
            #expect(buffer.subrange(at: 2, count: -1) == nil)
            #expect(buffer.suffix(from: 9) == nil)
        }
    }

    @Test func subrangesAreRebased() {
        bytes.withUnsafeBytes { buffer in
            let tail = buffer.subrange(at: 4, count: 4)
            #expect(tail?.count == 4)
            #expect(tail?.byte(at: 0) == 0x9a)
            #expect(tail?.byte(at: 4) == nil)
            #expect(buffer.suffix(from: 8)?.count == 0)
        }
    }

    @Test func emptyBufferReadsNothing() {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(empty.byte(at: 0) == nil)
        #expect(empty.bigEndianUInt16(at: 0) == nil)
        #expect(empty.subrange(at: 0, count: 0)?.count == 0)
    }
}
