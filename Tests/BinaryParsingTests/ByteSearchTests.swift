import BinaryParsing
import Testing

@Suite("firstZeroByte")
struct ByteSearchTests {
    private func search(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { $0.firstZeroByte() }
    }

    @Test func emptyAndZeroFreeBuffersHaveNone() {
        #expect(search([]) == nil)
        #expect(UnsafeRawBufferPointer(start: nil, count: 0).firstZeroByte() == nil)
        for length in 1...40 {
            #expect(search([UInt8](repeating: 0x80, count: length)) == nil)
            #expect(search([UInt8](repeating: 0x01, count: length)) == nil)
            #expect(search([UInt8](repeating: 0xFF, count: length)) == nil)
        }
    }

    @Test func findsTheFirstZeroAtEveryPositionAndLength() {
        for length in 1...40 {
            for position in 0..<length {
                // 0x01 after the zero is the pattern that makes the word trick flag a byte
                // that is not zero; the first flag must still be the real one.
                var bytes = [UInt8](repeating: 0x7F, count: length)
                bytes[position] = 0
                if position + 1 < length { bytes[position + 1] = 0x01 }
                if position + 2 < length { bytes[position + 2] = 0 }
                #expect(search(bytes) == position, "length \(length), zero at \(position)")
            }
        }
    }

    @Test func agreesWithAPlainSearchOnRandomBytes() {
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<2_000 {
            let length = Int.random(in: 0...48, using: &generator)
            // Mostly small values, so zeros, ones and 0x80s are common.
            let bytes = (0..<length).map { _ in
                [0, 1, 0x80, 0xFF, UInt8.random(in: 0...255, using: &generator)].randomElement(using: &generator)!
            }
            #expect(search(bytes) == bytes.firstIndex(of: 0))
        }
    }

    @Test func neverLooksPastASlice() {
        let bytes: [UInt8] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 0, 0]
        bytes.withUnsafeBytes { all in
            let head = UnsafeRawBufferPointer(rebasing: all[0..<9])
            #expect(head.firstZeroByte() == nil)
            let tail = UnsafeRawBufferPointer(rebasing: all[3..<12])
            #expect(tail.firstZeroByte() == 6)
        }
    }
}

@Suite("prefixBeforeFirstZeroByte")
struct CStringPrefixTests {
    @Test func cutsAtTheFirstZeroOrKeepsEverything() {
        let cases: [([UInt8], [UInt8])] = [
            ([], []), ([0], []), ([0x61, 0x62, 0], [0x61, 0x62]), ([0x61, 0, 0x62, 0], [0x61]),
            ([0x61, 0x62], [0x61, 0x62]), (Array("nfowner cg=123".utf8) + [0], Array("nfowner cg=123".utf8)),
        ]
        for (input, expected) in cases {
            input.withUnsafeBytes { buffer in
                #expect(Array(buffer.prefixBeforeFirstZeroByte()) == expected)
            }
        }
    }
}
