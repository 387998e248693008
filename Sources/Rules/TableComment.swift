// The table comment: the content hash, and who installed the table (so a later monitor knows
// whether it may adopt the table, and whether to remove it when it exits).
//
//     nfowner ruleset sha256=<64 hex> by=rules-install                   <- `nfowner rules install`
//     nfowner ruleset sha256=<64 hex> by=monitor pid=812 start=1234567   <- a monitor, for its run
//     nfowner ruleset sha256=<64 hex> by=monitor-keep-rules              <- `monitor --keep-rules`
//     nfowner ruleset sha256=<64 hex>                                    <- before installers were recorded
//
// `start` is the process's start time in clock ticks after boot (field 22 of /proc/PID/stat): a
// pid reused by another process has another start time. The hash covers the table definition
// WITHOUT the comment, so the installer never changes it.
//
// nft takes at most 128 bytes of comment (NFTNL_UDATA_COMMENT_MAXLEN; measured: 128 install).
// The hash part is 87 bytes, " by=monitor" 11, " pid=" plus at most 7 digits (PID_MAX_LIMIT is
// 4194304) 12, " start=" 7: 11 digits are left for the start time, 10^11 ticks at USER_HZ 100 is
// 31 years of uptime. That is why the key is `by=` and not `installer=` (which left 4 digits).
// A comment that still does not fit is refused by the renderer (`.unsafeText`), never cut.

/// A process, told apart from a later one that reuses its pid by its start time.
public struct ProcessStamp: Sendable, Hashable, CustomStringConvertible {
    public var pid: Int32
    /// Start time in clock ticks after boot: field 22 (`starttime`) of /proc/PID/stat.
    public var startTicks: UInt64

    public init(pid: Int32, startTicks: UInt64) {
        self.pid = pid
        self.startTicks = startTicks
    }

    public var description: String { "pid \(pid)" }

    /// The start time from the text of /proc/PID/stat, or nil when it is not there. The command
    /// name (field 2, in parentheses) may contain spaces and parentheses, so fields are counted
    /// after the LAST `)`: the state is field 3, so `starttime` is the 20th field after it.
    public static func startTicks(fromStat text: String) -> UInt64? {
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard fields.count > 19 else { return nil }
        return UInt64(fields[19])
    }
}

/// Who installed nfowner's table, as its comment records it.
public enum TableInstaller: Sendable, Equatable {
    /// `nfowner rules install`: a persistent table; no monitor ever removes it.
    case rulesInstall
    /// A monitor, for the length of its run: it removes the table when it exits; if it died
    /// without doing so, the next monitor adopts the table and removes it.
    case monitor(ProcessStamp)
    /// A monitor run with `--keep-rules`: persistent, like `rules install`.
    case keptMonitor
    /// A `by=` this version does not know (a newer nfowner), or a monitor entry without a valid
    /// pid and start time. Treated like `rulesInstall`: never removed automatically.
    case unrecognized(String)

    /// The `by=…` words of the comment.
    var commentWords: String {
        switch self {
        case .rulesInstall: return "by=rules-install"
        case .monitor(let stamp): return "by=monitor pid=\(stamp.pid) start=\(stamp.startTicks)"
        case .keptMonitor: return "by=monitor-keep-rules"
        case .unrecognized(let value): return "by=\(value)"
        }
    }

    /// For people: "`nfowner rules install`", "monitor pid 812", ….
    public var description: String {
        switch self {
        case .rulesInstall: return "`nfowner rules install`"
        case .monitor(let stamp): return "monitor pid \(stamp.pid)"
        case .keptMonitor: return "`nfowner monitor --keep-rules`"
        case .unrecognized(let value): return "'\(NftText.printable(value))' (unknown to this version)"
        }
    }

    /// One word for scripts: rules-install, monitor, monitor-keep-rules, or the unknown value.
    public var keyword: String {
        switch self {
        case .rulesInstall: return "rules-install"
        case .monitor: return "monitor"
        case .keptMonitor: return "monitor-keep-rules"
        case .unrecognized(let value): return value
        }
    }
}

/// nfowner's table comment: `nfowner ruleset sha256=<hash>` and, since the installer is
/// recorded, ` by=…`.
public struct TableComment: Sendable, Equatable {
    /// Start of every nfowner table comment.
    public static let prefix = NftScriptRenderer.hashCommentPrefix

    /// SHA-256 of the table definition without the comment, lowercase hex.
    public var hash: String
    /// Who installed the table; nil when the comment does not say (written before installers
    /// were recorded, or rendered without one): treat as `rules install`, never remove it.
    public var installer: TableInstaller?

    public init(hash: String, installer: TableInstaller?) {
        self.hash = hash
        self.installer = installer
    }

    /// The comment's text (without quotes).
    public var text: String {
        Self.prefix + hash + (installer.map { " " + $0.commentWords } ?? "")
    }

    /// Parses a comment's text (without quotes). Nil when it is not nfowner's: no prefix, not
    /// exactly 64 hex digits, or something other than space-separated words after them. Unknown
    /// words are skipped (a newer nfowner may add some); a `by=monitor` without a valid pid and
    /// start is `.unrecognized("monitor")`.
    public static func parse(_ text: Substring) -> TableComment? {
        guard text.hasPrefix(prefix) else { return nil }
        let rest = text.dropFirst(prefix.count)
        let hash = rest.prefix(while: { $0.isHexDigit && $0.isASCII })
        guard hash.count == 64 else { return nil }
        let tail = rest.dropFirst(64)
        guard tail.isEmpty || tail.first == " " else { return nil }
        var words: [Substring: Substring] = [:]
        for word in tail.split(separator: " ") {
            guard let equals = word.firstIndex(of: "="), equals != word.startIndex else { continue }
            words[word[..<equals]] = words[word[..<equals]] ?? word[word.index(after: equals)...]
        }
        return TableComment(hash: String(hash), installer: words["by"].map { installer(by: $0, words) })
    }

    public static func parse(_ text: String) -> TableComment? { parse(Substring(text)) }

    private static func installer(by value: Substring, _ words: [Substring: Substring]) -> TableInstaller {
        switch value {
        case "rules-install": return .rulesInstall
        case "monitor-keep-rules": return .keptMonitor
        case "monitor":
            guard let pid = words["pid"].flatMap({ Int32($0) }), pid > 0,
                  let start = words["start"].flatMap({ UInt64($0) })
            else { return .unrecognized("monitor") }
            return .monitor(ProcessStamp(pid: pid, startTicks: start))
        default:
            return .unrecognized(String(value.prefix(64)))
        }
    }

    /// The table comment in an `nft list table` listing: the line `comment "nfowner ruleset …"`,
    /// whole (its closing quote ends the line). Nil when there is none, or it is not nfowner's.
    public static func find(inListing listing: String) -> TableComment? {
        let opener = "comment \"" + prefix
        for rawLine in listing.split(separator: "\n") {
            let line = rawLine.drop(while: { $0 == " " || $0 == "\t" })
            guard line.hasPrefix(opener) else { continue }
            let quoted = line.dropFirst("comment \"".count)
            guard let close = quoted.firstIndex(of: "\""), quoted.index(after: close) == quoted.endIndex else { return nil }
            return parse(quoted[..<close])
        }
        return nil
    }
}
