import Foundation
import Testing
@testable import Attribution

@Suite struct CgroupTreeTests {
    /// A fixture tree: plain directories stand in for cgroups (ids are their inodes), files and a
    /// symlink stand in for control files and must be skipped.
    static func fixture() throws -> TemporaryDirectory {
        let root = try TemporaryDirectory("tree")
        for path in ["system.slice/nginx.service/worker", "system.slice/sshd.service",
                     "user.slice/user-1000.slice/user@1000.service/app.slice/nginx.service"] {
            try root.make(path)
        }
        try "0\n".write(toFile: root.path + "/system.slice/cgroup.procs", atomically: true, encoding: .utf8)
        try FileManager.default.createSymbolicLink(atPath: root.path + "/link.slice",
                                                   withDestinationPath: root.path + "/system.slice")
        return root
    }

    @Test func walk() throws {
        let root = try Self.fixture()
        defer { root.remove() }
        let tree = try CgroupTree(mountPoint: root.path, maxLevel: 8)
        #expect(tree.nodes.map(\.path) == [
            "/", "/system.slice", "/user.slice", "/system.slice/nginx.service", "/system.slice/sshd.service",
            "/user.slice/user-1000.slice", "/system.slice/nginx.service/worker",
            "/user.slice/user-1000.slice/user@1000.service", "/user.slice/user-1000.slice/user@1000.service/app.slice",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/nginx.service",
        ])
        #expect(tree.nodes.first?.level == 0)
        #expect(tree.node(forPath: "/system.slice/nginx.service/worker")?.level == 3)
        for node in tree.nodes {
            #expect(node.id == (try root.inode(String(node.path.dropFirst()))))
            #expect(node.level == CgroupPath.level(of: node.path))
        }
        let sshd = try #require(tree.node(forPath: "system.slice/sshd.service/"))
        #expect(tree.node(forID: sshd.id) == sshd)
        #expect(tree.nodes(namedUnit: "nginx.service").map(\.path) == [
            "/system.slice/nginx.service",
            "/user.slice/user-1000.slice/user@1000.service/app.slice/nginx.service",
        ])
        #expect(tree.node(forPath: "/link.slice") == nil)
        #expect(tree.node(forPath: "/system.slice/cgroup.procs") == nil)
    }

    @Test func maxLevelBoundsTheWalk() throws {
        let root = try Self.fixture()
        defer { root.remove() }
        #expect(try CgroupTree(mountPoint: root.path, maxLevel: 1).nodes.map(\.path) == ["/", "/system.slice", "/user.slice"])
        #expect(try CgroupTree(mountPoint: root.path, maxLevel: 0).nodes.map(\.path) == ["/"])
        #expect(try CgroupTree(mountPoint: root.path, maxLevel: 2).nodes.map(\.level).max() == 2)
    }

    @Test func missingRootThrows() throws {
        let error = try #require(throws: CgroupError.self) { try CgroupTree(mountPoint: "/nonexistent/nfo-cgroup") }
        #expect(error.code == .unreadable)
    }

    /// Removes a directory after its parent was listed and before it is looked at: the walk
    /// must skip it, not fail.
    struct RacingFileSystem: CgroupFileSystem {
        let real = LocalCgroupFileSystem()
        let victim: String

        func entries(ofDirectory path: String) -> [String]? {
            let names = real.entries(ofDirectory: path)
            if path + "/" == (victim as NSString).deletingLastPathComponent + "/" {
                try? FileManager.default.removeItem(atPath: victim)
            }
            return names
        }
        func entry(at path: String) -> CgroupFileEntry? { real.entry(at: path) }
    }

    @Test func directoryVanishingMidWalk() throws {
        let root = try Self.fixture()
        defer { root.remove() }
        let victim = root.path + "/system.slice/nginx.service"
        let tree = try CgroupTree(mountPoint: root.path, fileSystem: RacingFileSystem(victim: victim))
        #expect(!FileManager.default.fileExists(atPath: victim))
        #expect(tree.node(forPath: "/system.slice/nginx.service") == nil)
        #expect(tree.node(forPath: "/system.slice/sshd.service") != nil)
        #expect(tree.node(forPath: "/user.slice/user-1000.slice") != nil)
    }
}

@Suite struct CgroupIndexTests {
    final class Clock: @unchecked Sendable {
        let start = ContinuousClock.now
        var offset = Duration.zero
        var now: ContinuousClock.Instant { start + offset }
    }

    final class Walker: @unchecked Sendable {
        var nodes: [CgroupNode]
        var walks = 0
        init(_ nodes: [CgroupNode]) { self.nodes = nodes }
        func walk() -> [CgroupNode] {
            walks += 1
            return nodes
        }
    }

    static let root = CgroupNode(id: 1, path: "/", level: 0)
    static let nginx = CgroupNode(id: 100, path: "/system.slice/nginx.service", level: 2)

    func makeIndex(_ clock: Clock, _ walker: Walker, capacity: Int = 8) -> CgroupIndex {
        CgroupIndex(nodes: walker.nodes, gracePeriod: .seconds(60), removedCapacity: capacity,
                    now: { clock.now }, walk: { walker.walk() })
    }

    @Test func removedPathsStayForTheGracePeriod() {
        let clock = Clock()
        let walker = Walker([Self.root, Self.nginx])
        var index = makeIndex(clock, walker)
        #expect(index.path(forID: 100) == "/system.slice/nginx.service")
        index.apply(.removed(id: 100, path: "/system.slice/nginx.service"))
        clock.offset = .seconds(59)
        #expect(index.cachedPath(forID: 100) == "/system.slice/nginx.service")
        clock.offset = .seconds(61)
        #expect(index.cachedPath(forID: 100) == nil)
        #expect(index.removedCount == 0)
    }

    @Test func removedPathsAreBounded() {
        let clock = Clock()
        let nodes = (0..<20).map { CgroupNode(id: UInt64(1000 + $0), path: "/c\($0)", level: 1) }
        var index = makeIndex(clock, Walker(nodes), capacity: 8)
        for node in nodes { index.remove(id: node.id) }
        #expect(index.removedCount == 8)
        #expect(index.cachedPath(forID: 1000) == nil)
        #expect(index.cachedPath(forID: 1019) == "/c19")
    }

    @Test func reinsertedIDIsLiveAgain() {
        let clock = Clock()
        var index = makeIndex(clock, Walker([Self.root, Self.nginx]))
        index.remove(id: 100)
        index.insert(Self.nginx)
        clock.offset = .seconds(120)
        #expect(index.cachedPath(forID: 100) == "/system.slice/nginx.service")
        #expect(index.count == 2)
    }

    @Test func missRewalksAtMostOncePerSecond() {
        let clock = Clock()
        let walker = Walker([Self.root])
        var index = makeIndex(clock, walker)
        #expect(index.path(forID: 100) == nil)
        #expect(walker.walks == 1)
        walker.nodes.append(Self.nginx)
        clock.offset = .milliseconds(500)
        #expect(index.path(forID: 100) == nil)
        #expect(walker.walks == 1)
        clock.offset = .milliseconds(1100)
        #expect(index.path(forID: 100) == "/system.slice/nginx.service")
        #expect(walker.walks == 2)
        // A cgroup gone from the walk becomes "removed": still resolvable for a while.
        walker.nodes = [Self.root]
        clock.offset = .seconds(3)
        #expect(index.path(forID: 999) == nil)
        #expect(index.count == 1)
        #expect(index.cachedPath(forID: 100) == "/system.slice/nginx.service")
    }

    @Test func realTree() throws {
        let mount = try CgroupMount.current()
        var index = try CgroupIndex(mountPoint: mount.mountPoint)
        let root = try #require(LocalCgroupFileSystem().entry(at: mount.mountPoint))
        #expect(index.path(forID: root.inode) == "/")
    }
}
