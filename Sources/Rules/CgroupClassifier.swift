// A cgroup nfowner classifies packets by, and the log prefix that carries its id to the monitor.
//
// The CLI discovers cgroups (id = inode of the directory) and gives them here as values; this
// file only checks that they are consistent and that their paths are safe to write into nft and
// iptables-restore text. Both texts lack escapes, so a path is validated against an allowlist and
// a cgroup that fails is rejected (or skipped and reported), never rendered.

import BinaryParsing
import PacketModel

/// One cgroup v2 directory to classify packets by.
public struct CgroupClassifier: Sendable, Equatable, Hashable {
    /// The cgroup id: the inode number of its directory, as the kernel compares it and as
    /// `socket cgroupv2` keys hold it (8 bytes).
    public var id: UInt64
    /// Depth below the cgroup2 root (the root is 0): `/system.slice/nginx.service` is 2. nft's
    /// `socket cgroupv2 level N` must be given exactly this depth or it never matches.
    public var level: Int
    /// The path as nft resolves it, `stat("/sys/fs/cgroup/" + nftPath)`: on a hybrid system whose
    /// cgroup2 is mounted at /sys/fs/cgroup/unified this is "unified/system.slice/nginx.service".
    public var nftPath: String
    /// The path relative to the cgroup2 root with a leading slash, as in /proc/PID/cgroup:
    /// "/system.slice/nginx.service". iptables' `-m cgroup --path` takes it without the slash.
    public var hierarchyPath: String

    public init(id: UInt64, level: Int, nftPath: String, hierarchyPath: String) {
        self.id = id
        self.level = level
        self.nftPath = nftPath
        self.hierarchyPath = hierarchyPath
    }

    /// Deepest cgroup level nfowner accepts. The kernel's limit is far higher; 32 keeps the
    /// number of vmap rules per packet small.
    public static let maxLevel = 32
    /// Longest path accepted, in bytes (well under PATH_MAX; nft and iptables both take it whole).
    public static let maxPathBytes = 1024

    // MARK: prefix

    /// The full prefix for the default spec prefix: `"nfowner cg="` then the decimal id.
    public static let defaultPrefixStart = RulesetSpec.defaultPrefix + ClassificationPrefix.marker

    /// The NFLOG prefix of packets classified as cgroup `id` (see `ClassificationPrefix`).
    public static func logPrefix(id: UInt64, prefix: String = RulesetSpec.defaultPrefix) -> String {
        ClassificationPrefix.make(id: id, prefix: prefix)
    }

    // MARK: validation

    /// The relative hierarchy path ("system.slice/nginx.service"), as iptables wants it.
    public var relativeHierarchyPath: Substring { hierarchyPath.drop { $0 == "/" } }

    /// The nft chain that logs this cgroup's packets: `cg_<id>`.
    public var chainName: String { "cg_\(id)" }

    /// Throws `.unsafeText` when a path could inject syntax into nft or iptables-restore text
    /// (anything outside ASCII letters, digits and ` _-.:/=+,@`; `..` or empty components), and
    /// `.invalidSpec` when the fields disagree: level outside 1…maxLevel, a level different from
    /// the hierarchy path's depth, or an nftPath that does not end with the hierarchy path.
    public func validate() throws(RulesError) {
        let what = "cgroup \(id)"
        guard (1...Self.maxLevel).contains(level) else {
            throw RulesError(.invalidSpec, "\(what): level \(level) is out of range 1…\(Self.maxLevel) (the root, level 0, is every packet)")
        }
        _ = try NftText.validateQuoted(hierarchyPath, what: "\(what) hierarchy path", maxBytes: Self.maxPathBytes)
        _ = try NftText.validateQuoted(nftPath, what: "\(what) nft path", maxBytes: Self.maxPathBytes)
        guard hierarchyPath.hasPrefix("/") else {
            throw RulesError(.invalidSpec, "\(what): hierarchy path '\(hierarchyPath)' must start with '/' (as in /proc/PID/cgroup)")
        }
        let components = relativeHierarchyPath.split(separator: "/", omittingEmptySubsequences: false)
        let nftComponents = nftPath.split(separator: "/", omittingEmptySubsequences: false)
        for component in components + nftComponents where component.isEmpty || component == "." || component == ".." {
            throw RulesError(.unsafeText, "\(what): path '\(hierarchyPath)' / '\(nftPath)' has an empty, '.' or '..' component")
        }
        guard components.count == level else {
            throw RulesError(.invalidSpec, "\(what): level \(level) differs from the depth \(components.count) of '\(hierarchyPath)': nft would never match it")
        }
        guard nftComponents.count >= components.count, Array(nftComponents.suffix(components.count)) == components else {
            throw RulesError(.invalidSpec, "\(what): nft path '\(nftPath)' does not end with the hierarchy path '\(hierarchyPath)'")
        }
    }

    /// Splits `cgroups` into those that can be rendered and those that cannot, with the reason
    /// for each skipped one. Use it when cgroups come from cgroupfs, where anyone who can create
    /// a directory chooses the name: one hostile name must not stop the others being classified.
    public static func partitionRenderable(_ cgroups: [CgroupClassifier])
        -> (renderable: [CgroupClassifier], skipped: [(cgroup: CgroupClassifier, error: RulesError)])
    {
        var renderable: [CgroupClassifier] = []
        var skipped: [(cgroup: CgroupClassifier, error: RulesError)] = []
        for cgroup in cgroups {
            do {
                try cgroup.validate()
                renderable.append(cgroup)
            } catch {
                skipped.append((cgroup, error))
            }
        }
        return (renderable, skipped)
    }
}
