// Cgroup classification against the real kernel: cgroups created under the real cgroup2 root,
// traffic sent from processes moved into them, inside a namespace each test creates.

import Foundation
import TestSupport
import Testing
@testable import Rules

/// A scratch cgroup tree `nfo-rt-<pid>-<n>` under the cgroup2 mount; `close()` removes it
/// (the processes the tests put in it have exited by then).
struct TestCgroups {
    let mount: String        // e.g. /sys/fs/cgroup/unified
    let nftPrefix: String    // what nft needs before the hierarchy path, e.g. "unified/"
    let top: String          // hierarchy path of the scratch root, e.g. "/nfo-rt-123-4"

    init() throws {
        let info = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        let line = try #require(info.split(separator: "\n").first { $0.contains(" - cgroup2 ") })
        let mountPoint = String(try #require(line.split(separator: " ").dropFirst(4).first))
        try #require(mountPoint == "/sys/fs/cgroup" || mountPoint.hasPrefix("/sys/fs/cgroup/"))
        mount = mountPoint
        nftPrefix = mountPoint == "/sys/fs/cgroup" ? "" : String(mountPoint.dropFirst("/sys/fs/cgroup/".count)) + "/"
        top = "/nfo-rt-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    }

    /// Creates `top + relative` and returns its classifier.
    func make(_ relative: String) throws -> CgroupClassifier {
        let hierarchy = top + relative
        try FileManager.default.createDirectory(atPath: mount + hierarchy, withIntermediateDirectories: true)
        return try classifier(hierarchy)
    }

    func classifier(_ hierarchy: String) throws -> CgroupClassifier {
        var info = stat()
        try #require(stat(mount + hierarchy, &info) == 0)
        return CgroupClassifier(id: UInt64(info.st_ino), level: hierarchy.split(separator: "/").count,
                                nftPath: nftPrefix + hierarchy.dropFirst(), hierarchyPath: hierarchy)
    }

    func rmdir(_ cgroup: CgroupClassifier) { _ = Foundation.rmdir(mount + cgroup.hierarchyPath) }

    /// Removes the tree, deepest first.
    func close() {
        let root = mount + top
        // Only directories can be removed in cgroupfs (its files go with them); rmdir on a file fails harmlessly.
        let all = FileManager.default.subpaths(atPath: root) ?? []
        for path in all.sorted(by: { $0.count > $1.count }) { _ = Foundation.rmdir(root + "/" + path) }
        _ = Foundation.rmdir(root)
    }

    /// Runs one UDP send to 127.0.0.1:9 from a process in `cgroup`, inside namespace `ns`; waits for it.
    func sendUDP(from cgroup: CgroupClassifier, ns: TestNamespace, port: Int = 9) throws {
        let script = "echo $$ > \(mount + cgroup.hierarchyPath)/cgroup.procs && exec /usr/bin/nsenter --net=/run/netns/\(ns.name) "
            + "/usr/bin/python3 -c 'import socket; socket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b\"hello\\n\", (\"127.0.0.1\", \(port)))'"
        let result = try Subprocess.run("/bin/sh", ["-c", script])
        try #require(result.status == 0, "\(result.stderr)")
    }
}

@Suite(.serialized, .enabled(if: getuid() == 0, "needs root: creates cgroups, network namespaces, nftables and iptables rules"))
struct CgroupKernelTests {
    static func counter(_ listing: String, chain: String) -> UInt64? {
        StatusParsers.parseRuleCounters(listing).first { $0.chain == chain }?.packets
    }

    @Test func nftClassifiesByDeepestCgroupAndUpdatesAtRuntime() throws {
        let ns = try TestNamespace("rulescg")
        defer { ns.close() }
        let cgroups = try TestCgroups()
        defer { cgroups.close() }
        let a = try cgroups.make("/a")
        let b = try cgroups.make("/a/b")
        let runner = NftRunner(netns: ns.name)
        // Another table's chain after ours: our `accept` must not hide the packet from it.
        try runner.apply(script: "table inet other {\n\tchain c {\n\t\ttype filter hook output priority 200; policy accept;\n\t\tudp dport 9 counter\n\t}\n}\n")
        let spec = RulesetSpec(hooks: [.output, .input], cgroups: [a, b], cgroupLevels: [2, 3, 4])
        #expect(try runner.installSkippingVanished(spec) == [])
        try cgroups.sendUDP(from: b, ns: ns)
        try cgroups.sendUDP(from: a, ns: ns)
        var listing = try #require(try runner.listTable(name: "nfowner"))
        // Per send: the UDP datagram out and the ICMP port-unreachable coming back in are both the
        // sender's socket (input looks the ICMP error's inner header up), so its chain counts 2
        // (the deepest cgroup only: b's packets are not counted for a). The ICMP error going out
        // and the UDP datagram coming in (no listener on port 9) have no socket: the fallback.
        #expect(Self.counter(listing, chain: b.chainName) == 2)
        #expect(Self.counter(listing, chain: a.chainName) == 2)
        #expect(Self.counter(listing, chain: Ruleset.classifyChainName) == 4)
        #expect(try runner.listRuleset().contains("udp dport 9 counter packets 2 bytes"))

        // Add one at run time (and a vanished one, which is skipped, not fatal).
        let c = try cgroups.make("/a/b/c")
        let gone = try cgroups.make("/gone")
        cgroups.rmdir(gone)
        #expect(try runner.addCgroups([c, gone], spec: spec) == [gone])
        try cgroups.sendUDP(from: c, ns: ns)
        listing = try #require(try runner.listTable(name: "nfowner"))
        #expect(Self.counter(listing, chain: c.chainName) == 2)
        #expect(Self.counter(listing, chain: b.chainName) == 2)

        // Remove b after its directory is gone (c must go first: a cgroup with children cannot be removed).
        cgroups.rmdir(c)
        cgroups.rmdir(b)
        #expect(try runner.removeCgroups([b], keeping: [a, c], spec: spec) == [c])  // c vanished too
        listing = try #require(try runner.listTable(name: "nfowner"))
        #expect(!listing.contains("chain \(b.chainName) "))
        #expect(!listing.contains("chain \(c.chainName) "))
        #expect(listing.contains("chain \(a.chainName) "))
        try cgroups.sendUDP(from: a, ns: ns)
        listing = try #require(try runner.listTable(name: "nfowner"))
        #expect(Self.counter(listing, chain: a.chainName) == 4)
        #expect(try runner.remove(spec))
    }

    @Test func iptablesClassifiesAndLeavesOtherChainsAlone() throws {
        let ns = try TestNamespace("rulescg")
        defer { ns.close() }
        let cgroups = try TestCgroups()
        defer { cgroups.close() }
        let a = try cgroups.make("/a")
        let b = try cgroups.make("/a/b")
        let ipt = { (args: [String]) throws -> SubprocessResult in
            try Subprocess.run("/usr/bin/nsenter", ["--net=/run/netns/\(ns.name)", "--"] + args)
        }
        _ = try ipt(["iptables", "-A", "OUTPUT", "-p", "tcp", "--dport", "22", "-j", "ACCEPT"])
        _ = try ipt(["iptables", "-N", "USERCH"])
        _ = try ipt(["iptables", "-A", "USERCH", "-s", "10.1.2.3", "-j", "RETURN"])
        let save = { () throws -> String in
            try ipt(["iptables-save", "-c"]).stdout.split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
        }
        let before = try save()

        let runner = IptablesRunner(netns: ns.name)
        let spec = RulesetSpec(cgroups: [a, b])
        try runner.install(spec)
        try runner.install(spec)  // idempotent: chains emptied and refilled, one jump
        try cgroups.sendUDP(from: b, ns: ns)
        let status = try #require(try runner.status(spec).first { $0.family == .ipv4 })
        #expect(status.installed)
        #expect(status.jumps == ["OUTPUT"])
        let logged = status.counters.filter { $0.rule.contains("NFLOG") }
        #expect(logged.map(\.packets) == [1, 0, 1])  // b's rule, a's rule, fallback (the ICMP error)
        #expect(logged.first?.rule.contains("nfowner cg=\(b.id)") == true)

        #expect(try runner.remove())
        #expect(try save() == before)
        #expect(try runner.remove() == false)
    }
}
