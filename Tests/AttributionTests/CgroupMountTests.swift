import Foundation
import TestSupport
import Testing
@testable import Attribution

@Suite struct CgroupMountTests {
    /// `grep cgroup /proc/self/mountinfo` on the development machine (systemd hybrid layout).
    static let hybrid = """
        25 30 0:23 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
        40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
        41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
        """
    static let unified = """
        24 30 0:22 / /proc rw,nosuid,nodev,noexec,relatime shared:12 - proc proc rw
        28 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
        """
    static let v1Only = """
        31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
        32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
        """
    static let escaped = """
        90 23 0:38 / /tmp/my\\040cgroups\\011x rw,relatime shared:40 master:9 - cgroup2 none rw
        """

    @Test func hybridLayout() throws {
        let mount = try #require(CgroupMount.parse(mountinfo: Self.hybrid))
        #expect(mount.mountPoint == "/sys/fs/cgroup/unified")
        #expect(mount.root == "/")
    }

    @Test func unifiedLayout() throws {
        let mount = try #require(CgroupMount.parse(mountinfo: Self.unified))
        #expect(mount.mountPoint == "/sys/fs/cgroup")
    }

    @Test func noCgroup2() {
        #expect(CgroupMount.parse(mountinfo: Self.v1Only) == nil)
        #expect(CgroupMount.parse(mountinfo: "") == nil)
        #expect(CgroupMount.parse(mountinfo: "garbage\n1 2 3\n - cgroup2\n") == nil)
    }

    @Test func octalEscapesAndOptionalFields() throws {
        let mount = try #require(CgroupMount.parse(mountinfo: Self.escaped))
        #expect(mount.mountPoint == "/tmp/my cgroups\tx")
        #expect(CgroupMount.unescape("a\\134b\\04") == "a\\b\\04")
    }

    @Test func prefersTheMountNftReaches() throws {
        let both = Self.escaped + "\n" + Self.hybrid
        #expect(CgroupMount.parse(mountinfo: both)?.mountPoint == "/sys/fs/cgroup/unified")
    }

    @Test func currentErrors() throws {
        let directory = try TemporaryDirectory("mountinfo")
        defer { directory.remove() }
        let file = directory.path + "/mountinfo"
        try Self.v1Only.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(throws: CgroupError(.noCgroup2Mount,
            "no cgroup2 filesystem is mounted (looked in \(file)); cgroup classification needs cgroup v2")) {
            try CgroupMount.current(mountinfoPath: file)
        }
        let missing = try #require(throws: CgroupError.self) { try CgroupMount.current(mountinfoPath: file + ".missing") }
        #expect(missing.code == .unreadable)
        try Self.hybrid.write(toFile: file, atomically: true, encoding: .utf8)
        #expect(try CgroupMount.current(mountinfoPath: file).mountPoint == "/sys/fs/cgroup/unified")
    }

    @Test func thisMachine() throws {
        let mount = try CgroupMount.current()
        #expect(FileManager.default.fileExists(atPath: mount.mountPoint + "/cgroup.procs"))
    }

    @Test(arguments: [
        // mount point, hierarchy path, nft path, iptables path
        ("/sys/fs/cgroup", "/system.slice/x.service", "system.slice/x.service", "system.slice/x.service"),
        ("/sys/fs/cgroup", "/", ".", "/"),
        ("/sys/fs/cgroup/unified", "/system.slice/x.service", "unified/system.slice/x.service", "system.slice/x.service"),
        ("/sys/fs/cgroup/unified/", "/user.slice", "unified/user.slice", "user.slice"),
        ("/sys/fs/cgroup/unified", "/", "unified", "/"),
        ("/tmp/x", "/system.slice/x.service", "../../../tmp/x/system.slice/x.service", "system.slice/x.service"),
        ("/tmp/x", "/", "../../../tmp/x", "/"),
        ("/sys/fs/cgroupfoo", "/a", "../../../sys/fs/cgroupfoo/a", "a"),
        // Dot-dots never climb out of the mount.
        ("/sys/fs/cgroup", "/a/../../b", "a/b", "a/b"),
    ])
    func pathTranslation(mountPoint: String, path: String, nft: String, iptables: String) {
        let mount = CgroupMount(mountPoint: mountPoint)
        #expect(mount.nftPath(forHierarchyPath: path) == nft)
        #expect(mount.iptablesPath(forHierarchyPath: path) == iptables)
    }

    @Test func normalizedPaths() throws {
        #expect(try CgroupPath.normalized("system.slice/x.service/") == "/system.slice/x.service")
        #expect(try CgroupPath.normalized("//a//b") == "/a/b")
        #expect(try CgroupPath.normalized("/") == "/")
        for bad in ["/a/../b", "./a", "/a/\n", "a\0b"] {
            let error = try #require(throws: CgroupError.self) { try CgroupPath.normalized(bad) }
            #expect(error.code == .invalidPath)
        }
        #expect(CgroupPath.level(of: "/") == 0)
        #expect(CgroupPath.level(of: "/a/b") == 2)
    }

    /// nft resolves paths as stat("/sys/fs/cgroup/" + path): the translation for a cgroup2 view
    /// mounted outside /sys/fs/cgroup must reach the same cgroup.
    @Test(.enabled(if: getuid() == 0, "needs root: mounts cgroup2, creates a cgroup and a network namespace"))
    func nftAcceptsTranslatedPaths() throws {
        let real = try CgroupMount.current()
        let name = "nfo-test-nftpath-\(getpid())"
        let cgroup = real.directory(forHierarchyPath: "/" + name)
        try FileManager.default.createDirectory(atPath: cgroup, withIntermediateDirectories: false)
        defer { rmdir(cgroup) }
        let view = try TemporaryDirectory("cg2view")
        defer { view.remove() }
        #expect(try run(["mount", "-t", "cgroup2", "none", view.path]).status == 0)
        defer { _ = try? run(["umount", view.path]) }
        let namespace = try TestNamespace("cgpath")
        defer { namespace.close() }

        let elsewhere = CgroupMount(mountPoint: view.path)
        // Same hierarchy, same ids.
        #expect(try view.inode(name) == (try #require(LocalCgroupFileSystem().entry(at: cgroup))).inode)
        var rules = "table inet nfo_cgpath {\n chain o {\n  type filter hook output priority 0;\n"
        for mount in [real, elsewhere] {
            rules += "  socket cgroupv2 level 1 \"\(mount.nftPath(forHierarchyPath: "/" + name))\" counter\n"
        }
        rules += " }\n}\n"
        let result = try run(["nsenter", "--net=\(namespace.path)", "nft", "-f", "-"], input: rules)
        #expect(result.status == 0, "\(result.output)\n\(rules)")
        // A path that does not resolve is refused (the check above is meaningful).
        let wrong = rules.replacingOccurrences(of: name, with: name + "-missing")
        #expect(try run(["nsenter", "--net=\(namespace.path)", "nft", "-f", "-"], input: wrong).status != 0)
    }
}

@Suite struct SystemdUnitTests {
    @Test(arguments: [
        ("/system.slice/nginx.service", "nginx.service"),
        ("/user.slice/user-1000.slice/user@1000.service/app.slice/foo.scope", "foo.scope"),
        ("/user.slice/user-1000.slice/user@1000.service/app.slice", "user@1000.service"),
        ("/user.slice/user-1000.slice/session-3.scope", "session-3.scope"),
        ("/system.slice/docker-0123abcd.scope", "docker-0123abcd.scope"),
        ("/machine.slice/libpod-0123abcd.scope", "libpod-0123abcd.scope"),
        ("/machine.slice/libpod-0123abcd.scope/container", "libpod-0123abcd.scope"),
        ("/system.slice/nginx.service/worker", "nginx.service"),
        ("/", nil),
        ("/user.slice", nil),
        ("/user.slice/user-1000.slice", nil),
        ("/nfo-test", nil),
        ("/.service", nil),
    ] as [(String, String?)])
    func unitName(path: String, unit: String?) {
        #expect(SystemdUnit.name(forCgroupPath: path) == unit)
    }

    @Test func isUnitName() {
        #expect(SystemdUnit.isUnitName("nginx.service"))
        #expect(SystemdUnit.isUnitName("session-3.scope"))
        #expect(!SystemdUnit.isUnitName("user.slice"))
        #expect(!SystemdUnit.isUnitName(".scope"))
        #expect(!SystemdUnit.isUnitName("a/b.service"))
        #expect(!SystemdUnit.isUnitName("nginx"))
    }
}
