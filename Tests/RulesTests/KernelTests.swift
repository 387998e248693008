// Against the real kernel, inside a network namespace each test creates and always deletes.

import Foundation
import TestSupport
import Testing
@testable import Rules

extension TestNamespace {
    /// Sends one UDP datagram to 127.0.0.1:9 from inside the namespace (bash's /dev/udp).
    func sendUDP() throws {
        try exec(["/bin/bash", "-c", "echo hello > /dev/udp/127.0.0.1/9"]).check("send UDP in \(name)")
    }
}

@Suite(.serialized, .enabled(if: getuid() == 0, "needs root: creates network namespaces and nftables tables"))
struct KernelTests {
    static let unrelated = """
        table ip other {
        \tchain c {
        \t\ttype filter hook output priority 0; policy accept;
        \t\tcounter
        \t}
        }
        table inet keepme {
        \tset s {
        \t\ttype ipv4_addr
        \t\telements = { 10.0.0.1, 10.0.0.2 }
        \t}
        }

        """

    @Test func installStatusRemoveLeavesOtherTablesAlone() throws {
        let ns = try TestNamespace("rules")
        defer { ns.close() }
        let runner = NftRunner(netns: ns.name)
        try runner.apply(script: Self.unrelated)
        let before = try runner.listRuleset()
        #expect(before.contains("table inet keepme"))

        let spec = RulesetSpec(uids: [0, 1000], gids: [0])
        #expect(try runner.status(spec).installed == false)
        try runner.install(spec)
        try runner.install(spec)  // replacing is fine
        let listing = try #require(try runner.listTable(name: "nfowner"))
        #expect(listing.contains("meta skuid { 0, 1000 } meta skgid 0 counter packets 0 bytes 0 log prefix \"nfowner\" group 5 snaplen 128 queue-threshold 64 comment \"nfowner log\""))

        // No traffic in this test: the unrelated chain's counter must stay as it was.
        let status = try runner.status(spec)
        #expect(status.installed)
        #expect(status.current)
        #expect(status.counters == [RuleCounters(chain: "output", packets: 0, bytes: 0)])
        #expect(status.listener == nil)
        #expect(try runner.status(RulesetSpec(uids: [0])).current == false)

        // Our table alone was added: the ruleset minus ours is exactly `before`.
        let ours = try #require(try runner.listTable(name: "nfowner"))
        let during = try runner.listRuleset()
        #expect(during.contains(ours))
        #expect(during.replacingOccurrences(of: ours, with: "") == before)

        #expect(try runner.remove(spec) == true)
        #expect(try runner.listRuleset() == before)
        #expect(try runner.remove(spec) == false)  // removing twice is not an error
        #expect(try runner.listRuleset() == before)
    }

    @Test func countersCountLoggedPackets() throws {
        let ns = try TestNamespace("rules")
        defer { ns.close() }
        let runner = NftRunner(netns: ns.name)
        try runner.install(RulesetSpec())
        try runner.install(RulesetSpec(uids: [12345]))  // matches nothing we send
        try ns.sendUDP()
        #expect(try runner.status(RulesetSpec(uids: [12345])).totalPackets == 0)
        try runner.install(RulesetSpec(uids: [0]))
        try ns.sendUDP()
        try ns.sendUDP()
        let status = try runner.status(RulesetSpec(uids: [0]))
        #expect(status.current)
        #expect(status.totalPackets == 2)
        #expect(status.totalBytes == 2 * 34)  // 20 IPv4 + 8 UDP + "hello\n"
    }

    @Test func failedReplaceKeepsTheOldTable() throws {
        let ns = try TestNamespace("rules")
        defer { ns.close() }
        let runner = NftRunner(netns: ns.name)
        let old = RulesetSpec(group: 9)
        try runner.install(old)
        // The new definition is fine, but the batch's last rule is one nft accepts and the kernel
        // refuses (`socket` is not allowed in postrouting: EOPNOTSUPP), after the delete and the
        // new table were already in the batch. The kernel must abort all of it.
        let bad = try NftScriptRenderer.install(RulesetSpec(group: 10))
            + "add chain inet nfowner post { type filter hook postrouting priority 0; }\n"
            + "add rule inet nfowner post socket transparent 1 counter\n"
        let error = #expect(throws: RulesError.self) { try runner.apply(script: bad) }
        #expect(error?.reason.contains("Could not process rule") == true)
        let status = try runner.status(old)
        #expect(status.current)
    }

    @Test func checkValidatesWithoutCommitting() throws {
        let ns = try TestNamespace("rules")
        defer { ns.close() }
        let runner = NftRunner(netns: ns.name)
        try runner.probeLogSupport()
        try runner.check(script: try NftScriptRenderer.install(RulesetSpec()))
        #expect(try runner.listTable(name: "nfowner") == nil)
        let error = #expect(throws: RulesError.self) {
            try runner.check(script: "table inet nfowner {\n\tchain c {\n\t\ttype filter hook output priority 0;\n\t\tjump nowhere\n\t}\n}\n")
        }
        #expect(error?.code == .nftFailed)
    }

    @Test func statusFindsTheListeningProcess() throws {
        guard let python = Subprocess.locate("python3", candidates: ["/usr/bin/python3"]) else { return }
        let ns = try TestNamespace("rules")
        defer { ns.close() }
        let script = FileManager.default.temporaryDirectory.appendingPathComponent("nfo-bind-\(getpid()).py")
        try Self.binder.write(to: script, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(at: script) }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/nsenter")
        process.arguments = ["--net=/run/netns/\(ns.name)", "--", python, script.path, "5"]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        defer { kill(process.processIdentifier, SIGKILL); process.waitUntilExit() }
        // The binder prints its pid once it is bound.
        let line = String(decoding: out.fileHandleForReading.availableDataOrLine(), as: UTF8.self)
        let pid = try #require(Int32(line.trimmingCharacters(in: .whitespacesAndNewlines)))

        let status = try NftRunner(netns: ns.name).status(RulesetSpec())
        let listener = try #require(status.listener)
        #expect(listener.group == 5)
        #expect(listener.copyRange == 200)
        #expect(status.listenerProcesses.map(\.pid) == [pid])
        #expect(status.description.contains("pid \(pid)"))
    }

    /// Binds NFLOG groups (argv) on one NETLINK_NETFILTER socket and prints its pid.
    static let binder = """
        import socket, struct, sys, os, time
        s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 12)
        s.bind((0, 0))
        def attr(t, data):
            l = 4 + len(data)
            return struct.pack("HH", l, t) + data + b"\\0" * ((4 - l % 4) % 4)
        for g in map(int, sys.argv[1:]):
            body = struct.pack("!BBH", 0, 0, g) + attr(1, b"\\1\\0\\0\\0") + attr(2, struct.pack("!IBB", 200, 2, 0) + b"\\0\\0")
            s.send(struct.pack("IHHII", 16 + len(body), (4 << 8) | 1, 1 | 4, 1, 0) + body)
            s.recv(4096)
        print(os.getpid(), flush=True)
        time.sleep(60)

        """
}

extension FileHandle {
    /// Reads until the first newline (or end of file).
    fileprivate func availableDataOrLine() -> Data {
        var data = Data()
        while true {
            let chunk = readData(ofLength: 1)
            if chunk.isEmpty || chunk == Data([0x0a]) { return data }
            data.append(chunk)
        }
    }
}
