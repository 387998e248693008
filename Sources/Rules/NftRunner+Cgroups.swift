// Installing and updating cgroup classification when cgroups come and go underneath us.
//
// nft resolves every cgroup path with stat() while parsing, so a directory removed between our
// decision and that stat fails the whole file ("cgroupv2 path fails"); nothing reaches the
// kernel. These calls check the paths first, and when nft still hits a vanished one, check
// again and retry without it, a bounded number of times.

import Foundation
import NetfilterSystem

extension NftRunner {
    /// Where nft resolves `socket cgroupv2` paths (it always prepends this, whatever the mount).
    static let nftCgroupRoot = "/sys/fs/cgroup"
    /// Attempts before giving up when cgroups keep vanishing under us.
    static let cgroupAttempts = 3

    /// Installs `spec` like `install`, leaving out cgroups whose directory is gone (or now has
    /// another id: it was removed and recreated). Returns the cgroups left out.
    @discardableResult
    public func installSkippingVanished(_ spec: RulesetSpec, installer: TableInstaller? = nil) throws(RulesError) -> [CgroupClassifier] {
        try retryingVanished(spec.cgroups) { (present: [CgroupClassifier]) throws(RulesError) in
            var reduced = spec
            reduced.cgroups = present
            reduced.cgroupLevels = spec.mapLevels  // keep every map, even if its cgroups vanished
            return try NftScriptRenderer.install(reduced, installer: installer)
        }
    }

    /// Adds `cgroups` to the installed table of `spec` in one transaction, leaving out those that
    /// vanished. Returns the ones left out. Throws what the renderer throws, or nft's failure.
    @discardableResult
    public func addCgroups(_ cgroups: [CgroupClassifier], spec: RulesetSpec) throws(RulesError) -> [CgroupClassifier] {
        try retryingVanished(cgroups) { (present: [CgroupClassifier]) throws(RulesError) in
            try NftScriptRenderer.addCgroups(present, spec: spec)
        }
    }

    /// Removes `removed` (present or already gone) from the installed table of `spec`, keeping
    /// `live`. A cgroup of `live` that vanished meanwhile is removed too and returned.
    @discardableResult
    public func removeCgroups(_ removed: [CgroupClassifier], keeping live: [CgroupClassifier],
                              spec: RulesetSpec) throws(RulesError) -> [CgroupClassifier] {
        try retryingVanished(live) { (present: [CgroupClassifier]) throws(RulesError) in
            let presentIDs = Set(present.map(\.id))
            let alsoGone = live.filter { !presentIDs.contains($0.id) }
            return try NftScriptRenderer.removeCgroups(removed + alsoGone, keeping: present, spec: spec)
        }
    }

    /// Makes the maps of `spec`'s levels in an installed (adopted) table hold exactly `cgroups`
    /// (those of them still present), each with its chain, and deletes the chains `staleChains`
    /// (ids): one transaction. Returns the cgroups left out because they vanished.
    @discardableResult
    public func resyncCgroups(_ cgroups: [CgroupClassifier], deletingChains staleChains: [UInt64],
                              spec: RulesetSpec) throws(RulesError) -> [CgroupClassifier] {
        try retryingVanished(cgroups) { (present: [CgroupClassifier]) throws(RulesError) in
            try NftScriptRenderer.resyncCgroups(present, deletingChains: staleChains, spec: spec)
        }
    }

    /// Renders with the cgroups whose directories are present and applies; when nft reports a
    /// vanished path, re-checks and retries. Returns the cgroups left out.
    private func retryingVanished(_ cgroups: [CgroupClassifier],
                                  render: ([CgroupClassifier]) throws(RulesError) -> String) throws(RulesError) -> [CgroupClassifier] {
        var lastError: RulesError? = nil
        for _ in 0..<Self.cgroupAttempts {
            let present = cgroups.filter { Self.cgroupPresent($0) }
            do {
                try apply(script: try render(present))
                let presentIDs = Set(present.map(\.id))
                return cgroups.filter { !presentIDs.contains($0.id) }
            } catch where error.code == .nftFailed && error.reason.contains("cgroupv2 path fails") {
                lastError = error
            }
        }
        throw lastError ?? RulesError(.nftFailed, "cgroups kept vanishing")
    }

    /// Whether nft would resolve `cgroup.nftPath` to `cgroup.id`: the directory exists and its
    /// inode is the id (a recreated cgroup of the same name has a new id and would be misfiled).
    static func cgroupPresent(_ cgroup: CgroupClassifier, root: String = nftCgroupRoot) -> Bool {
        Directories.directoryInode(root + "/" + cgroup.nftPath) == cgroup.id
    }
}
