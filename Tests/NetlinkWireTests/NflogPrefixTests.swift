import NetlinkWire
import Testing

@Suite struct NflogPrefixTests {
    @Test func keepsBytesInlineAndCutsAtTheKernelLimit() {
        let classified = NflogPrefix("nfowner cg=49102")
        #expect(classified?.string == "nfowner cg=49102")
        #expect(classified?.withBytes { $0.count } == 16)
        let longest = String(repeating: "x", count: NflogPrefix.inlineCapacity)
        #expect(NflogPrefix(longest)?.string == longest)
        let longer = longest + "yz"
        // Like the kernel (NF_LOG_PREFIXLEN), nothing past 127 bytes is kept.
        #expect(NflogPrefix(longer)?.string == longest)
        #expect(NflogPrefix("") == nil)
    }

    @Test func invalidUTF8IsKeptAsBytesAndRepairedOnlyAsText() {
        let bytes: [UInt8] = [0x6E, 0xFF, 0x77]
        let prefix = bytes.withUnsafeBytes { NflogPrefix(bytes: $0) }
        #expect(prefix?.withBytes { Array($0) } == bytes)
        #expect(prefix?.string == "n\u{FFFD}w")
    }

    @Test func equalityIsByBytes() {
        #expect(NflogPrefix("abc") == NflogPrefix("abc"))
        #expect(NflogPrefix("abc") != NflogPrefix("abd"))
        #expect(NflogPrefix("abc") != NflogPrefix("ab"))
        var record = NflogRecord()
        record.prefix = "nfowner"
        #expect(record.rawPrefix == NflogPrefix("nfowner"))
        #expect(record.prefix == "nfowner")
        record.prefix = nil
        #expect(record.rawPrefix == nil)
    }
}
