// Runtime changes to the cgroup classification of an installed table, without a reload.
//
// Adding is plain: create the cgroup's chain, then the map element that goes to it.
//
// Removing is not: nft only takes a map key as a path, which it stat()s to get the cgroup id,
// and once the directory is gone there is no path to give. Measured with nft 1.0.6: deleting by
// the old path fails ("cgroupv2 path fails: No such file or directory"), a numeric key (decimal,
// hex, JSON) is taken as a path too and fails the same way, and the chain cannot be deleted while
// the stale element still refers to it (EBUSY). What works, in ONE transaction: flush the level's
// map, re-add every live element of that level, delete the removed cgroups' chains. The kernel
// applies the batch atomically, so a packet sees the old map or the new one, never an empty one.
// It costs O(cgroups at that level) per removal batch, which is why removals take a list.
//
//     flush map inet nfowner cgroups_l2
//     add element inet nfowner cgroups_l2 { "unified/system.slice/a.service" : goto cg_81, … }
//     add chain inet nfowner cg_97          <- so the delete cannot fail on an absent chain
//     delete chain inet nfowner cg_97
//
// A path can vanish between our decision and nft's stat; nft then refuses the whole file before
// anything reaches the kernel. NftRunner retries without the vanished ones.

extension NftScriptRenderer {
    /// One transaction that adds `cgroups` to the installed table of `spec`: for each, its chain
    /// `cg_<id>` (created or emptied, then count+log and accept) and its element in the map of
    /// its level. Throws `.unsafeText`/`.invalidSpec` for a cgroup that cannot be rendered, or
    /// whose level has no map in `spec` (add the level to `cgroupLevels` and reinstall).
    public static func addCgroups(_ cgroups: [CgroupClassifier], spec: RulesetSpec) throws(RulesError) -> String {
        let table = try updateTable(spec, cgroups)
        var lines = ["# nfowner: adds \(cgroups.count) cgroup(s) to \(table) in one transaction."]
        for cgroup in cgroups.sorted(by: { $0.id < $1.id }) {
            let chain = "\(table) \(cgroup.chainName)"
            lines.append("add chain \(chain)")
            lines.append("flush chain \(chain)")
            for rule in Ruleset.cgroupChainRules(cgroup, spec: spec) {
                lines.append("add rule \(chain) \(try render(rule))")
            }
            let text = try element(.init(key: cgroup.nftPath, chain: cgroup.chainName))
            lines.append("add element \(table) \(Ruleset.mapName(level: cgroup.level)) { \(text) }")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One transaction that removes `removed` from the installed table of `spec` whether or not
    /// their directories still exist: it flushes the map of each level that loses a cgroup,
    /// re-adds the cgroups of `live` at those levels (so `live` must be every cgroup that stays
    /// classified, and their directories must exist), and deletes the removed cgroups' chains.
    /// Throws like `addCgroups`.
    public static func removeCgroups(_ removed: [CgroupClassifier], keeping live: [CgroupClassifier],
                                     spec: RulesetSpec) throws(RulesError) -> String {
        let table = try updateTable(spec, removed + live)
        let removedIDs = Set(removed.map(\.id))
        let kept = live.filter { !removedIDs.contains($0.id) }.sorted { $0.id < $1.id }
        var lines = ["# nfowner: removes \(removed.count) cgroup(s) from \(table) in one transaction."]
        for level in Set(removed.map(\.level)).sorted(by: >) {
            lines += try refillMap(level: level, of: table, with: kept)
        }
        for id in removedIDs.sorted() {
            lines.append("add chain \(table) cg_\(id)")
            lines.append("delete chain \(table) cg_\(id)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// One transaction that makes an adopted table's maps at `spec`'s levels hold exactly
    /// `cgroups`: each cgroup's chain is created (or emptied) and filled first, then each map is
    /// flushed and refilled, then the chains `staleChains` (ids of cgroups no longer there, found
    /// in the table's listing) are deleted; the caller passes only chains no remaining element
    /// refers to (maps of levels outside `spec` are not flushed). Throws like `addCgroups`.
    public static func resyncCgroups(_ cgroups: [CgroupClassifier], deletingChains staleChains: [UInt64],
                                     spec: RulesetSpec) throws(RulesError) -> String {
        let table = try updateTable(spec, cgroups)
        let sorted = cgroups.sorted { $0.id < $1.id }
        var lines = ["# nfowner: sets the cgroups of \(table) (levels \(spec.mapLevels.map(String.init).joined(separator: ","))) in one transaction."]
        for cgroup in sorted {
            let chain = "\(table) \(cgroup.chainName)"
            lines.append("add chain \(chain)")
            lines.append("flush chain \(chain)")
            for rule in Ruleset.cgroupChainRules(cgroup, spec: spec) {
                lines.append("add rule \(chain) \(try render(rule))")
            }
        }
        for level in spec.mapLevels {
            lines += try refillMap(level: level, of: table, with: sorted)
        }
        let keptIDs = Set(cgroups.map(\.id))
        for id in Set(staleChains).subtracting(keptIDs).sorted() {
            lines.append("add chain \(table) cg_\(id)")
            lines.append("delete chain \(table) cg_\(id)")
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// `inet NAME` after validating the spec and that every cgroup renders and has a map.
    private static func updateTable(_ spec: RulesetSpec, _ cgroups: [CgroupClassifier]) throws(RulesError) -> String {
        try spec.validate()
        let levels = Set(spec.mapLevels)
        for cgroup in cgroups {
            try cgroup.validate()
            guard levels.contains(cgroup.level) else {
                throw RulesError(.invalidSpec, "cgroup \(cgroup.id) is at level \(cgroup.level), which has no verdict map "
                    + "in this ruleset: add \(cgroup.level) to the cgroup levels and reinstall")
            }
        }
        return "inet \(try NftText.validateIdentifier(spec.tableName, what: "table name"))"
    }

    /// `flush map` of `level`'s map, then one `add element` with those of `cgroups` at that
    /// level (none when there are none).
    private static func refillMap(level: Int, of table: String,
                                  with cgroups: [CgroupClassifier]) throws(RulesError) -> [String] {
        let map = "\(table) \(Ruleset.mapName(level: level))"
        var lines = ["flush map \(map)"]
        let atLevel = cgroups.filter { $0.level == level }
        if !atLevel.isEmpty {
            var elements: [String] = []
            for cgroup in atLevel { elements.append(try element(.init(key: cgroup.nftPath, chain: cgroup.chainName))) }
            lines.append("add element \(map) { " + elements.joined(separator: ", ") + " }")
        }
        return lines
    }
}
