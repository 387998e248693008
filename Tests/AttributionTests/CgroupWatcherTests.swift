import Foundation
import NetfilterSystem
import Testing
@testable import Attribution

@Suite struct CgroupWatcherTests {
    @Test func followsAFixtureTree() throws {
        let root = try TemporaryDirectory("watch")
        defer { root.remove() }
        try root.make("a.slice")
        let watcher = try CgroupWatcher(mountPoint: root.path, maxLevel: 3)
        #expect(watcher.tree.nodes.map(\.path) == ["/", "/a.slice"])
        #expect(watcher.readChanges().isEmpty)

        // A subtree created at once: its deeper parts exist before their parents are watched.
        try root.make("a.slice/b.service/c/too-deep")
        let created = collectChanges(watcher) { $0.createdPaths.count >= 2 }
        #expect(created.createdPaths == ["/a.slice/b.service", "/a.slice/b.service/c"])
        let b = try root.inode("a.slice/b.service")
        #expect(created.first == .created(CgroupNode(id: b, path: "/a.slice/b.service", level: 2)))

        try FileManager.default.removeItem(atPath: root.path + "/a.slice/b.service")
        let removed = collectChanges(watcher) { $0.removedPaths.count >= 2 }
        #expect(removed.removedPaths == ["/a.slice/b.service/c", "/a.slice/b.service"])
        #expect(removed.first == .removed(id: try #require(created.last.flatMap {
            if case .created(let node) = $0 { node.id } else { nil } }), path: "/a.slice/b.service/c"))
        #expect(watcher.tree.nodes.map(\.path) == ["/", "/a.slice"])
    }

    @Test func renameIsRemoveThenCreateWithTheSameID() throws {
        let root = try TemporaryDirectory("rename")
        defer { root.remove() }
        try root.make("x/inner")
        let watcher = try CgroupWatcher(mountPoint: root.path, maxLevel: 4)
        let id = try root.inode("x")
        try FileManager.default.moveItem(atPath: root.path + "/x", toPath: root.path + "/y")
        let changes = collectChanges(watcher) { $0.createdPaths.count >= 2 }
        #expect(changes.removedPaths == ["/x/inner", "/x"])
        #expect(changes.createdPaths == ["/y", "/y/inner"])
        #expect(watcher.tree.node(forPath: "/y")?.id == id)
        // The moved directory is watched under its new name.
        try root.make("y/inner/new")
        #expect(collectChanges(watcher) { !$0.isEmpty }.createdPaths == ["/y/inner/new"])
    }

    /// What an IN_Q_OVERFLOW triggers: a re-walk diffed against the known tree.
    @Test func resyncReportsTheDifference() throws {
        let root = try TemporaryDirectory("resync")
        defer { root.remove() }
        try root.make("old")
        let watcher = try CgroupWatcher(mountPoint: root.path, maxLevel: 2)
        try FileManager.default.removeItem(atPath: root.path + "/old")
        try root.make("new/child")
        let changes = watcher.resync()
        #expect(changes.removedPaths == ["/old"])
        #expect(changes.createdPaths == ["/new", "/new/child"])
        // Events queued for the same changes are not reported twice.
        #expect(watcher.readChanges().isEmpty)
    }

    @Test(.enabled(if: getuid() == 0, "needs root: creates and removes cgroups in the real cgroup2 hierarchy"))
    func followsTheRealCgroup2() throws {
        let mount = try CgroupMount.current()
        let top = "/nfo-test-\(getpid())"
        let child = top + "/child"
        let topDirectory = mount.directory(forHierarchyPath: top)
        let childDirectory = mount.directory(forHierarchyPath: child)
        defer {
            rmdir(childDirectory)
            rmdir(topDirectory)
        }
        let watcher = try CgroupWatcher(mountPoint: mount.mountPoint, maxLevel: 3)
        _ = watcher.readChanges()

        #expect(mkdir(topDirectory, 0o755) == 0)
        #expect(mkdir(childDirectory, 0o755) == 0)
        let created = collectChanges(watcher, seconds: 1) { Set($0.createdPaths).isSuperset(of: [top, child]) }
        #expect(created.createdPaths.filter { $0.hasPrefix(top) } == [top, child])
        let childNode = try #require(watcher.tree.node(forPath: child))
        #expect(childNode.level == 2)
        #expect(childNode.id == (try #require(LocalCgroupFileSystem().entry(at: childDirectory))).inode)

        #expect(rmdir(childDirectory) == 0)
        #expect(rmdir(topDirectory) == 0)
        let removed = collectChanges(watcher, seconds: 1) { Set($0.removedPaths).isSuperset(of: [top, child]) }
        #expect(removed.removedPaths.filter { $0.hasPrefix(top) } == [child, top])
        #expect(removed.contains(.removed(id: childNode.id, path: child)))
        #expect(watcher.tree.node(forPath: top) == nil)
    }
}
