import Testing
@testable import Rules

@Suite struct ParserTests {
    /// Recorded with a process bound to groups 5 and 1000 (copy_range 200, timeout 150).
    static let nflogText = """
            5   5632     0 2   200    150  1
         1000   5632     0 2   200    150  1

        """

    /// Recorded in a fresh namespace with one NFLOG listener (pid 5632).
    static let netlinkText = """
        sk               Eth Pid        Groups   Rmem     Wmem     Dump  Locks    Drops    Inode
        00000000d825a462 12  0          00000000 0        0        0     2        0        13227   
        000000009df34295 12  5632       00000000 0        0        0     2        0        16660   
        0000000032d4f2aa 0   5632       00000000 0        0        0     2        0        562     

        """

    /// `nft list table inet nfowner` after traffic (nft 1.0.6).
    static let listing = """
        table inet nfowner {
        \tcomment "nfowner ruleset sha256=002434bf2e4273eb7821232f054f61ea0e15d794b3037d0eb85e875927ccd668"
        \tchain output {
        \t\ttype filter hook output priority 100; policy accept;
        \t\tmeta skuid { 1000, 1001 } meta skgid 100 counter packets 12 bytes 1008 log prefix "nfowner" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
        \t}
        }

        """

    /// `nft list table inet nfowner` of a ruleset delivering new flows at once (nft 1.0.6): three
    /// logging rules in one chain.
    static let newFlowListing = """
        table inet nfowner {
        \tcomment "nfowner ruleset sha256=7e8915af8c40176bd10cd3f54635b090544b5eddfa43f0886663f57b5e5e8f55"
        \tset new_flows_v4 {
        \t\ttype ipv4_addr . ipv4_addr . inet_proto . inet_service . inet_service
        \t\tsize 65536
        \t\tflags dynamic,timeout
        \t\ttimeout 2s
        \t}

        \tchain output {
        \t\ttype filter hook output priority 100; policy accept;
        \t\tip saddr . ip daddr . meta l4proto . th sport . th dport != @new_flows_v4 add @new_flows_v4 { ip saddr . ip daddr . meta l4proto . th sport . th dport } counter packets 3 bytes 180 log prefix "nfowner" group 5 snaplen 128 queue-threshold 1 accept comment "nfowner log"
        \t\tip6 saddr . ip6 daddr . meta l4proto . th sport . th dport != @new_flows_v6 add @new_flows_v6 { ip6 saddr . ip6 daddr . meta l4proto . th sport . th dport } counter packets 1 bytes 80 log prefix "nfowner" group 5 snaplen 128 queue-threshold 1 accept comment "nfowner log"
        \t\tcounter packets 40 bytes 4000 log prefix "nfowner" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
        \t}
        }

        """

    @Test func countersOfOneChainAreSummed() {
        #expect(StatusParsers.parseRuleCounters(Self.newFlowListing) == [RuleCounters(chain: "output", packets: 44, bytes: 4260)])
        #expect(StatusParsers.parseInstalledHash(Self.newFlowListing) == RendererTests.defaultHash)
        // Cut anywhere: never a trap, and never more than the whole listing counts.
        let bytes = Array(Self.newFlowListing.utf8)
        for end in 0...bytes.count {
            let counters = StatusParsers.parseRuleCounters(String(decoding: bytes[..<end], as: UTF8.self))
            #expect(counters.isEmpty || (counters.count == 1 && counters[0].packets <= 44 && counters[0].bytes <= 4260))
        }
    }

    @Test func parsesNflogInstances() throws {
        let instances = try StatusParsers.parseNflogInstances(Self.nflogText)
        #expect(instances == [
            NflogInstance(group: 5, portID: 5632, queueLength: 0, copyMode: 2, copyRange: 200, flushTimeout: 150, referenceCount: 1),
            NflogInstance(group: 1000, portID: 5632, queueLength: 0, copyMode: 2, copyRange: 200, flushTimeout: 150, referenceCount: 1),
        ])
        #expect(try StatusParsers.parseNflogInstances("") == [])
    }

    @Test(arguments: ["5 1 0 2 200 150", "5 1 0 2 200 150 1 9", "0x5 1 0 2 200 150 1", "70000 1 0 2 200 150 1", "a b c d e f g"])
    func rejectsMalformedNflogLines(line: String) {
        let error = #expect(throws: RulesError.self) { try StatusParsers.parseNflogInstances(line) }
        #expect(error?.code == .unexpectedOutput)
    }

    @Test func parsesNetlinkSockets() throws {
        let sockets = try StatusParsers.parseNetlinkSockets(Self.netlinkText)
        #expect(sockets == [
            NetlinkSocketEntry(netlinkProtocol: 12, portID: 0, inode: 13227),
            NetlinkSocketEntry(netlinkProtocol: 12, portID: 5632, inode: 16660),
            NetlinkSocketEntry(netlinkProtocol: 0, portID: 5632, inode: 562),
        ])
        #expect(throws: RulesError.self) { try StatusParsers.parseNetlinkSockets("00 x y z") }
    }

    @Test func parsesCountersAndHash() {
        #expect(StatusParsers.parseRuleCounters(Self.listing) == [RuleCounters(chain: "output", packets: 12, bytes: 1008)])
        // A table installed before new flows were delivered at once: the old default's hash.
        #expect(StatusParsers.parseInstalledHash(Self.listing)
                == "002434bf2e4273eb7821232f054f61ea0e15d794b3037d0eb85e875927ccd668")
        #expect(StatusParsers.parseInstalledHash("table inet nfowner {\n}\n") == nil)
        #expect(StatusParsers.parseInstalledHash("\tcomment \"nfowner ruleset sha256=abc\"") == nil)
        // A rule without our comment is someone else's; a truncated counter is skipped, never a trap.
        #expect(StatusParsers.parseRuleCounters("chain output {\ncounter packets 1 bytes 2\n}") == [])
        #expect(StatusParsers.parseRuleCounters("counter packets comment \"nfowner log\"") == [])
    }

    /// Every prefix of every recording (a file read while the kernel was writing it, a listing cut short):
    /// no trap, and each parser either reads what the complete lines say, or throws `.unexpectedOutput`.
    @Test func everyPrefixOfTheRecordingsIsSafe() {
        for text in [Self.nflogText, Self.netlinkText, Self.listing] {
            let fullCounters = StatusParsers.parseRuleCounters(text)
            let fullHash = StatusParsers.parseInstalledHash(text)
            let bytes = Array(text.utf8)
            for end in 0...bytes.count {
                let prefix = String(decoding: bytes[..<end], as: UTF8.self)
                Self.expectPrefixResult(prefix, StatusParsers.parseNflogInstances)
                Self.expectPrefixResult(prefix, StatusParsers.parseNetlinkSockets)
                // Our rule's comment ends its line, so a cut rule is not ours yet: all counters or none.
                let counters = StatusParsers.parseRuleCounters(prefix)
                #expect(counters.isEmpty || counters == fullCounters, "prefix \(end) of \(text.prefix(20))…")
                // The hash is read only when all 64 digits and the closing quote are there.
                let hash = StatusParsers.parseInstalledHash(prefix)
                #expect(hash == nil || hash == fullHash, "prefix \(end) of \(text.prefix(20))…")
            }
        }
    }

    /// What a line parser must give for a prefix: the complete lines parse as they do alone, and the cut
    /// last line adds at most one entry; or the parse throws `.unexpectedOutput` (a cut or foreign line).
    static func expectPrefixResult<Entry: Equatable>(_ prefix: String,
                                                     _ parse: (String) throws(RulesError) -> [Entry]) {
        let completeLines = String(prefix[..<(prefix.lastIndex(of: "\n").map(prefix.index(after:)) ?? prefix.startIndex)])
        let entries: [Entry]
        do throws(RulesError) {
            entries = try parse(prefix)
        } catch {
            #expect(error.code == .unexpectedOutput, "\(prefix): \(error)")
            return
        }
        // The prefix parsed, so each of its lines did: its complete lines give the same entries or one fewer.
        do throws(RulesError) {
            let complete = try parse(completeLines)
            #expect(entries.count == complete.count || entries.count == complete.count + 1, "\(prefix)")
            #expect(Array(entries.prefix(complete.count)) == complete, "\(prefix)")
        } catch {
            Issue.record("the complete lines of a prefix that parsed did not: \(error)")
        }
    }

    @Test func statusRendersAllForms() {
        let status = RulesStatus(
            tableName: "nfowner", netns: "ns1", installed: true, installedHash: "aa", expectedHash: "aa",
            counters: [RuleCounters(chain: "output", packets: 3, bytes: 180)], group: 5,
            listener: NflogInstance(group: 5, portID: 42, queueLength: 1, copyMode: 2, copyRange: 128,
                                    flushTimeout: 100, referenceCount: 1),
            listenerProcesses: [NflogHolder(pid: 42, command: "nfowner \"x\"")])
        #expect(status.current)
        #expect(status.description.contains("installed, current"))
        #expect(status.description.contains("pid 42 (nfowner \"x\")"))
        #expect(status.keyValueText.contains("state=current\n"))
        #expect(status.keyValueText.contains("packets=3\n"))
        #expect(status.json.contains("\"command\":\"nfowner \\\"x\\\"\""))
        #expect(status.json.hasPrefix("{\"table\":\"nfowner\""))

        var stale = status
        stale.installedHash = "bb"
        #expect(!stale.current)
        #expect(stale.state == "different")
        var absent = status
        absent.installed = false
        absent.listener = nil
        #expect(absent.description.contains("not installed"))
        #expect(absent.description.contains("no listener"))
        #expect(absent.json.contains("\"listener\":null"))

        // First packets on a group of their own: a line, two keys and two JSON fields of its own.
        #expect(!status.description.contains("first packet"))
        #expect(!status.keyValueText.contains("new_flow_group"))
        var newFlows = status
        newFlows.newFlowGroup = 6
        #expect(newFlows.description.hasSuffix(
            "NFLOG group 6 (each flow's first packet): no listener (logged packets are discarded; start `nfowner monitor`)"))
        #expect(newFlows.keyValueText.contains("new_flow_group=6\nnew_flow_listener_pids=\n"))
        #expect(newFlows.json.contains(",\"new_flow_group\":6,\"new_flow_listener\":null,\"installer\":"))
        newFlows.newFlowListener = NflogInstance(group: 6, portID: 43, queueLength: 0, copyMode: 2, copyRange: 128,
                                                 flushTimeout: 10, referenceCount: 1)
        newFlows.newFlowListenerProcesses = [NflogHolder(pid: 42, command: "nfowner")]
        #expect(newFlows.description.contains("NFLOG group 6 (each flow's first packet): bound by pid 42 (nfowner)"))
        #expect(newFlows.keyValueText.contains("new_flow_listener_pids=42\n"))
        #expect(newFlows.json.contains("\"new_flow_listener\":{\"portid\":43,"))
    }

    @Test func namespaceNamesAreChecked() {
        for name in ["", ".", "..", "a/b", "../etc", "nfo-does-not-exist-\(UInt32.random(in: 0...UInt32.max))"] {
            let error = #expect(throws: RulesError.self) { try NftRunner.namespacePath(name) }
            #expect(error?.code == .namespaceNotFound)
        }
    }

    @Test func missingNftIsExplained() {
        let error = #expect(throws: RulesError.self) {
            try NftRunner(nftPath: "/nonexistent/nft").listTable(name: "nfowner")
        }
        #expect(error?.code == .nftNotFound)
        #expect(error?.reason.contains("apt-get install nftables") == true)
    }
}

@Suite struct ClassifyTests {
    @Test func nftFailuresNameTheFix() {
        let notRoot = NftRunner.classify(SubprocessResult(status: 1, stdout: "", stderr:
            "Operation not permitted (you must be root)\nnetlink: Error: cache initialization failed: Operation not permitted\n"),
            doing: "list table inet nfowner")
        #expect(notRoot.code == .permissionDenied)
        #expect(notRoot.reason.contains("run as root"))
        let noKernel = NftRunner.classify(SubprocessResult(status: 1, stdout: "", stderr:
            "netlink: Error: cache initialization failed: Protocol not supported\n"), doing: "apply the ruleset")
        #expect(noKernel.code == .kernelUnsupported)
        let other = NftRunner.classify(SubprocessResult(status: 1, stdout: "", stderr: "Error: syntax error\n"),
                                       doing: "apply the ruleset")
        #expect(other.code == .nftFailed)
        #expect(other.reason.contains("syntax error"))
    }
}
