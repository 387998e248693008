// Guards in front of TOMLKit for three inputs toml++ 3.4.0 (bundled by TOMLKit 0.6.0) mishandles.
// Both were found by fuzzing (the fuzz test here, and a C++ harness over the same mutations).
//
// 1. Its table-header parser calls parse_key() on whatever follows `[` (or `[[`) and whitespace,
// and parse_key() begins with TOML_ASSERT_ASSUME(bare key character or quote). In a debug build
// that assertion aborts the process (found by the fuzz test with "[}nflog]"); in a release build
// it is __builtin_assume, i.e. undefined behaviour. So headers whose first key character is
// anything else ("[}a]", "[\n", "[[ [") are refused here with a syntax error, before toml++ sees
// them. Lines inside multi-line arrays or strings can look like such headers too; every config
// with one of those is invalid for nfowner anyway (all its arrays hold scalars), so the only
// effect is the wording of the error.
//
// 2. Its array parser calls parse_value() on any character other than `,` and `]`, and
// parse_value() begins with TOML_ASSERT_ASSUME(not a value terminator), so a `}` where an array
// element should start ("[}1]", "[1, }") aborts or is undefined behaviour. `ParserGuard` finds a
// `}` right after `[` or `,` (skipping blanks, newlines, comments and strings); that never occurs
// in valid TOML 1.0 (a trailing comma in an inline table is invalid too).
//
// 3. Its number/date scanner, seeing a date ("1979-05-27", underscores ignored) then a space and
// a digit, rescans for a time; with a single digit before a terminator ("1979-05-27 0]") it hits
// TOML_ASSERT_ASSUME(not a value terminator) again. A date, a space, one digit and a non-digit is
// never valid TOML (hours have two digits), so the same scan refuses it.

enum ParserGuard {
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

    /// nil when no `}` follows `[` or `,`; otherwise (line, column, reason).
    static func firstBraceAfterOpening(in text: String) -> (line: Int, column: Int, reason: String)? {
        let bytes = Array(text.utf8)
        var index = 0, line = 1, lineStart = 0
        var last: UInt8 = 0  // last significant byte outside strings and comments
        func at(_ offset: Int) -> UInt8? { bytes.indices.contains(offset) ? bytes[offset] : nil }
        func quoteRun(from offset: Int, _ quote: UInt8) -> Int {
            var end = offset
            while at(end) == quote { end += 1 }
            return end - offset
        }
        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "\n"):
                line += 1
                lineStart = index + 1
                index += 1
            case UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                index += 1
            case UInt8(ascii: "#"):
                while index < bytes.count, bytes[index] != UInt8(ascii: "\n") { index += 1 }
            case UInt8(ascii: "\""), UInt8(ascii: "'"):
                let escapes = byte == UInt8(ascii: "\"")
                if quoteRun(from: index, byte) >= 3 {
                    // Multi-line string: ends at the last quote of the first run of 3 or more (up to 5).
                    index += 3
                    while index < bytes.count {
                        if escapes, bytes[index] == UInt8(ascii: "\\") { index += 2; continue }
                        if bytes[index] == UInt8(ascii: "\n") { line += 1; lineStart = index + 1 }
                        let run = quoteRun(from: index, byte)
                        if run >= 3 { index += min(run, 5); break }
                        index += max(run, 1)
                    }
                } else {
                    index += 1
                    while index < bytes.count, bytes[index] != byte, bytes[index] != UInt8(ascii: "\n") {
                        index += escapes && bytes[index] == UInt8(ascii: "\\") ? 2 : 1
                    }
                    if at(index) == byte { index += 1 }
                }
                last = byte
            default:
                if byte == UInt8(ascii: "}"), last == UInt8(ascii: "[") || last == UInt8(ascii: ",") {
                    return (line, index - lineStart + 1, "expected a value, saw '}'")
                }
                if isDigit(byte), !isTokenByte(last) || last == 0, let end = dateWithLoneHourDigit(bytes, from: index) {
                    return (line, index - lineStart + 1, "a date-time needs a time of the form HH:MM:SS, saw '"
                        + String(decoding: bytes[index..<end], as: UTF8.self) + "'")
                }
                last = byte
                index += 1
            }
        }
        return nil
    }

    /// The end of "DATE D" when a date-like token (10 digits or '-' besides '_', '-' at 4 and 7)
    /// starting at `start` is followed by a space, one digit and then no digit; nil otherwise.
    private static func dateWithLoneHourDigit(_ bytes: [UInt8], from start: Int) -> Int? {
        var chars: [UInt8] = []
        var index = start
        while index < bytes.count, isTokenByte(bytes[index]) {
            if bytes[index] != UInt8(ascii: "_") { chars.append(bytes[index]) }
            index += 1
        }
        guard chars.count == 10, chars[4] == UInt8(ascii: "-"), chars[7] == UInt8(ascii: "-"),
              chars.allSatisfy({ isDigit($0) || $0 == UInt8(ascii: "-") }),
              index + 1 < bytes.count, bytes[index] == UInt8(ascii: " "), isDigit(bytes[index + 1]),
              index + 2 >= bytes.count || !isDigit(bytes[index + 2])
        else { return nil }
        return index + 2
    }

    private static func isDigit(_ byte: UInt8) -> Bool { (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) }

    /// Bytes toml++ keeps scanning as part of one value: anything but whitespace, ] } , # and the
    /// characters that open something else.
    private static func isTokenByte(_ byte: UInt8) -> Bool {
        !" \t\r\n]},#[{=\"'".utf8.contains(byte)
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
