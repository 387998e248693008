// Follows the cgroup2 tree with inotify: systemd creates a cgroup with mkdir and removes it with
// rmdir, and both show up as IN_CREATE / IN_DELETE (with IN_ISDIR) on the parent directory.
// inotify is not recursive, so every directory above `maxLevel` gets a watch of its own, added
// as soon as the directory is seen and before it is listed.
import NetfilterSystem

/// Reports cgroups created and removed under a cgroup2 mount, down to `maxLevel`.
///
/// Non-blocking: poll `descriptor` for readability (with the monitor's other descriptors), then
/// call `readChanges()`. When the kernel's event queue overflowed (IN_Q_OVERFLOW) or a read
/// failed, the tree is walked again and diffed against what was known, so no change is lost —
/// only coalesced. A cgroup renamed (cgroup v2 allows it within its parent) is reported as
/// removed then created, with the same id.
///
/// Not thread-safe: one owner (the monitor's receive thread) reads changes.
public final class CgroupWatcher {
    public let mountPoint: String
    public let maxLevel: Int
    /// The most recent problem that did not stop the watcher (a watch that could not be added,
    /// e.g. fs.inotify.max_user_watches reached); nil when all is well.
    public private(set) var lastError: CgroupError?

    private let inotify: Inotify
    private let mount: CgroupMount
    private let fileSystem: any CgroupFileSystem
    private var nodesByPath: [String: CgroupNode] = [:]
    private var pathByWatch: [Int32: String] = [:]
    private var watchByPath: [String: Int32] = [:]

    private static let watchEvents: InotifyMask = [.create, .delete, .movedFrom, .movedTo, .onlyDirectory, .dontFollow]

    /// Walks the tree and watches it. Throws `.unreadable` when the mount point cannot be read,
    /// `.watchFailed` when inotify cannot be set up or the root cannot be watched.
    public init(mountPoint: String, maxLevel: Int = CgroupTree.defaultMaxLevel,
                fileSystem: any CgroupFileSystem = LocalCgroupFileSystem()) throws(CgroupError) {
        self.mount = CgroupMount(mountPoint: mountPoint)
        self.mountPoint = mount.mountPoint
        self.maxLevel = min(max(maxLevel, 0), CgroupTree.levelLimit)
        self.fileSystem = fileSystem
        do {
            inotify = try Inotify()
        } catch {
            throw CgroupError(.watchFailed, "cannot follow cgroups: \(error)")
        }
        guard let rootEntry = fileSystem.entry(at: self.mountPoint), rootEntry.isDirectory else {
            inotify.close()
            throw CgroupError(.unreadable, "cgroup2 root \(self.mountPoint) does not exist or is not a directory")
        }
        let root = CgroupNode(id: rootEntry.inode, path: "/", level: 0)
        if self.maxLevel > 0 {
            do {
                let watch = try inotify.addWatch(path: self.mountPoint, events: Self.watchEvents)
                pathByWatch[watch] = "/"
                watchByPath["/"] = watch
            } catch {
                inotify.close()
                throw CgroupError(.watchFailed, "cannot watch the cgroup2 root: \(error)")
            }
        }
        nodesByPath["/"] = root
        for node in walk(below: root) { nodesByPath[node.path] = node }
    }

    deinit { inotify.close() }

    /// The descriptor to poll for readability.
    public var descriptor: Int32 { inotify.descriptor }

    /// The cgroups known now (the root included), parents before children.
    public var tree: CgroupTree {
        CgroupTree(mountPoint: mountPoint, maxLevel: maxLevel,
                   nodes: nodesByPath.values.sorted { ($0.level, $0.path) < ($1.level, $1.path) })
    }

    /// The changes since the last call: removals and creations in the order they were seen,
    /// parents created before their children. Empty when nothing happened; never blocks.
    public func readChanges() -> [CgroupChange] {
        var changes: [CgroupChange] = []
        var mustResync = false
        let events: [InotifyEvent]
        do {
            events = try inotify.readEvents()
        } catch {
            lastError = CgroupError(.watchFailed, "reading cgroup events failed (\(error)); walked the tree again")
            return resync()
        }
        for event in events {
            if event.isQueueOverflow {
                mustResync = true
                continue
            }
            let mask = event.events
            if mask.contains(.ignored) {
                // The watched directory is gone; its removal came (or comes) from the parent's watch.
                if let path = pathByWatch.removeValue(forKey: event.watch), watchByPath[path] == event.watch {
                    watchByPath[path] = nil
                }
                continue
            }
            guard mask.contains(.isDirectory), !event.name.isEmpty,
                  let parentPath = pathByWatch[event.watch],
                  let parent = nodesByPath[parentPath] else { continue }
            let path = CgroupPath.joined(parentPath, event.name)
            if !mask.isDisjoint(with: [.delete, .movedFrom]) {
                changes += forget(subtreeAt: path)
            }
            if !mask.isDisjoint(with: [.create, .movedTo]) {
                changes += discover(path: path, parent: parent)
            }
        }
        if mustResync { changes += resync() }
        return changes
    }

    /// Walks the tree again and reports the difference from what was known.
    public func resync() -> [CgroupChange] {
        guard let rootEntry = fileSystem.entry(at: mountPoint), let root = nodesByPath["/"],
              rootEntry.inode == root.id else {
            lastError = CgroupError(.unreadable, "cgroup2 root \(mountPoint) is gone or was replaced")
            return []
        }
        var fresh: [String: CgroupNode] = ["/": root]
        for node in walk(below: root) { fresh[node.path] = node }
        var changes: [CgroupChange] = []
        let gone = nodesByPath.values.filter { fresh[$0.path]?.id != $0.id }
        for node in gone.sorted(by: { $0.level > $1.level }) {
            changes.append(.removed(id: node.id, path: node.path))
            // A path that now holds a new directory already has its new watch from the walk; the
            // old one went with its directory (IN_IGNORED).
            if fresh[node.path] == nil { dropWatch(path: node.path) }
        }
        let new = fresh.values.filter { nodesByPath[$0.path]?.id != $0.id }
        for node in new.sorted(by: { ($0.level, $0.path) < ($1.level, $1.path) }) {
            changes.append(.created(node))
        }
        nodesByPath = fresh
        return changes
    }

    // MARK: - Internals

    /// A new directory: record it and whatever it already holds (it may have filled up before
    /// its watch existed).
    private func discover(path: String, parent: CgroupNode) -> [CgroupChange] {
        guard parent.level < maxLevel, nodesByPath[path] == nil,
              let entry = fileSystem.entry(at: mount.directory(forHierarchyPath: path)),
              entry.isDirectory else { return [] }
        let node = CgroupNode(id: entry.inode, path: path, level: parent.level + 1)
        nodesByPath[path] = node
        var changes: [CgroupChange] = [.created(node)]
        for child in walk(below: node) where nodesByPath[child.path] == nil {
            nodesByPath[child.path] = child
            changes.append(.created(child))
        }
        return changes
    }

    /// A directory went away (or was renamed away): it and anything known below it.
    private func forget(subtreeAt path: String) -> [CgroupChange] {
        let prefix = path + "/"
        let gone = nodesByPath.values.filter { $0.path == path || $0.path.hasPrefix(prefix) }
        var changes: [CgroupChange] = []
        for node in gone.sorted(by: { $0.level > $1.level }) {
            nodesByPath[node.path] = nil
            dropWatch(path: node.path)
            changes.append(.removed(id: node.id, path: node.path))
        }
        return changes
    }

    private func walk(below node: CgroupNode) -> [CgroupNode] {
        CgroupTree.walk(mountPoint: mountPoint, below: node, maxLevel: maxLevel, fileSystem: fileSystem) { directory in
            self.watch(directory)
        }
    }

    /// Watches a directory whose children are within `maxLevel`. A directory that vanished
    /// first is fine (ENOENT); other failures are kept in `lastError` and the walk goes on.
    private func watch(_ node: CgroupNode) {
        guard node.level < maxLevel else { return }
        do {
            let watch = try inotify.addWatch(path: mount.directory(forHierarchyPath: node.path), events: Self.watchEvents)
            if let previous = pathByWatch[watch], previous != node.path { watchByPath[previous] = nil }
            pathByWatch[watch] = node.path
            watchByPath[node.path] = watch
        } catch where error.code == Errno.notFound || error.code == ENOTDIR_CODE {
            return
        } catch {
            lastError = CgroupError(.watchFailed, "cannot watch cgroup \(node.path): \(error); changes below it are missed until the next re-walk")
        }
    }

    /// Forgets a directory's watch. A renamed directory keeps its watch under the new name, so
    /// it is removed explicitly; for a deleted one the kernel already dropped it.
    private func dropWatch(path: String) {
        guard let watch = watchByPath.removeValue(forKey: path) else { return }
        if pathByWatch[watch] == path { pathByWatch[watch] = nil }
        try? inotify.removeWatch(watch)
    }
}

/// ENOTDIR (20 on Linux): a path component is not a directory (replaced between listing and watch).
private let ENOTDIR_CODE: Int32 = 20
