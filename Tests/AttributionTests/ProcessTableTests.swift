import Foundation
import Testing
import NetfilterSystem
import NetlinkWire
@testable import Attribution

private let second: UInt64 = 1_000_000_000

private func event(_ time: UInt64, _ kind: ProcEvent.Kind) -> ProcEvent { ProcEvent(timestamp: time, kind: kind) }

@Suite("/proc parsers")
struct ProcFSParserTests {
    @Test func statWithSpacesAndParenthesesInComm() throws {
        let stat = try #require(ProcFS.parseStat("42 (a) b) (c) S 7 42 42 0 -1 0 0 0 0 0 0 0 0 0 20 0 1 0 98765 0 0\n"))
        #expect(stat.comm == "a) b) (c")
        #expect(stat.ppid == 7)
        #expect(stat.startTicks == 98765)
        #expect(ProcFS.parseStat("42 (x S 7") == nil)
        #expect(ProcFS.parseStat("42 (x) S 7 1 2") == nil)
        #expect(ProcFS.parseStat("") == nil)
    }

    @Test func statusKeepsAllFourIDs() {
        let status = ProcFS.parseStatus("Name:\tmy prog\nTgid:\t10\nPPid:\t1\nUid:\t1000\t0\t0\t33\nGid:\t5\t6\t7\t8\nGroups:\t1 2\n")
        #expect(status.name == "my prog")
        #expect(status.tgid == 10)
        #expect(status.ppid == 1)
        #expect(status.uid == ProcFS.IDs(real: 1000, effective: 0, saved: 0, filesystem: 33))
        #expect(status.gid?.filesystem == 8)
        #expect(ProcFS.parseStatus("Uid:\t1 2\n").uid == nil)
    }

    @Test func cgroupV2Line() {
        #expect(ProcFS.parseCgroup("12:cpu:/x\n0::/system.slice/a.service\n") == "/system.slice/a.service")
        #expect(ProcFS.parseCgroup("0::/\n") == "/")
        #expect(ProcFS.parseCgroup("1:name=systemd:/x\n") == nil)
        #expect(ProcFS.parseCgroup("0::/gone (deleted)\n") == "/gone")
    }

    @Test func cmdlineNulsBecomeSpaces() {
        #expect(ProcFS.parseCmdline(Array("ping\0-c\01\0".utf8)) == "ping -c 1")
        #expect(ProcFS.parseCmdline([]) == nil)
        #expect(ProcFS.parseCmdline([0, 0]) == nil)
    }
}

@Suite("/proc readers on fixture trees")
struct ProcFSReaderTests {
    @Test func readsEverythingAndNilForVanished() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 10, comm: "we (ird) name", ppid: 1, uid: 1000, fsuid: 1001, cgroup: "/a.slice/b.scope",
                     exe: "/usr/bin/python3", cmdline: ["python3", "-c", "x"], startTicks: 250)
        try proc.add(pid: 11)
        try proc.directory.make("self")
        let fs = ProcFS(root: proc.root)
        #expect(Set(fs.pids()) == [10, 11])
        let snapshot = try #require(fs.snapshot(10))
        #expect(snapshot.comm == "we (ird) name")
        #expect(snapshot.exe == "/usr/bin/python3")
        #expect(snapshot.cmdline == "python3 -c x")
        #expect(snapshot.uid == 1001)  // fsuid
        #expect(snapshot.cgroupPath == "/a.slice/b.scope")
        #expect(snapshot.startTime == 2_500_000_000)
        #expect(snapshot.ppid == 1)
        // Vanished between listing and reading: nil everywhere, no error.
        proc.remove(pid: 11)
        #expect(fs.snapshot(11) == nil)
        #expect(fs.exe(11) == nil && fs.comm(11) == nil && fs.cmdline(11) == nil && fs.cgroupPath(11) == nil)
    }

    @Test func cmdlineIsBounded() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 5, cmdline: [String(repeating: "a", count: 10_000)])
        let line = try #require(ProcFS(root: proc.root).cmdline(5))
        #expect(line.utf8.count == ProcFS.cmdlineLimit)
    }

    @Test func threadIDIsNotAProcess() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 21, tgid: 20)
        #expect(ProcFS(root: proc.root).snapshot(21) == nil)
    }
}

@Suite("Process table semantics")
struct ProcessTableTests {
    @Test func seedForkExecExitAndGrace() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 100, comm: "bash", uid: 1000, cgroup: "/user.slice/session-1.scope", exe: "/usr/bin/bash",
                     cmdline: ["bash"], startTicks: 100)
        var now = 50 * second
        let table = ProcessTable(procFS: ProcFS(root: proc.root), gracePeriod: 30 * second, clock: { now })
        table.seed()
        #expect(table.process(pid: 100)?.process.exe == "/usr/bin/bash")
        #expect(table.process(pid: 100)?.startTime == 1 * second)

        // Fork: the child vanished before we could read it -> the parent's identity.
        table.apply(event(60 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 200, childTGID: 200)))
        var child = try #require(table.process(pid: 200))
        #expect(child.process.exe == "/usr/bin/bash" && child.process.uid == 1000 && child.process.ppid == 100)
        #expect(child.process.cgroupPath == "/user.slice/session-1.scope" && child.startTime == 60 * second)

        // Exec read from /proc.
        try proc.add(pid: 200, comm: "curl", ppid: 100, cgroup: "/user.slice/session-1.scope", exe: "/usr/bin/curl",
                     cmdline: ["curl", "x"])
        table.apply(event(61 * second, .exec(pid: 200, tgid: 200)))
        child = try #require(table.process(pid: 200))
        #expect(child.process.exe == "/usr/bin/curl" && child.process.comm == "curl" && child.process.cmdline == "curl x" && !child.missedExec)

        // Exit keeps the entry, queryable for the window.
        proc.remove(pid: 200)
        table.apply(event(62 * second, .exit(pid: 200, tgid: 200, exitCode: 0, exitSignal: 17, parentPID: 100, parentTGID: 100)))
        #expect(table.process(pid: 200)?.exitTime == 62 * second)
        let found = table.processes(uid: 1000, cgroupPath: "/user.slice/session-1.scope", aliveAt: 63 * second,
                                    window: 2 * second)
        #expect(found.map(\.pid) == [100, 200])
        #expect(table.processes(uid: 1000, cgroupPath: nil, aliveAt: 65 * second, window: 2 * second).map(\.pid) == [100])
        #expect(table.processes(uid: 1000, cgroupPath: nil, aliveAt: 59 * second, window: 2 * second).map(\.pid) == [100])
        #expect(table.processes(uid: 0, cgroupPath: nil, aliveAt: 61 * second, window: 0).isEmpty)

        // Grace: still there at exit + 30 s, gone after.
        table.evictExpired(now: 92 * second)
        #expect(table.process(pid: 200) != nil)
        table.evictExpired(now: 92 * second + 1)
        #expect(table.process(pid: 200) == nil)
        #expect(table.counters.expired == 1)
        now = 100 * second
    }

    @Test func execOfAVanishedProcessDoesNotKeepTheParentsProgram() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 100, comm: "sh", exe: "/usr/bin/dash")
        let table = ProcessTable(procFS: ProcFS(root: proc.root), clock: { 10 * second })
        table.seed()
        table.apply(event(11 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 101)))
        table.apply(event(11 * second + 1, .exec(pid: 101, tgid: 101)))
        let child = try #require(table.process(pid: 101))
        // Nor its name: "sh" would name the shell for the program it ran.
        #expect(child.process.exe == nil && child.missedExec && child.process.comm == nil && child.process.uid == 1000)
    }

    /// A fixture /proc with a shell (pid 100) and a ping read in time earlier (pid 90), with
    /// whatever `more` adds, and a seeded table over it whose clock reads `now` and whose
    /// executables are named by a fake stat: /usr/bin/ping is device 8, inode 42.
    private func shellAndAnEarlierPing(now: UInt64, _ more: (FakeProc) throws -> Void = { _ in }) throws
        -> (proc: FakeProc, table: ProcessTable) {
        let proc = try FakeProc()
        try proc.add(pid: 100, comm: "sh", exe: "/usr/bin/dash")
        try proc.add(pid: 90, comm: "ping", exe: "/usr/bin/ping")
        try more(proc)
        let index = ExecutableIndex(directories: [], identify: { path in
            path == "/usr/bin/ping" ? FileIdentity(device: 8, inode: 42) : nil
        })
        let table = ProcessTable(procFS: ProcFS(root: proc.root), gracePeriod: ProcessTable.defaultGracePeriod,
                                 capacity: ProcessTable.defaultCapacity, clock: { now }, executables: index)
        table.seed()
        return (proc, table)
    }

    private func pingExit(_ pid: Int32, inode: UInt64 = 42) -> TaskExit {
        TaskExit(threadID: pid, processID: pid, comm: "ping", executable: FileIdentity(device: 8, inode: inode))
    }

    @Test func aMissedExecIsNamedFromTheExitRecordThatCameFirst() throws {
        let (proc, table) = try shellAndAnEarlierPing(now: 12 * second)
        defer { proc.directory.remove() }
        table.apply(event(11 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 101)))
        // The monitor's order: the exec's reads fail (ping is gone), then its exit record, then the exec.
        let reads = table.readAhead([event(11 * second + 1, .exec(pid: 101, tgid: 101))])
        #expect(reads.first??.missedExecutable == true)
        table.recordExits([pingExit(101)], receivedAt: 11 * second + 5)
        table.apply([event(11 * second + 1, .exec(pid: 101, tgid: 101))], reads: reads)
        let child = try #require(table.process(pid: 101))
        #expect(child.process.exe == "/usr/bin/ping" && child.process.comm == "ping" && !child.missedExec)
        #expect(table.namedFromExitRecords == 1)
    }

    @Test func aMissedExecIsNamedWhenItsExitRecordComesLater() throws {
        let (proc, table) = try shellAndAnEarlierPing(now: 12 * second)
        defer { proc.directory.remove() }
        table.apply(event(11 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 101)))
        table.apply(event(11 * second + 1, .exec(pid: 101, tgid: 101)))
        table.apply(event(11 * second + 2, .exit(pid: 101, tgid: 101, exitCode: 0, exitSignal: 17, parentPID: 100, parentTGID: 100)))
        #expect(table.process(pid: 101)?.process.exe == nil)
        table.recordExits([pingExit(101)], receivedAt: 11 * second + 5)
        let child = try #require(table.process(pid: 101))
        #expect(child.exitTime != nil && child.process.exe == "/usr/bin/ping" && child.process.comm == "ping")
    }

    @Test func anExitRecordOfAnEarlierProgramOrAnUnknownFileNamesNothingWrong() throws {
        let (proc, table) = try shellAndAnEarlierPing(now: 20 * second)
        defer { proc.directory.remove() }
        // Received before the exec happened: the record of the pid's previous program.
        table.recordExits([pingExit(101)], receivedAt: 10 * second)
        table.apply(event(11 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 101)))
        table.apply(event(11 * second + 1, .exec(pid: 101, tgid: 101)))
        let stale = try #require(table.process(pid: 101))
        #expect(stale.process.exe == nil && stale.missedExec && stale.process.comm == nil)
        // A file no known executable and no directory holds: the comm only.
        table.apply(event(12 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 102, childTGID: 102)))
        table.apply(event(12 * second + 1, .exec(pid: 102, tgid: 102)))
        table.recordExits([pingExit(102, inode: 7)], receivedAt: 12 * second + 5)
        let unknown = try #require(table.process(pid: 102))
        #expect(unknown.process.exe == nil && unknown.missedExec && unknown.process.comm == "ping")
        #expect(table.namedFromExitRecords == 0)
    }

    @Test func anExitRecordNamesOnlyAProcessOfItsParent() throws {
        let (proc, table) = try shellAndAnEarlierPing(now: 12 * second) { try $0.add(pid: 200, comm: "bash", exe: "/usr/bin/bash") }
        defer { proc.directory.remove() }
        // pid 101 forked by sh, exec missed; the record says its parent was bash: an earlier
        // process with the same pid, not this one.
        table.apply(event(11 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 101)))
        table.apply(event(11 * second + 1, .exec(pid: 101, tgid: 101)))
        var record = pingExit(101)
        record.parentID = 200
        table.recordExits([record], receivedAt: 11 * second + 5)
        #expect(table.process(pid: 101)?.process.exe == nil)
        record.parentID = 100
        table.recordExits([record], receivedAt: 11 * second + 6)
        #expect(table.process(pid: 101)?.process.exe == "/usr/bin/ping")
    }

    @Test func anExitRecordNeverNamesAnExitedProcessWhileOneWithItsPidLives() throws {
        let (proc, table) = try shellAndAnEarlierPing(now: 20 * second)
        defer { proc.directory.remove() }
        // An old 101 whose exec was missed, exited; a new 101 whose exec was read.
        table.apply(event(11 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 101)))
        table.apply(event(11 * second + 1, .exec(pid: 101, tgid: 101)))
        table.apply(event(11 * second + 2, .exit(pid: 101, tgid: 101, exitCode: 0, exitSignal: 17, parentPID: 100, parentTGID: 100)))
        try proc.add(pid: 101, comm: "sleep", ppid: 100, exe: "/usr/bin/sleep")
        table.apply(event(12 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 101)))
        table.apply(event(12 * second + 1, .exec(pid: 101, tgid: 101)))
        // The new 101's exit: it must not name the old one ping.
        table.recordExits([pingExit(101)], receivedAt: 12 * second + 5)
        #expect(table.process(pid: 101)?.process.exe == "/usr/bin/sleep")
        #expect(table.processes(uid: nil, cgroupPath: nil, aliveAt: 11 * second + 1, window: 0)
            .first { $0.pid == 101 }?.process.exe == nil)
        #expect(table.namedFromExitRecords == 0)
    }

    @Test func theIndexLooksAtEachPathOnceAndChecksWhatItRemembers() {
        var stats: [String] = []
        var index = ExecutableIndex(directories: [], identify: { path in
            stats.append(path)
            return path == "/usr/bin/ping" ? FileIdentity(device: 8, inode: 42) : nil
        })
        let ping = FileIdentity(device: 8, inode: 42)
        #expect(index.path(of: ping, known: { ["/usr/bin/dash", "/usr/bin/ping"] }, now: 0) == "/usr/bin/ping")
        // Remembered: checked with one stat, the known paths not asked for.
        #expect(index.path(of: ping, known: { Issue.record("asked again"); return [] }, now: 1) == "/usr/bin/ping")
        #expect(index.path(of: FileIdentity(device: 8, inode: 7), known: { ["/usr/bin/dash"] }, now: 2) == nil)
        #expect(stats == ["/usr/bin/dash", "/usr/bin/ping", "/usr/bin/ping"])
    }

    /// A scan records every regular file (not links: /proc names the file), so a second
    /// program asked for within the minute is known without another scan; a file replaced since
    /// (an upgrade) is not named by its old inode, and the next scan finds its new one.
    @Test func theScanRecordsRegularFilesAtMostOnceAMinuteAndForgetsReplacedOnes() throws {
        let directory = try TemporaryDirectory("bin")
        defer { directory.remove() }
        func write(_ name: String) throws { try Data([1]).write(to: URL(fileURLWithPath: "\(directory.path)/\(name)")) }
        func identity(_ name: String) throws -> FileIdentity {
            try #require(Directories.fileIdentity("\(directory.path)/\(name)").map(FileIdentity.init))
        }
        for name in ["a", "b", "c"] { try write(name) }
        try FileManager.default.createSymbolicLink(atPath: "\(directory.path)/0-link", withDestinationPath: "c")
        var index = ExecutableIndex(directories: [directory.path])
        let second: UInt64 = 1_000_000_000
        #expect(index.path(of: try identity("a"), known: { [] }, now: 0) == "\(directory.path)/a")
        #expect(index.lookups == 4)
        // c, not the link sorted before it.
        #expect(index.path(of: try identity("c"), known: { [] }, now: second) == "\(directory.path)/c")
        #expect(index.lookups == 5)  // the check of what was remembered
        let oldB = try identity("b")
        try FileManager.default.removeItem(atPath: "\(directory.path)/b")
        try write("b")
        let newB = try identity("b")
        if oldB == newB {
            // The file system gave the new file the old inode: the same path, rightly named.
            #expect(index.path(of: newB, known: { [] }, now: 2 * second) == "\(directory.path)/b")
        } else {
            #expect(index.path(of: oldB, known: { [] }, now: 2 * second) == nil)
            #expect(index.path(of: newB, known: { [] }, now: 3 * second) == nil)  // no scan within the minute
            #expect(index.path(of: newB, known: { [] }, now: 62 * second) == "\(directory.path)/b")
        }
    }

    @Test func threadsCommAndIDEvents() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 100, uid: 1000)
        let table = ProcessTable(procFS: ProcFS(root: proc.root), clock: { 10 * second })
        table.seed()
        table.apply(event(11 * second, .fork(parentPID: 100, parentTGID: 100, childPID: 101, childTGID: 100)))
        #expect(table.process(pid: 101) == nil)  // a thread
        table.apply(event(12 * second, .exit(pid: 101, tgid: 100, exitCode: 0, exitSignal: 0, parentPID: 1, parentTGID: 1)))
        #expect(table.process(pid: 100)?.exitTime == nil)
        table.apply(event(13 * second, .comm(pid: 100, tgid: 100, comm: "renamed")))
        table.apply(event(13 * second, .uid(pid: 100, tgid: 100, real: 1000, effective: 0)))
        table.apply(event(13 * second, .gid(pid: 100, tgid: 100, real: 1000, effective: 5)))
        let entry = try #require(table.process(pid: 100))
        #expect(entry.process.comm == "renamed" && entry.process.uid == 0 && entry.process.gid == 5)
    }

    @Test func capEvictsOldestExitedFirstAndCounts() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 1)
        let table = ProcessTable(procFS: ProcFS(root: proc.root), capacity: 4, clock: { 0 })
        table.seed()
        for pid: Int32 in 10...15 {
            let t = UInt64(pid) * second
            table.apply(event(t, .fork(parentPID: 1, parentTGID: 1, childPID: pid, childTGID: pid)))
            table.apply(event(t + 1, .exit(pid: pid, tgid: pid, exitCode: 0, exitSignal: 17, parentPID: 1, parentTGID: 1)))
        }
        #expect(table.aliveCount == 1)
        #expect(table.exitedCount == 3)
        #expect(table.process(pid: 10) == nil && table.process(pid: 12) == nil)
        #expect(table.process(pid: 13) != nil && table.process(pid: 15) != nil)
        #expect(table.counters.evictedByCap == 3)
    }

    @Test func rescanFindsNewAndMarksVanished() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 1)
        try proc.add(pid: 2)
        var now = 5 * second
        let table = ProcessTable(procFS: ProcFS(root: proc.root), clock: { now })
        table.seed()
        proc.remove(pid: 2)
        try proc.add(pid: 3, comm: "new")
        now = 6 * second
        table.rescan()
        #expect(table.process(pid: 2)?.exitTime == 6 * second)
        #expect(table.process(pid: 3)?.process.comm == "new")
        #expect(table.counters.scans == 2)
    }

    @Test func reusedPidKeepsTheOldEntryQueryable() throws {
        let proc = try FakeProc()
        defer { proc.directory.remove() }
        try proc.add(pid: 1)
        let table = ProcessTable(procFS: ProcFS(root: proc.root), clock: { 0 })
        table.seed()
        table.apply(event(1 * second, .fork(parentPID: 1, parentTGID: 1, childPID: 50, childTGID: 50)))
        table.apply(event(2 * second, .exit(pid: 50, tgid: 50, exitCode: 0, exitSignal: 17, parentPID: 1, parentTGID: 1)))
        table.apply(event(3 * second, .fork(parentPID: 1, parentTGID: 1, childPID: 50, childTGID: 50)))
        #expect(table.process(pid: 50)?.exitTime == nil)
        let at2 = table.processes(uid: nil, cgroupPath: nil, aliveAt: 2 * second, window: 0).filter { $0.pid == 50 }
        #expect(at2.count == 1 && at2.first?.exitTime == 2 * second)
    }
}

@Suite("Process table on the real proc connector", .serialized)
struct ProcessTableLiveTests {
    private func runUntil(_ table: ProcessTable, _ source: ProcessEventSource, seconds: Double,
                          _ done: () -> Bool) {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let fd = source.descriptor { _ = try? waitReadable([fd], timeoutMilliseconds: 20) }
            table.drain(source)
            if done() { return }
        }
    }

    private func spawn(_ path: String, _ arguments: [String]) throws -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        try process.run()
        return process
    }

    @Test(.enabled(if: getuid() == 0, "needs root: subscribing to the proc connector needs CAP_NET_ADMIN"))
    func shortLivedChildIsRecordedWithExitTime() throws {
        let source = ProcessEventSource()
        #expect(source.mode == .connector)
        let table = ProcessTable()
        table.seed()
        let process = try spawn("/bin/sh", ["-c", "exec /bin/sleep 0.2"])
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        let pid = process.processIdentifier
        runUntil(table, source, seconds: 3) { table.process(pid: pid)?.exitTime != nil }
        process.waitUntilExit()
        let entry = try #require(table.process(pid: pid))
        #expect(entry.process.exe == "/usr/bin/sleep" || entry.process.exe == "/bin/sleep")
        #expect(entry.process.uid == getuid())
        let ours = ProcFS().cgroupPath(getpid())
        #expect(entry.process.cgroupPath != nil && entry.process.cgroupPath == ours)
        let exitTime = try #require(entry.exitTime)
        #expect(exitTime >= entry.startTime + 150_000_000)
        #expect(table.processes(uid: getuid(), cgroupPath: ours, aliveAt: exitTime + 1, window: 1_000_000)
            .contains { $0.pid == pid })
    }

    /// The race the exit records exist for, made certain: every program is reaped before the
    /// table reads its exec, so /proc has nothing left; the kernel's exit record still names it.
    @Test(.enabled(if: getuid() == 0, "needs root: the proc connector and taskstats need CAP_NET_ADMIN"))
    func programsReapedBeforeTheirExecIsReadAreNamedFromExitRecords() throws {
        let source = ProcessEventSource()
        #expect(source.mode == .connector)
        #expect(source.exitRecords != nil, "exit records unavailable: \(source.exitRecordsUnavailable ?? "")")
        let table = ProcessTable()
        table.seed()
        var pids: [Int32] = []
        for _ in 0..<10 {
            let process = try spawn("/bin/true", [])
            process.waitUntilExit()  // reaped: no /proc/PID left to read
            pids.append(process.processIdentifier)
        }
        runUntil(table, source, seconds: 3) { pids.allSatisfy { table.process(pid: $0)?.exitTime != nil } }
        let trueIdentity = try #require(Directories.fileIdentity("/bin/true"))
        for pid in pids {
            let entry = try #require(table.process(pid: pid))
            #expect(entry.process.comm == "true", "pid \(pid): comm \(entry.process.comm ?? "nil")")
            let exe = try #require(entry.process.exe, "pid \(pid) has no exe")
            #expect(Directories.fileIdentity(exe).map { $0 == trueIdentity } == true, "pid \(pid): exe \(exe)")
        }
        #expect(table.namedFromExitRecords >= 10)  // other tests' programs too
    }

    @Test(.enabled(if: getuid() == 0, "needs root: subscribing to the proc connector needs CAP_NET_ADMIN"))
    func twentyShortLivedProcessesGetAnExe() throws {
        let source = ProcessEventSource()
        #expect(source.mode == .connector)
        let table = ProcessTable()
        table.seed()
        // A round in which the test thread was kept off the CPU for the whole round (a loaded
        // machine: this runs next to other suites) catches none; up to three rounds are run,
        // and the last one is judged.
        var seen = 0, named = 0, withExe = 0
        for round in 1...3 {
            var pids: [Int32] = []
            for _ in 0..<20 {
                let process = try spawn("/bin/true", [])
                let pid = process.processIdentifier
                pids.append(pid)
                // Drain as the monitor would: whenever the descriptor becomes readable.
                runUntil(table, source, seconds: 2) { table.process(pid: pid)?.exitTime != nil }
                process.waitUntilExit()
            }
            runUntil(table, source, seconds: 2) { pids.allSatisfy { table.process(pid: $0)?.exitTime != nil } }
            withExe = pids.filter { table.process(pid: $0)?.process.exe?.hasSuffix("/true") == true }.count
            seen = pids.filter { table.process(pid: $0) != nil }.count
            // The program's name survives the race (comm stays readable until the process is
            // reaped); the exe link does not. The count is reported, and must not fall to zero.
            named = pids.filter { table.process(pid: $0)?.process.comm == "true" }.count
            print("proc connector, round \(round): \(seen)/20 short-lived /bin/true seen, \(withExe)/20 with exe, \(named)/20 with comm \"true\"; overruns \(source.overruns)")
            if seen == 20, named > 0, withExe > 0 { break }
        }
        #expect(seen == 20)
        // exec raises no COMM event (the kernel's __set_task_comm notifies perf only), so comm,
        // like exe, is read from /proc and races a program that lives microseconds; under a
        // loaded machine some are missed. The count is printed; the monitor's end-to-end test
        // (its own event thread, real senders) holds the product to 50 of 50.
        #expect(named > 0, "none of 20 short-lived processes got their comm")
        #expect(withExe > 0, "none of 20 short-lived processes got their exe")
    }
}
