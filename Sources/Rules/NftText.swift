// Validation of every string that reaches nft's text syntax.
//
// nft's scanner has no escapes inside quoted strings: a `"` ends the string whatever precedes it,
// a newline ends the statement, and in nft 1.0.6 a `$` inside a quoted log prefix is expanded as
// a variable (measured: `log prefix "a$b"` fails with "unknown identifier 'b'"). So instead of
// escaping we allow a small alphabet that is inert inside quotes and reject everything else with
// a reason that names the offending character. Identifiers (table names) are never quoted, so
// their alphabet is smaller still.

enum NftText {
    /// Longest log prefix the kernel accepts, in bytes. The kernel's NFTA_LOG_PREFIX policy is
    /// NF_LOG_PREFIXLEN (128) including the NUL: measured, 127 characters install and 128 fail
    /// with "Numerical result out of range".
    static let maxLogPrefixBytes = 127
    /// Longest comment nft accepts (NFTNL_UDATA_COMMENT_MAXLEN), in bytes.
    static let maxCommentBytes = 128
    /// Longest table name we accept. The kernel allows 255 (NFT_NAME_MAXLEN - 1); a short limit keeps
    /// listings and error messages readable.
    static let maxIdentifierBytes = 64

    /// Characters allowed inside a quoted string besides ASCII letters and digits. Quotes, backslash,
    /// `$`, `;`, braces, `#` and control characters are all excluded.
    static let quotedPunctuation: Set<UInt8> = Set(" _-.:/=+,@".utf8)

    /// Returns `text` unchanged when it can be written between double quotes in an nft script;
    /// throws `.unsafeText` naming the first offending character otherwise.
    static func validateQuoted(_ text: String, what: String, maxBytes: Int) throws(RulesError) -> String {
        let bytes = Array(text.utf8)
        guard bytes.count <= maxBytes else {
            throw RulesError(.unsafeText, "\(what) is \(bytes.count) bytes long; nftables accepts at most \(maxBytes)")
        }
        for (offset, byte) in bytes.enumerated() where !isAlphanumeric(byte) && !quotedPunctuation.contains(byte) {
            throw RulesError(.unsafeText, "\(what) contains \(describe(byte)) at byte \(offset); allowed are "
                + "ASCII letters, digits, space and \(String(decoding: quotedPunctuation.sorted().filter { $0 != 0x20 }, as: UTF8.self))")
        }
        return text
    }

    /// Returns `name` unchanged when it is a plain nft identifier: an ASCII letter followed by
    /// letters, digits or `_`. nft keywords (`log`, `filter`, …) pass this check but nft itself
    /// rejects them with a syntax error.
    static func validateIdentifier(_ name: String, what: String) throws(RulesError) -> String {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, isLetter(first) else {
            throw RulesError(.unsafeText, "\(what) '\(printable(name))' must start with an ASCII letter")
        }
        guard bytes.count <= maxIdentifierBytes else {
            throw RulesError(.unsafeText, "\(what) is \(bytes.count) bytes long; at most \(maxIdentifierBytes) are accepted")
        }
        for (offset, byte) in bytes.enumerated() where !isAlphanumeric(byte) && byte != UInt8(ascii: "_") {
            throw RulesError(.unsafeText, "\(what) contains \(describe(byte)) at byte \(offset); only ASCII letters, digits and _ are allowed")
        }
        return name
    }

    private static func isLetter(_ byte: UInt8) -> Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
    }

    private static func isAlphanumeric(_ byte: UInt8) -> Bool {
        isLetter(byte) || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
    }

    /// A character for an error message: printable ASCII quoted, anything else as hex, so the message
    /// itself cannot carry a newline or terminal escape.
    private static func describe(_ byte: UInt8) -> String {
        if byte >= 0x21 && byte < 0x7f { return "'\(Character(Unicode.Scalar(byte)))'" }
        return "byte 0x" + String(byte, radix: 16, uppercase: true)
    }

    /// `text` with anything outside printable ASCII replaced by `?`, for error messages.
    static func printable(_ text: String) -> String {
        String(decoding: text.utf8.prefix(80).map { $0 >= 0x20 && $0 < 0x7f ? $0 : UInt8(ascii: "?") }, as: UTF8.self)
    }
}
