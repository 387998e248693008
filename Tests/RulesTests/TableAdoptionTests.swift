import Foundation
import Testing
@testable import Rules

/// The table comment (who installed the table), the adopt/remove/refuse decision, and what a
/// monitor reads from an installed table: all pure, no kernel.
@Suite struct TableAdoptionTests {
    static let hash = RendererTests.defaultHash
    static let stamp = ProcessStamp(pid: 812, startTicks: 1_234_567)

    // MARK: comment rendering

    @Test func commentFormats() {
        #expect(TableComment(hash: Self.hash, installer: nil).text == "nfowner ruleset sha256=\(Self.hash)")
        #expect(TableComment(hash: Self.hash, installer: .rulesInstall).text
                == "nfowner ruleset sha256=\(Self.hash) by=rules-install")
        #expect(TableComment(hash: Self.hash, installer: .monitor(Self.stamp)).text
                == "nfowner ruleset sha256=\(Self.hash) by=monitor pid=812 start=1234567")
        #expect(TableComment(hash: Self.hash, installer: .keptMonitor).text
                == "nfowner ruleset sha256=\(Self.hash) by=monitor-keep-rules")
    }

    @Test func theInstallerIsInTheCommentButNotInTheHash() throws {
        let script = try NftScriptRenderer.install(RulesetSpec(), installer: .monitor(Self.stamp))
        #expect(script.contains("\tcomment \"nfowner ruleset sha256=\(Self.hash) by=monitor pid=812 start=1234567\"\n"))
        // Without an installer: exactly the format before installers were recorded.
        #expect(try NftScriptRenderer.install(RulesetSpec()).contains("\tcomment \"nfowner ruleset sha256=\(Self.hash)\"\n"))
        #expect(try NftScriptRenderer.contentHash(RulesetSpec()) == Self.hash)
    }

    /// The longest pid (PID_MAX_LIMIT, 7 digits) with an 11-digit start time is 128 bytes, what
    /// nft accepts; one digit more is refused, never cut.
    @Test func theLongestCommentFits() throws {
        let longest = TableInstaller.monitor(ProcessStamp(pid: 4_194_304, startTicks: 99_999_999_999))
        #expect(TableComment(hash: Self.hash, installer: longest).text.utf8.count == NftText.maxCommentBytes)
        _ = try NftScriptRenderer.install(RulesetSpec(), installer: longest)
        let tooLong = TableInstaller.monitor(ProcessStamp(pid: 4_194_304, startTicks: 999_999_999_999))
        let error = #expect(throws: RulesError.self) { try NftScriptRenderer.install(RulesetSpec(), installer: tooLong) }
        #expect(error?.code == .unsafeText)
    }

    // MARK: comment parsing

    @Test func parsesOldAndNewComments() {
        for installer: TableInstaller? in [nil, .rulesInstall, .monitor(Self.stamp), .keptMonitor, .unrecognized("daemon")] {
            let comment = TableComment(hash: Self.hash, installer: installer)
            #expect(TableComment.parse(comment.text) == comment)
        }
        // Words this version does not know are skipped; the first `by=` wins.
        #expect(TableComment.parse("nfowner ruleset sha256=\(Self.hash) by=monitor flow=1 pid=812 start=1234567 by=x")?.installer
                == .monitor(Self.stamp))
    }

    @Test func malformedCommentsDoNotTrap() {
        let prefix = "nfowner ruleset sha256="
        let notOurs = ["", "nfowner", prefix, prefix + "abc", prefix + Self.hash + "x", prefix + Self.hash + "\t by=monitor",
                       "other " + prefix + Self.hash, prefix + String(Self.hash.dropLast()) + "é"]
        for text in notOurs { #expect(TableComment.parse(text) == nil, "\(text)") }
        let unrecognizedMonitor = ["by=monitor", "by=monitor pid=812", "by=monitor start=1", "by=monitor pid=x start=1",
                                   "by=monitor pid=-1 start=1", "by=monitor pid=0 start=1", "by=monitor pid=812 start=-1",
                                   "by=monitor pid=99999999999 start=1", "by=monitor pid=812 start=99999999999999999999999"]
        for words in unrecognizedMonitor {
            #expect(TableComment.parse(prefix + Self.hash + " " + words)?.installer == .unrecognized("monitor"), "\(words)")
        }
        #expect(TableComment.parse(prefix + Self.hash + " by=")?.installer == .unrecognized(""))
        #expect(TableComment.parse(prefix + Self.hash + " =x pid")?.installer == nil)
        // Every prefix of a full comment: nil or the full comment's hash, never a trap.
        let full = TableComment(hash: Self.hash, installer: .monitor(Self.stamp)).text
        for end in 0...full.utf8.count {
            let cut = String(decoding: Array(full.utf8)[..<end], as: UTF8.self)
            let parsed = TableComment.parse(cut)
            #expect(parsed == nil || parsed?.hash == Self.hash)
        }
    }

    @Test func findsTheCommentInAListing() {
        let text = TableComment(hash: Self.hash, installer: .monitor(Self.stamp)).text
        let listing = "table inet nfowner {\n\tcomment \"\(text)\"\n\tchain output {\n\t}\n}\n"
        #expect(TableComment.find(inListing: listing)?.installer == .monitor(Self.stamp))
        #expect(StatusParsers.parseInstalledHash(listing) == Self.hash)
        // Cut before the closing quote: not read.
        #expect(TableComment.find(inListing: "\tcomment \"\(text)") == nil)
        #expect(TableComment.find(inListing: "\tcomment \"\(text)\" x") == nil)
    }

    @Test func readsTheStartTimeFromProcStat() {
        // Field 22, counted after the last ')': the command name may hold spaces and parentheses.
        let stat = "812 (a b) (c)) S 1 812 812 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 1234567 10000 200 18446744073709551615 0\n"
        #expect(ProcessStamp.startTicks(fromStat: stat) == 1_234_567)
        #expect(ProcessStamp.startTicks(fromStat: "812 (x) S 1 2 3") == nil)
        #expect(ProcessStamp.startTicks(fromStat: "") == nil)
        #expect(ProcessStamp.startTicks(fromStat: "no parenthesis 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22") == nil)
        let me = ProcessStamp.current()
        #expect(me?.pid == getpid())
        #expect(me?.isRunning() == true)
        if let me { #expect(!ProcessStamp(pid: me.pid, startTicks: me.startTicks + 1).isRunning()) }
    }

    // MARK: the decision

    @Test func classifiesTheHolder() {
        let me = ProcessStamp(pid: 900, startTicks: 5)
        func holder(_ installer: TableInstaller?, running: Bool = false) -> TableHolder {
            TableHolder.classify(TableComment(hash: Self.hash, installer: installer), me: me, isRunning: { _ in running })
        }
        #expect(holder(nil) == .rulesInstall)
        #expect(holder(.rulesInstall) == .rulesInstall)
        #expect(holder(.keptMonitor) == .keptMonitor)
        #expect(holder(.unrecognized("daemon")) == .unrecognized("daemon"))
        #expect(holder(.monitor(me), running: true) == .thisRun)
        #expect(holder(.monitor(Self.stamp), running: true) == .runningMonitor(Self.stamp))
        #expect(holder(.monitor(Self.stamp), running: false) == .exitedMonitor(Self.stamp))
        // Same pid as this process but another start time: an earlier process, reused pid.
        let reused = ProcessStamp(pid: 900, startTicks: 4)
        #expect(holder(.monitor(reused)) == .exitedMonitor(reused))
        #expect(TableHolder.classify(nil, me: me, isRunning: { _ in true }) == .notNfowner)
    }

    @Test func decides() {
        struct Case { var holder: TableHolder; var keep: Bool; var uses: Bool; var follows: Bool; var removes: Bool }
        let cases: [Case] = [
            Case(holder: .thisRun, keep: false, uses: true, follows: true, removes: true),
            Case(holder: .thisRun, keep: true, uses: true, follows: true, removes: false),
            Case(holder: .rulesInstall, keep: false, uses: true, follows: true, removes: false),
            Case(holder: .keptMonitor, keep: false, uses: true, follows: true, removes: false),
            Case(holder: .exitedMonitor(Self.stamp), keep: false, uses: true, follows: true, removes: true),
            Case(holder: .exitedMonitor(Self.stamp), keep: true, uses: true, follows: true, removes: false),
            Case(holder: .runningMonitor(Self.stamp), keep: false, uses: false, follows: false, removes: false),
            Case(holder: .unrecognized("daemon"), keep: false, uses: true, follows: true, removes: false),
            Case(holder: .notNfowner, keep: false, uses: true, follows: false, removes: false),
        ]
        for test in cases {
            let decision = TableAdoption.decide(test.holder, keepOnExit: test.keep)
            #expect(decision.uses == test.uses, "\(test.holder)")
            #expect(decision.follows == test.follows, "\(test.holder)")
            #expect(decision.removesAtExit == test.removes, "\(test.holder)")
            #expect((decision.startLine(table: "t", following: "f") == nil) == !test.uses)
            #expect((decision.refusal(table: "t", command: nil) == nil) == test.uses)
        }
    }

    @Test func startLinesAndRefusal() {
        let table = "table inet nfowner"
        #expect(TableAdoption.decide(.exitedMonitor(Self.stamp), keepOnExit: false)
                    .startLine(table: table, following: "following cgroups")
                == "adopted table inet nfowner left by monitor pid 812 (not running); following cgroups; it is removed on exit")
        #expect(TableAdoption.decide(.rulesInstall, keepOnExit: false).startLine(table: table, following: "following cgroups")
                == "using table inet nfowner installed by `nfowner rules install`; following cgroups; it stays installed")
        #expect(TableAdoption.decide(.runningMonitor(Self.stamp), keepOnExit: false).refusal(table: table, command: "nfowner")
                == "cannot use table inet nfowner: another monitor still running holds it (pid 812 nfowner); it follows "
                + "cgroups in the table and removes it when it exits. Stop that monitor first (kill 812), then start this one")
    }

    // MARK: the installed table

    static let terse = """
        table inet nfowner {
        \tcomment "nfowner ruleset sha256=\(hash) by=rules-install"
        \tmap cgroups_l2 {
        \t\ttypeof socket cgroupv2 level 0 : verdict
        \t}

        \tmap cgroups_l1 {
        \t\ttypeof socket cgroupv2 level 0 : verdict
        \t}

        \tchain cg_614 {
        \t\tcounter packets 1 bytes 34 log prefix "nfowner cg=614" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
        \t\taccept
        \t}

        \tchain classify {
        \t\tsocket cgroupv2 level 2 vmap @cgroups_l2
        \t\tsocket cgroupv2 level 1 vmap @cgroups_l1
        \t\tcounter packets 1 bytes 62 log prefix "nfowner" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
        \t}

        \tchain output {
        \t\ttype filter hook output priority 100; policy accept;
        \t\tgoto classify
        \t}
        }

        """

    @Test func readsTheInstalledTable() {
        let table = InstalledTable.parse(listing: Self.terse)
        #expect(table.comment?.installer == .rulesInstall)
        #expect(table.mapLevels == [2, 1])
        #expect(table.cgroupChains == [614])
        #expect(table.logStatements.count == 2)
        #expect(table.logsLike(RulesetSpec(cgroupLevels: [1, 2], newFlowSeconds: 0)))
        // This table batches every packet: chains that deliver new flows at once would name a
        // flow set it does not have.
        #expect(!table.logsLike(RulesetSpec(cgroupLevels: [1, 2])))
        let newFlows = InstalledTable.parse(listing: ParserTests.newFlowListing)
        #expect(newFlows.logStatements.count == 3)
        #expect(newFlows.logsLike(RulesetSpec()))
        #expect(!newFlows.logsLike(RulesetSpec(newFlowSeconds: 0)))
        #expect(!table.logsLike(RulesetSpec(group: 6)))
        #expect(!table.logsLike(RulesetSpec(snaplen: 200)))
        #expect(!table.logsLike(RulesetSpec(queueThreshold: 0)))
        #expect(!table.logsLike(RulesetSpec(prefix: "other")))
        #expect(!InstalledTable.parse(listing: "table inet nfowner {\n}\n").logsLike(RulesetSpec()))
        // Every prefix of the listing: no trap.
        let bytes = Array(Self.terse.utf8)
        for end in 0...bytes.count {
            let cut = InstalledTable.parse(listing: String(decoding: bytes[..<end], as: UTF8.self))
            #expect(cut.mapLevels.allSatisfy { [1, 2].contains($0) })
        }
    }

    @Test func resyncGolden() throws {
        let a = CgroupClassifier(id: 81, level: 1, nftPath: "unified/system.slice", hierarchyPath: "/system.slice")
        let b = CgroupClassifier(id: 97, level: 2, nftPath: "unified/system.slice/x", hierarchyPath: "/system.slice/x")
        let script = try NftScriptRenderer.resyncCgroups([b, a], deletingChains: [614, 81],
                                                         spec: RulesetSpec(cgroups: [a, b], cgroupLevels: [1, 2, 3],
                                                                           newFlowSeconds: 0))
        #expect(script == """
            # nfowner: sets the cgroups of inet nfowner (levels 3,2,1) in one transaction.
            add chain inet nfowner cg_81
            flush chain inet nfowner cg_81
            add rule inet nfowner cg_81 counter log prefix "nfowner cg=81" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
            add rule inet nfowner cg_81 accept
            add chain inet nfowner cg_97
            flush chain inet nfowner cg_97
            add rule inet nfowner cg_97 counter log prefix "nfowner cg=97" group 5 snaplen 128 queue-threshold 64 comment "nfowner log"
            add rule inet nfowner cg_97 accept
            flush map inet nfowner cgroups_l3
            flush map inet nfowner cgroups_l2
            add element inet nfowner cgroups_l2 { "unified/system.slice/x" : goto cg_97 }
            flush map inet nfowner cgroups_l1
            add element inet nfowner cgroups_l1 { "unified/system.slice" : goto cg_81 }
            add chain inet nfowner cg_614
            delete chain inet nfowner cg_614

            """)
    }

    @Test func statusShowsTheInstaller() {
        var status = RulesStatus(tableName: "nfowner", netns: nil, installed: true, installedHash: Self.hash,
                                 expectedHash: Self.hash, counters: [], group: 5, listener: nil, listenerProcesses: [],
                                 installer: .monitor(Self.stamp), installerRunning: false)
        #expect(status.description.contains(
            "  installed by monitor pid 812 (not running; the next monitor adopts the table and removes it on exit)"))
        #expect(status.keyValueText.contains("installer=monitor\ninstaller_pid=812\ninstaller_running=false\n"))
        #expect(status.json.hasSuffix(",\"installer\":{\"by\":\"monitor\",\"pid\":812,\"start_ticks\":1234567,\"running\":false}}"))
        status.installer = nil
        status.installerRunning = nil
        #expect(status.description.contains("  installed by `nfowner rules install` (not recorded: an older nfowner)"))
        #expect(status.keyValueText.contains("installer=rules-install\n"))
    }
}
