import BinaryParsing
import Testing

@Suite struct FixedSizeReadsTests {
    let bytes: [UInt8] = [0x12, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0]

    @Test func readsAtEveryOffsetInside() throws {
        try bytes.withUnsafeBytes { buffer in
            let view = try #require(UnsafeFixedBytes<8>(buffer))
            #expect(view.byte(at: 0) == 0x12)
            #expect(view.byte(at: 7) == 0xf0)
            #expect(view.bigEndianUInt16(at: 6) == 0xdef0)
            #expect(view.bigEndianUInt32(at: 4) == 0x9abc_def0)
            #expect(view.bigEndianUInt64(at: 0) == 0x1234_5678_9abc_def0)
            // The same values as the Optional reads on the buffer.
            for offset in 0..<8 { #expect(view.byte(at: offset) == buffer.byte(at: offset)) }
            for offset in 0...6 { #expect(view.bigEndianUInt16(at: offset) == buffer.bigEndianUInt16(at: offset)) }
            for offset in 0...4 { #expect(view.bigEndianUInt32(at: offset) == buffer.bigEndianUInt32(at: offset)) }
        }
    }

    @Test func aShorterViewOfALongerBuffer() throws {
        try bytes.withUnsafeBytes { buffer in
            let view = try #require(UnsafeFixedBytes<2>(buffer))
            #expect(view.bigEndianUInt16(at: 0) == 0x1234)
        }
    }

    @Test func needsEveryByte() {
        bytes.withUnsafeBytes { buffer in
            #expect(UnsafeFixedBytes<9>(buffer) == nil)
            #expect(UnsafeFixedBytes<8>(UnsafeRawBufferPointer(rebasing: buffer[..<7])) == nil)
            #expect(UnsafeFixedBytes<1>(UnsafeRawBufferPointer(rebasing: buffer[8...])) == nil)
        }
    }

    @Test func atAnOffset() throws {
        try bytes.withUnsafeBytes { buffer in
            let view = try #require(UnsafeFixedBytes<4>(buffer, at: 4))
            #expect(view.bigEndianUInt32(at: 0) == 0x9abc_def0)
            #expect(UnsafeFixedBytes<4>(buffer, at: 5) == nil)
            #expect(UnsafeFixedBytes<4>(buffer, at: -1) == nil)
            #expect(UnsafeFixedBytes<4>(buffer, at: Int.max) == nil)
            #expect(UnsafeFixedBytes<2>(buffer, at: 6)?.bigEndianUInt16(at: 0) == 0xdef0)
        }
    }

    @Test func emptyBufferMakesNoView() {
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(UnsafeFixedBytes<1>(empty) == nil)
        #expect(UnsafeFixedBytes<0>(empty) == nil)
        #expect(UnsafeFixedBytes<1>(empty, at: 0) == nil)
    }

    @Test func subrangeFromUpTo() {
        bytes.withUnsafeBytes { buffer in
            let middle = buffer.subrange(from: 2, upTo: 5)
            #expect(middle?.count == 3)
            #expect(middle?.byte(at: 0) == 0x56)
            #expect(middle?.byte(at: 3) == nil)
            #expect(buffer.subrange(from: 8, upTo: 8)?.count == 0)
            #expect(buffer.subrange(from: 0, upTo: 8)?.count == 8)
            #expect(buffer.subrange(from: 0, upTo: 9) == nil)
            #expect(buffer.subrange(from: 5, upTo: 4) == nil)
            #expect(buffer.subrange(from: -1, upTo: 2) == nil)
            #expect(buffer.subrange(from: Int.min, upTo: Int.max) == nil)
        }
        let empty = UnsafeRawBufferPointer(start: nil, count: 0)
        #expect(empty.subrange(from: 0, upTo: 0)?.count == 0)
        #expect(empty.subrange(from: 0, upTo: 1) == nil)
    }
}
