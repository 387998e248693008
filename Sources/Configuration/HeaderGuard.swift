// A guard in front of TOMLKit for one input toml++ 3.4.0 (bundled by TOMLKit 0.6.0) mishandles.
//
// Its table-header parser calls parse_key() on whatever follows `[` (or `[[`) and whitespace,
// and parse_key() begins with TOML_ASSERT_ASSUME(bare key character or quote). In a debug build
// that assertion aborts the process (found by the fuzz test with "[}nflog]"); in a release build
// it is __builtin_assume, i.e. undefined behaviour. So headers whose first key character is
// anything else ("[}a]", "[\n", "[[ [") are refused here with a syntax error, before toml++ sees
// them. Lines inside multi-line arrays or strings can look like such headers too; every config
// with one of those is invalid for nfowner anyway (all its arrays hold scalars), so the only
// effect is the wording of the error.

enum HeaderGuard {
    /// nil when no line starts a table header toml++ would trap on; otherwise (line, column, reason).
    static func firstUnsafeHeader(in text: String) -> (line: Int, column: Int, reason: String)? {
        var lineNumber = 0
        for line in text.utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            var index = line.startIndex
            func skipBlanks() {
                while index < line.endIndex, line[index] == UInt8(ascii: " ") || line[index] == UInt8(ascii: "\t") {
                    index = line.index(after: index)
                }
            }
            skipBlanks()
            guard index < line.endIndex, line[index] == UInt8(ascii: "[") else { continue }
            index = line.index(after: index)
            if index < line.endIndex, line[index] == UInt8(ascii: "[") {
                index = line.index(after: index)
            } else {
                skipBlanks()
                // "[ [" is reported properly by toml++ itself.
                if index < line.endIndex, line[index] == UInt8(ascii: "[") { continue }
            }
            skipBlanks()
            let column = line.distance(from: line.startIndex, to: index) + 1
            guard index < line.endIndex else {
                return (lineNumber, column, "a table header must name a table, saw the end of the line")
            }
            let byte = line[index]
            if isBareKeyByte(byte) || byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "'") || byte == UInt8(ascii: "]") {
                continue
            }
            let shown = byte < 0x80 ? printable(String(UnicodeScalar(byte))) : "a non-ASCII character"
            return (lineNumber, column, "a table name must start with a letter, digit, _, - or a quote, saw '\(shown)'")
        }
        return nil
    }

    private static func isBareKeyByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
             UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }
}
