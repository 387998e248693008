import PacketModel
import NetlinkWire
import Testing

@Suite struct LogPrefixTests {
    @Test func keepsBytesInlineAndCutsAtTheKernelLimit() {
        let classified = LogPrefix("nfowner cg=49102")
        #expect(classified?.string == "nfowner cg=49102")
        #expect(classified?.withBytes { $0.count } == 16)
        let longest = String(repeating: "x", count: LogPrefix.inlineCapacity)
        #expect(LogPrefix(longest)?.string == longest)
        let longer = longest + "yz"
        // Like the kernel (NF_LOG_PREFIXLEN), nothing past 127 bytes is kept.
        #expect(LogPrefix(longer)?.string == longest)
        #expect(LogPrefix("") == nil)
    }

    /// Equality reads only the words that hold the prefix: a difference anywhere in them, in
    /// the last partial word included, and in the length, tells two apart.
    @Test func equalityComparesEveryByteOfThePrefix() {
        #expect(LogPrefix("nfowner") == LogPrefix("nfowner"))
        #expect(LogPrefix("nfowner") != LogPrefix("nfownex"))
        #expect(LogPrefix("nfowner cg=1") != LogPrefix("nfowner cg=2"))
        #expect(LogPrefix("nfowner cg=49102") != LogPrefix("nfowner cg=49103"))
        #expect(LogPrefix("nfowner cg=4910200") != LogPrefix("nfowner cg=4910201"))  // the third word
        #expect(LogPrefix("nfowner cg=4910200") == LogPrefix("nfowner cg=4910200"))
        #expect(LogPrefix("nfowner") != LogPrefix("nfowner "))
        let long = String(repeating: "a", count: 126)
        #expect(LogPrefix(long + "b") != LogPrefix(long + "c"))
        #expect(LogPrefix(long + "b") == LogPrefix(long + "b"))
    }

    /// The summary the source and the JSON encoder compare: for prefixes up to 24 bytes equal
    /// summaries are equal prefixes, and `matches` tells a prefix's own bytes from any other
    /// byte string (one byte changed at every position, one byte more or fewer), at every length.
    @Test func summaryTellsPrefixesApartUpToItsExactLength() {
        for length in 1...30 {
            let text = String((0..<length).map { Character(UnicodeScalar(UInt8(97 + $0 % 26))) })
            let prefix = LogPrefix(text)
            let summary = LogPrefix.Summary(prefix)
            #expect(summary.isExact == (length <= LogPrefix.Summary.exactLength))
            #expect(summary != LogPrefix.Summary(nil))
            let bytes = Array(text.utf8)
            if summary.isExact {
                #expect(bytes.withUnsafeBytes { summary.matches($0) }, "length \(length)")
            }
            #expect(bytes.dropLast().withUnsafeBytes { summary.matches($0) } == false)
            #expect((bytes + [0x61]).withUnsafeBytes { summary.matches($0) } == false)
            for position in 0..<length {
                var other = bytes
                other[position] ^= 0x20
                guard summary.isExact else { continue }
                #expect(other.withUnsafeBytes { summary.matches($0) } == false, "length \(length), byte \(position)")
                let otherSummary = LogPrefix.Summary(other.withUnsafeBytes { LogPrefix(bytes: $0) })
                #expect(otherSummary != summary, "length \(length), byte \(position)")
            }
        }
        #expect(Array<UInt8>().withUnsafeBytes { LogPrefix.Summary(nil).matches($0) } == false)
    }

    /// The metadata keeps the summary of whatever prefix it holds.
    @Test func metadataSummaryFollowsItsPrefix() {
        var metadata = PacketMetadata()
        #expect(metadata.prefixSummary == LogPrefix.Summary(nil))
        metadata.prefix = LogPrefix("nfowner cg=42")
        #expect(metadata.prefixSummary == LogPrefix.Summary(LogPrefix("nfowner cg=42")))
        metadata.prefix = nil
        #expect(metadata.prefixSummary == LogPrefix.Summary(nil))
    }

    @Test func invalidUTF8IsKeptAsBytesAndRepairedOnlyAsText() {
        let bytes: [UInt8] = [0x6E, 0xFF, 0x77]
        let prefix = bytes.withUnsafeBytes { LogPrefix(bytes: $0) }
        #expect(prefix?.withBytes { Array($0) } == bytes)
        #expect(prefix?.string == "n\u{FFFD}w")
    }

    @Test func equalityIsByBytes() {
        #expect(LogPrefix("abc") == LogPrefix("abc"))
        #expect(LogPrefix("abc") != LogPrefix("abd"))
        #expect(LogPrefix("abc") != LogPrefix("ab"))
        var record = NflogRecord()
        record.prefix = "nfowner"
        #expect(record.rawPrefix == LogPrefix("nfowner"))
        #expect(record.prefix == "nfowner")
        record.prefix = nil
        #expect(record.rawPrefix == nil)
    }

    @Test func equalsComparesWithRawBytes() {
        let prefix = LogPrefix("nfowner cg=1")
        let same = Array("nfowner cg=1".utf8), other = Array("nfowner cg=2".utf8), shorter = Array("nfowner".utf8)
        same.withUnsafeBytes { #expect(prefix?.equals($0) == true) }
        other.withUnsafeBytes { #expect(prefix?.equals($0) == false) }
        shorter.withUnsafeBytes { #expect(prefix?.equals($0) == false) }
        let long = Array(repeating: UInt8(ascii: "x"), count: 200)
        let cut = long.withUnsafeBytes { LogPrefix(bytes: $0) }
        long.withUnsafeBytes { #expect(cut?.equals($0) == true) }  // cut at the inline capacity, as init does
    }

    /// Compared as whole words (up to 16 bytes) or eight bytes at a time and then byte by byte:
    /// a difference at any position of any length is found, and a buffer one byte longer or
    /// shorter never matches.
    @Test func equalsFindsADifferenceAnywhere() {
        for length in 1...LogPrefix.inlineCapacity {
            let text = (0..<length).map { UInt8(ascii: "a") + UInt8($0 % 26) }
            let prefix = text.withUnsafeBytes { LogPrefix(bytes: $0) }
            text.withUnsafeBytes { #expect(prefix?.equals($0) == true) }
            // Every position of the short prefixes (read as one or two words), three of the rest.
            for position in length <= 17 ? Array(0..<length) : [0, length / 2, length - 1] {
                var changed = text
                changed[position] = UInt8(ascii: "#")
                changed.withUnsafeBytes { #expect(prefix?.equals($0) == false, "length \(length), byte \(position)") }
            }
            if length < LogPrefix.inlineCapacity {
                (text + [0]).withUnsafeBytes { #expect(prefix?.equals($0) == false, "length \(length) + a NUL") }
            }
            Array(text.dropLast()).withUnsafeBytes { #expect(prefix?.equals($0) == false, "length \(length) - 1") }
        }
    }
}
