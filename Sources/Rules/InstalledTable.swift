import PacketModel

// What a monitor needs to know about an nfowner table it did not install, read from the terse
// listing (`nft -t list table inet nfowner`: no map elements, so it is fast with many cgroups):
//
//     table inet nfowner {
//         comment "nfowner ruleset sha256=… by=rules-install"      <- who installed it
//         map cgroups_l1 {                                          <- levels that can be followed
//             typeof socket cgroupv2 level 0 : verdict
//         }
//         chain cg_614 {                                            <- cgroups classified now
//             counter packets 1 bytes 34 log prefix "nfowner cg=614" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
//             accept
//         }
//         chain classify { … }
//     }

/// The parts of an installed table that decide whether, and where, a monitor can follow cgroups
/// in it.
public struct InstalledTable: Sendable, Equatable {
    /// The table comment, when it is nfowner's.
    public var comment: TableComment?
    /// Levels with a `cgroups_l<N>` verdict map, deepest first.
    public var mapLevels: [Int]
    /// Ids of the `cg_<id>` chains.
    public var cgroupChains: [UInt64]
    /// The log statements of nfowner's log rules (`log prefix "…" group …`, up to the rule
    /// comment), in listing order.
    public var logStatements: [String]

    public init(comment: TableComment?, mapLevels: [Int], cgroupChains: [UInt64], logStatements: [String]) {
        self.comment = comment
        self.mapLevels = mapLevels
        self.cgroupChains = cgroupChains
        self.logStatements = logStatements
    }

    /// Parses a listing of the table. Never traps; what it does not recognise is left out.
    public static func parse(listing: String) -> InstalledTable {
        var levels: Set<Int> = []
        var chains: [UInt64] = []
        var logs: [String] = []
        let mapPrefix = Ruleset.mapName(level: 0).dropLast()  // "cgroups_l"
        for rawLine in listing.split(separator: "\n") {
            let words = rawLine.split(whereSeparator: { $0 == " " || $0 == "\t" })
            if words.count == 3, words[2] == "{" {
                if words[0] == "map", words[1].hasPrefix(mapPrefix),
                   let level = Int(words[1].dropFirst(mapPrefix.count)), (1...CgroupClassifier.maxLevel).contains(level) {
                    levels.insert(level)
                } else if words[0] == "chain", words[1].hasPrefix("cg_"), let id = UInt64(words[1].dropFirst(3)) {
                    chains.append(id)
                }
                continue
            }
            guard rawLine.hasSuffix(" comment \"\(Rule.logRuleComment)\""),
                  let start = rawLine.range(of: "log prefix \"") else { continue }
            let end = rawLine.index(rawLine.endIndex, offsetBy: -(" comment \"\(Rule.logRuleComment)\"".count))
            guard start.lowerBound <= end else { continue }
            logs.append(String(rawLine[start.lowerBound..<end]))
        }
        return InstalledTable(comment: TableComment.find(inListing: listing), mapLevels: levels.sorted(by: >),
                              cgroupChains: chains, logStatements: logs)
    }

    /// Whether every log rule in the table logs the way `spec` would: the same group, snaplen and
    /// queue threshold, each flow's first packet delivered at once or not alike (the table then
    /// has the flow sets a follower's new chains look up), and the prefix `spec.prefix` (the
    /// fallback) or `spec.prefix cg=<id>`. A follower adds chains that log like `spec`; in a table
    /// that logs otherwise they would not match their neighbours, reach another group, or name a
    /// set that is not there. False when the table has no log rule.
    public func logsLike(_ spec: RulesetSpec) -> Bool {
        var expectedTails: Set<Substring> = []
        for rule in Ruleset.logRules(spec, matches: [], log: Ruleset.logStatement(spec)) {
            guard let text = try? NftScriptRenderer.render(Rule(matches: [], statements: rule.statements.filter {
                if case .log = $0 { return true }
                if case .accept = $0 { return true }
                return false
            })) else { return false }
            expectedTails.insert(Self.split(text).tail)
        }
        guard !logStatements.isEmpty else { return false }
        let classifiedStart = String(CgroupClassifier.logPrefix(id: 0, prefix: spec.prefix).dropLast())  // "nfowner cg="
        var seenTails: Set<Substring> = []
        let prefixesMatch = logStatements.allSatisfy { statement in
            let (prefix, tail) = Self.split(statement)
            guard let prefix, expectedTails.contains(tail) else { return false }
            seenTails.insert(tail)
            return prefix == spec.prefix
                || (prefix.hasPrefix(classifiedStart) && ClassificationPrefix.cgroupID(fromPrefix: prefix) != nil)
        }
        return prefixesMatch && seenTails == expectedTails
    }

    /// `log prefix "P" group …` → ("P", " group …"); (nil, "") when there is no closing quote.
    private static func split(_ statement: String) -> (prefix: String?, tail: Substring) {
        let opener = "log prefix \""
        guard statement.hasPrefix(opener) else { return (nil, "") }
        let rest = statement.dropFirst(opener.count)
        guard let close = rest.firstIndex(of: "\"") else { return (nil, "") }
        return (String(rest[..<close]), rest[rest.index(after: close)...])
    }
}

extension NftRunner {
    /// The installed table `name`, read with one terse listing, or nil when it is not installed.
    public func inspectInstalled(name: String) throws(RulesError) -> InstalledTable? {
        try listTable(name: name, terse: true).map { InstalledTable.parse(listing: $0) }
    }
}
