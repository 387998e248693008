import Export
import Testing

@Suite struct ByteBufferTests {
    /// Every run length through each copy path (bytewise, 4-, 8-byte overlapping, 16-byte
    /// chunks, memcpy), at every alignment, across growth from a tiny buffer.
    @Test func writesEveryLengthExactly() {
        let source = (0..<600).map { UInt8(truncatingIfNeeded: $0 &* 37 &+ 11) }
        var expected: [UInt8] = []
        var buffer = ByteBuffer(capacity: 1)
        for length in 0...540 {
            for start in 0..<3 {
                let run = Array(source[start..<(start + length)])
                run.withUnsafeBytes { buffer.write($0) }
                expected += run
            }
        }
        let count = buffer.count
        #expect(count == expected.count)
        #expect(buffer.bytes == expected)
    }

    /// Every digit count, both sides of each power of ten, against Swift's own formatting.
    @Test func decimalsMatchDescriptionAtEveryLength() {
        var values: [UInt64] = [0, 9, 10, 11, 99, 100, 101, 999, 1000, 65535, 4_294_967_295, UInt64.max, UInt64.max - 1]
        var power: UInt64 = 1
        for _ in 0..<19 {
            power *= 10
            values += [power - 1, power, power + 1, power / 2 * 3]
        }
        var generator = SystemRandomNumberGenerator()
        values += (0..<200).map { _ in
            UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator)
        }
        for value in values {
            var buffer = ByteBuffer(capacity: 8)
            buffer.write(decimal: value)
            #expect(String(decoding: buffer.bytes, as: UTF8.self) == String(value))
        }
    }

    /// A counter's digits: runs that grow by one (across 9→10, 99→100, 4294967295→4294967296),
    /// jumps back and forth, repeats, and numbers longer than the sixteen digits it keeps.
    @Test func countedDecimalsReadAsTheNumbers() {
        var values: [UInt64] = Array(0...1_200) + Array(4_294_967_290...4_294_967_300) + [5, 5, 4, 1_000, 999]
        values += Array(9_999_999_999_999_990...10_000_000_000_000_010)  // sixteen digits to seventeen
        values += [UInt64.max - 1, UInt64.max, 0, 1, 2]
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<300 {
            let start = UInt64.random(in: 0...UInt64.max, using: &generator) >> UInt64.random(in: 0...63, using: &generator)
            values += (0..<UInt64.random(in: 1...30, using: &generator)).map { start &+ $0 }
        }
        var counter = DecimalCounter()
        var buffer = ByteBuffer(capacity: 8)
        var expected = ""
        for value in values {
            buffer.write(decimal: value, counting: &counter)
            buffer.write(",")
            expected += "\(value),"
        }
        #expect(String(decoding: buffer.bytes, as: UTF8.self) == expected)
    }

    /// Microseconds: always six digits, zero-padded; a value past a second is clamped.
    @Test func sixDigitsArePaddedAndClamped() {
        for (value, text) in [(0, "000000"), (7, "000007"), (42, "000042"), (123_456, "123456"), (100_000, "100000"),
                              (999_999, "999999"), (1_000_000, "999999"), (UInt64.max, "999999")] as [(UInt64, String)] {
            var buffer = ByteBuffer(capacity: 4)
            buffer.write(sixDigits: value)
            #expect(String(decoding: buffer.bytes, as: UTF8.self) == text, "\(value)")
        }
    }

    @Test func decimalsAndLiterals() {
        var buffer = ByteBuffer(capacity: 4)
        buffer.write(decimal: 0)
        buffer.write(",")
        buffer.write(decimal: UInt64.max)
        buffer.write(",")
        buffer.write(decimal: 42, zeroPaddedTo: 6)
        buffer.write(",\"a fairly long literal key\":")
        #expect(String(decoding: buffer.bytes, as: UTF8.self) == "0,18446744073709551615,000042,\"a fairly long literal key\":")
        buffer.removeAll()
        let emptied = buffer.isEmpty
        #expect(emptied)
    }
}
