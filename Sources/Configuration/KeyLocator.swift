// Finds the line of a key in the TOML text. TOMLKit reports positions only for syntax errors, not
// for the values it returns, so a validation error ("nflog.snaplen must be …") would otherwise have
// no line. This is a line scanner, not a TOML parser: it follows `[table]` headers and
// `key = value` lines (dotted and quoted keys included) and skips the inside of multi-line strings.
// It is only asked about text TOMLKit already accepted; when unsure it returns nil, never a
// wrong guess from a different table. The n-th `[[name]]` header (counting from 0) opens the path
// `name, "n"`, so the keys of each element of an array of tables have lines of their own.

public struct KeyLocator: Sendable {
    private struct Entry: Sendable {
        let path: [String]
        let line: Int
    }

    private var entries: [Entry] = []

    public init(text: String) {
        var table: [String] = []
        var arrayTableCounts: [[String]: Int] = [:]
        var inMultilineString = false
        var lineNumber = 0
        for rawLine in text.split(separator: "\n", omittingEmptySubsequences: false) {
            lineNumber += 1
            let line = rawLine.drop { $0 == " " || $0 == "\t" }
            let delimiters = KeyLocator.count(of: "\"\"\"", in: line) + KeyLocator.count(of: "'''", in: line)
            defer { if delimiters % 2 == 1 { inMultilineString.toggle() } }
            if inMultilineString || line.isEmpty || line.first == "#" { continue }
            if line.hasPrefix("[") {
                let isArrayTable = line.hasPrefix("[[")
                let inner = line.dropFirst(isArrayTable ? 2 : 1)
                guard let close = inner.firstIndex(of: "]") else { continue }
                table = KeyLocator.keyPath(inner[..<close])
                if isArrayTable {
                    let index = arrayTableCounts[table, default: 0]
                    arrayTableCounts[table] = index + 1
                    table.append(String(index))
                }
                entries.append(Entry(path: table, line: lineNumber))
            } else if let equals = line.firstIndex(of: "=") {
                let key = KeyLocator.keyPath(line[..<equals])
                guard !key.isEmpty else { continue }
                entries.append(Entry(path: table + key, line: lineNumber))
            }
        }
    }

    /// The line defining `path` (a table header or a key), else the first line inside it (dotted
    /// keys define their tables implicitly), else the line of an enclosing inline table.
    public func line(of path: [String]) -> Int? {
        if let exact = entries.first(where: { $0.path == path }) { return exact.line }
        if let inside = entries.first(where: { $0.path.starts(with: path) }) { return inside.line }
        var prefix = path
        while !prefix.isEmpty {
            prefix.removeLast()
            if !prefix.isEmpty, let enclosing = entries.last(where: { $0.path == prefix }) { return enclosing.line }
        }
        return nil
    }

    /// `a . "b.c" . 'd'` -> ["a", "b.c", "d"]. Escapes inside quoted keys are left as written,
    /// which only matters for keys nfowner would reject anyway.
    private static func keyPath(_ text: Substring) -> [String] {
        var parts: [String] = []
        var current = ""
        var quote: Character?
        for character in text {
            if let open = quote {
                if character == open { quote = nil } else { current.append(character) }
            } else if character == "\"" || character == "'" {
                quote = character
            } else if character == "." {
                parts.append(current)
                current = ""
            } else if character != " " && character != "\t" {
                current.append(character)
            }
        }
        parts.append(current)
        return parts
    }

    private static func count(of needle: String, in line: Substring) -> Int {
        line.ranges(of: needle).count
    }
}

/// The known name closest to `word`, for "did you mean …": same after dropping case, `_` and `-`,
/// or at most two edits away (one for short words). nil when nothing is close.
public func closest(to word: String, among candidates: [String]) -> String? {
    func normalized(_ text: String) -> String { text.lowercased().filter { $0 != "_" && $0 != "-" } }
    if let same = candidates.first(where: { normalized($0) == normalized(word) }) { return same }
    let allowed = word.count <= 4 ? 1 : 2
    let scored = candidates.map { ($0, editDistance(word.lowercased(), $0.lowercased())) }
    guard let best = scored.min(by: { $0.1 < $1.1 }), best.1 <= allowed else { return nil }
    return best.0
}

/// Levenshtein distance over Characters; inputs here are short keys, and capped at 64 characters
/// so a pathological key cannot make this slow.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a.prefix(64)), y = Array(b.prefix(64))
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var previous = Array(0...y.count)
    var current = Array(repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        current[0] = i
        for j in 1...y.count {
            let substitution = previous[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1)
            current[j] = min(previous[j] + 1, current[j - 1] + 1, substitution)
        }
        swap(&previous, &current)
    }
    return previous[y.count]
}
