// A snapshot of the cgroup2 hierarchy down to a bounded depth: every cgroup's id (the inode
// number of its directory, which is what `socket cgroupv2` and sock_diag report) and its path.
import Foundation
import NetfilterSystem

/// One cgroup.
public struct CgroupNode: Sendable, Hashable, CustomStringConvertible {
    /// The cgroup id: the inode number of its directory (8 bytes, as nft set keys hold it).
    public var id: UInt64
    /// The hierarchy path, as in /proc/PID/cgroup: "/system.slice/nginx.service"; the root is "/".
    public var path: String
    /// Depth: "/" is 0, "/system.slice" is 1 — the `level` nft needs to match it.
    public var level: Int

    public init(id: UInt64, path: String, level: Int) {
        self.id = id
        self.path = path
        self.level = level
    }

    /// The directory name ("nginx.service"), "/" for the root.
    public var name: String { CgroupPath.baseName(of: path) }
    public var description: String { "\(path) (id \(id), level \(level))" }
}

/// What the walk needs to know about a directory entry.
public struct CgroupFileEntry: Sendable, Equatable {
    public var inode: UInt64
    /// True only for real directories: a symbolic link to a directory is false.
    public var isDirectory: Bool

    public init(inode: UInt64, isDirectory: Bool) {
        self.inode = inode
        self.isDirectory = isDirectory
    }
}

/// The file operations of a walk, so tests can run it on fixture trees and inject races.
public protocol CgroupFileSystem {
    /// The names in directory `path`; nil when it is gone or unreadable.
    func entries(ofDirectory path: String) -> [String]?
    /// The entry at `path` without following a symbolic link; nil when it is gone.
    func entry(at path: String) -> CgroupFileEntry?
}

/// The real filesystem, through Foundation.
public struct LocalCgroupFileSystem: CgroupFileSystem {
    public init() {}

    public func entries(ofDirectory path: String) -> [String]? {
        try? FileManager.default.contentsOfDirectory(atPath: path)
    }

    public func entry(at path: String) -> CgroupFileEntry? {
        // One lstat: it gives the inode and tells a symlink apart. (FileManager's attributes
        // also looked up the owner's and group's names in /etc/passwd and /etc/group and listed
        // extended attributes: ~40 µs for each new flow's owner, measured with hold mode.)
        Directories.linkStatus(path).map { CgroupFileEntry(inode: $0.inode, isDirectory: $0.isDirectory) }
    }
}

/// The cgroups under a cgroup2 mount point, down to `maxLevel`.
///
/// A value: build a new one to see changes (or keep a `CgroupIndex` / `CgroupWatcher` current).
public struct CgroupTree: Sendable {
    /// Deep enough for systemd user sessions (/user.slice/user-1000.slice/user@1000.service/app.slice/x.scope is 5).
    public static let defaultMaxLevel = 8
    /// The deepest walk allowed, whatever the caller asks (cgroup.max.depth is unlimited by default).
    public static let levelLimit = 64
    /// Bounds the memory and time of one walk.
    public static let nodeLimit = 100_000

    public let mountPoint: String
    public let maxLevel: Int
    /// Parents before their children; the root first.
    public let nodes: [CgroupNode]
    private let indexByPath: [String: Int]
    private let indexByID: [UInt64: Int]

    /// Walks the hierarchy at `mountPoint`. Directories that vanish during the walk are skipped
    /// (cgroups come and go all the time); symbolic links are not followed.
    /// Throws `.unreadable` when the mount point itself cannot be read.
    public init(mountPoint: String, maxLevel: Int = defaultMaxLevel,
                fileSystem: some CgroupFileSystem = LocalCgroupFileSystem()) throws(CgroupError) {
        guard let rootEntry = fileSystem.entry(at: mountPoint), rootEntry.isDirectory else {
            throw CgroupError(.unreadable, "cgroup2 root \(mountPoint) does not exist or is not a directory")
        }
        guard fileSystem.entries(ofDirectory: mountPoint) != nil else {
            throw CgroupError(.unreadable, "cannot list the cgroup2 root \(mountPoint)")
        }
        let root = CgroupNode(id: rootEntry.inode, path: "/", level: 0)
        let level = min(max(maxLevel, 0), Self.levelLimit)
        let below = Self.walk(mountPoint: mountPoint, below: root, maxLevel: level, fileSystem: fileSystem)
        self.init(mountPoint: mountPoint, maxLevel: level, nodes: [root] + below)
    }

    /// A tree from known nodes (tests, or a watcher's state).
    public init(mountPoint: String, maxLevel: Int, nodes: [CgroupNode]) {
        self.mountPoint = mountPoint
        self.maxLevel = maxLevel
        self.nodes = nodes
        var byPath: [String: Int] = [:]
        var byID: [UInt64: Int] = [:]
        for (index, node) in nodes.enumerated() {
            byPath[node.path] = index
            byID[node.id] = index
        }
        indexByPath = byPath
        indexByID = byID
    }

    /// The descendants of `parent` down to `maxLevel`, parents first (breadth-first), not
    /// including `parent`. Entries that vanish or cannot be read are skipped. `beforeListing` sees
    /// each directory just before it is listed (a watcher adds its inotify watch there, so a
    /// subdirectory created meanwhile is either listed or reported, never missed).
    public static func walk(mountPoint: String, below parent: CgroupNode, maxLevel: Int,
                            fileSystem: some CgroupFileSystem = LocalCgroupFileSystem(),
                            beforeListing: (CgroupNode) -> Void = { _ in }) -> [CgroupNode] {
        let limit = min(maxLevel, levelLimit)
        var found: [CgroupNode] = []
        var queue: [CgroupNode] = [parent]
        var next = 0
        let mount = CgroupMount(mountPoint: mountPoint)
        while next < queue.count, found.count < nodeLimit {
            let current = queue[next]
            next += 1
            guard current.level < limit else { continue }
            beforeListing(current)
            guard let names = fileSystem.entries(ofDirectory: mount.directory(forHierarchyPath: current.path))
            else { continue }
            for name in names.sorted() {
                let path = CgroupPath.joined(current.path, name)
                // Gone between listing and stat: a cgroup removed mid-walk, not an error.
                guard let entry = fileSystem.entry(at: mount.directory(forHierarchyPath: path)),
                      entry.isDirectory else { continue }
                let node = CgroupNode(id: entry.inode, path: path, level: current.level + 1)
                found.append(node)
                queue.append(node)
                if found.count >= nodeLimit { break }
            }
        }
        return found
    }

    /// The cgroup at a hierarchy path ("/system.slice/nginx.service"); nil when not in the tree.
    public func node(forPath path: String) -> CgroupNode? {
        let canonical = "/" + CgroupPath.components(of: path).joined(separator: "/")
        return indexByPath[canonical].map { nodes[$0] }
    }

    public func node(forID id: UInt64) -> CgroupNode? {
        indexByID[id].map { nodes[$0] }
    }

    /// Every cgroup whose directory is named `unit` ("nginx.service"): a unit name can occur in
    /// several places (the system manager and each user manager), so callers decide.
    public func nodes(namedUnit unit: String) -> [CgroupNode] {
        nodes.filter { $0.level > 0 && $0.name == unit }
    }
}

