import Foundation
import NetlinkWire
import PacketModel
import PacketParsing
import Testing
@testable import Attribution

/// Attribution when the packet's socket is gone (issue 12 items 3 and 4), on a process table fed
/// synthetic process events over a fixture /proc: leaves win, one executable is a program, packets
/// without a cgroup look at short-lived processes, the owner's cgroup is the process's own.
@Suite struct SocketGoneAttributionTests {
    static let second: UInt64 = 1_000_000_000
    static let ms: UInt64 = 1_000_000
    /// When the children are forked; packets are received 50 ms later (window: 0.1 s flush + 20 ms).
    static let t0: UInt64 = 20 * second
    static let scope = "/user.slice/user-1000.slice/session-3.scope"

    /// A fixture /proc, a table seeded from it at 10 s, and an attributor without sockets (every
    /// socket is "gone") whose cgroup ids come from `ids`.
    struct World {
        let proc: FakeProc
        let table: ProcessTable
        let attributor: OwnerAttributor

        init(ids: [String: UInt64] = [:], seed: (FakeProc) throws -> Void) throws {
            proc = try FakeProc()
            try seed(proc)
            table = ProcessTable(procFS: ProcFS(root: proc.root), clock: { 10 * SocketGoneAttributionTests.second })
            table.seed()
            attributor = OwnerAttributor(table: table, sockets: nil, flushTimeoutHundredths: 10,
                                         cgroupID: { ids[$0] }, procFS: ProcFS(root: proc.root))
        }

        /// `parent` forks `pid` at `time`, which execs (what /proc says about it: `add` it first)
        /// and, unless `exits` is false, exits 1 ms later.
        func spawn(_ pid: Int32, parent: Int32, at time: UInt64, exits: Bool = true) {
            table.apply(ProcEvent(timestamp: time, kind: .fork(parentPID: parent, parentTGID: parent,
                                                                childPID: pid, childTGID: pid)))
            table.apply(ProcEvent(timestamp: time + 100_000, kind: .exec(pid: pid, tgid: pid)))
            if exits {
                table.apply(ProcEvent(timestamp: time + SocketGoneAttributionTests.ms,
                                      kind: .exit(pid: pid, tgid: pid, exitCode: 0, exitSignal: 17,
                                                  parentPID: parent, parentTGID: parent)))
            }
        }

        func attribute(port: UInt16 = 40_000, uid: UInt32 = 1000, cgroupPath: String?,
                       at time: UInt64 = SocketGoneAttributionTests.t0 + 50 * SocketGoneAttributionTests.ms)
            -> OwnerAttribution {
            attributor.attribute(packet: OwnerAttributorTests.packet(port: port), direction: .outbound, uid: uid,
                                 cgroupPath: cgroupPath, now: time)
        }

        func remove() { proc.directory.remove() }
    }

    /// sh (pid 100) in the session scope, which runs ping (pid 200) at `t0`; ping exits 1 ms later.
    static func shellRunningPing() throws -> World {
        let world = try World { proc in
            try proc.add(pid: 100, comm: "sh", cgroup: Self.scope, exe: "/usr/bin/sh")
        }
        do {
            try world.proc.add(pid: 200, comm: "ping", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/ping")
        } catch {
            world.remove()
            throw error
        }
        world.spawn(200, parent: 100, at: Self.t0)
        return world
    }

    @Test func theChildWinsOverTheShellWaitingForIt() throws {
        let world = try Self.shellRunningPing()
        defer { world.remove() }
        // Both are candidates (same uid, same cgroup, alive at packet time); sh is ping's parent.
        let pool = world.table.processes(uid: 1000, cgroupPath: Self.scope, aliveAt: Self.t0 + 50 * Self.ms,
                                         window: 120 * Self.ms)
        #expect(pool.map(\.pid) == [100, 200])
        let found = world.attribute(cgroupPath: Self.scope)
        #expect(found.confidence == .single)
        #expect(found.processes == [ProcessReference(pid: 200, comm: "ping", exe: "/usr/bin/ping")])
        #expect(found.named == NamedProcess(pid: 200, comm: "ping", exe: "/usr/bin/ping"))
    }

    /// A packet read late because the receive loop was busy (resolving a burst of new flows) was
    /// queued when the loop was last idle or later, not within the window of the read: its
    /// sender, gone by the read, is still a candidate and wins over the shell. A loop that was
    /// idle until just before the read bounds it the other way: ping exited long before anything
    /// that the loop then read could have been sent, and only the shell remains.
    @Test func aPacketReadLateByABusyLoopStillFindsItsExitedSender() throws {
        let world = try Self.shellRunningPing()
        defer { world.remove() }
        let read = Self.t0 + 500 * Self.ms  // past the window (120 ms) and the late window (370 ms)
        world.attributor.busySince = Self.t0
        let busy = world.attribute(cgroupPath: Self.scope, at: read)
        #expect(busy.confidence == .single)
        #expect(busy.processes.map(\.pid) == [200])
        world.attributor.busySince = read - 10 * Self.ms
        let idle = world.attribute(port: 40_001, cgroupPath: Self.scope, at: read)
        #expect(idle.processes.map(\.pid) == [100])
    }

    /// sh runs ping, then forks for the next command: the fork, not exec'd yet, is the shell's
    /// own program and loses like the shell; once it has exec'd it is a program of its own.
    @Test func aForkOfTheWaitingShellThatHasNotExecdYetLoses() throws {
        let world = try World { proc in
            try proc.add(pid: 100, comm: "sh", cgroup: Self.scope, exe: "/usr/bin/sh")
        }
        defer { world.remove() }
        try world.proc.add(pid: 200, comm: "ping", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/ping")
        world.spawn(200, parent: 100, at: Self.t0)  // sends, exits 1 ms later
        // What /proc will say after its exec; until then the table has the fork's copy of sh.
        try world.proc.add(pid: 201, comm: "perl", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/perl")
        world.table.apply(ProcEvent(timestamp: Self.t0 + 2 * Self.ms,
                                    kind: .fork(parentPID: 100, parentTGID: 100, childPID: 201, childTGID: 201)))
        let now = Self.t0 + 3 * Self.ms
        let found = world.attribute(cgroupPath: Self.scope, at: now)
        #expect(found.confidence == .single)
        #expect(found.processes.map(\.pid) == [200])
        // After its exec (perl) it is a candidate like any other program.
        world.table.apply(ProcEvent(timestamp: now + Self.ms, kind: .exec(pid: 201, tgid: 201)))
        let later = world.attribute(port: 40_001, cgroupPath: Self.scope, at: now + 2 * Self.ms)
        #expect(later.confidence == .candidates)
        #expect(Set(later.processes.map(\.pid)) == [200, 201])
    }

    /// sh runs ping (exits at t0 + 1 ms), then python3, whose datagram's socket is gone when it is
    /// read. Within the window both children are candidates; once the packet is known to be sent
    /// after a moment its queue was seen empty (`sentAfter`) past ping's exit, ping cannot have
    /// sent it, and python3 is named. A moment before ping's exit proves nothing.
    @Test func aProcessThatExitedBeforeThePacketWasSentIsNotItsSender() throws {
        let world = try Self.shellRunningPing()
        defer { world.remove() }
        try world.proc.add(pid: 201, comm: "python3", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/python3")
        world.spawn(201, parent: 100, at: Self.t0 + 20 * Self.ms)
        let read = Self.t0 + 40 * Self.ms
        let unbounded = world.attribute(cgroupPath: Self.scope, at: read)
        #expect(unbounded.confidence == .candidates)
        #expect(Set(unbounded.processes.map(\.pid)) == [200, 201])
        world.attributor.sentAfter = Self.t0 + 500_000  // before ping's exit: nothing ruled out
        let early = world.attribute(port: 40_001, cgroupPath: Self.scope, at: read)
        #expect(Set(early.processes.map(\.pid)) == [200, 201])
        world.attributor.sentAfter = Self.t0 + 2 * Self.ms
        let bounded = world.attribute(port: 40_002, cgroupPath: Self.scope, at: read)
        #expect(bounded.confidence == .single)
        #expect(bounded.processes == [ProcessReference(pid: 201, comm: "python3", exe: "/usr/bin/python3")])
    }

    /// An exit is the end of sending only for a process the table saw start and saw no thread
    /// of: another thread can outlive the leader's exit event, and a process found by a /proc
    /// scan (or after lost events) may have threads nobody saw start.
    @Test func onlyAnExitOfAProcessKnownSingleThreadedEndsItsSending() throws {
        let world = try Self.shellRunningPing()
        defer { world.remove() }
        let after = Self.t0 + 10 * Self.ms
        #expect(world.table.process(pid: 200)?.exited(before: after) == true)
        #expect(world.table.process(pid: 200)?.exited(before: Self.t0 + 500_000) == false)
        // A threaded program: its leader's exit does not end it for this purpose.
        try world.proc.add(pid: 300, comm: "curl", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/curl")
        world.table.apply(ProcEvent(timestamp: Self.t0, kind: .fork(parentPID: 100, parentTGID: 100, childPID: 300, childTGID: 300)))
        world.table.apply(ProcEvent(timestamp: Self.t0 + 1, kind: .fork(parentPID: 300, parentTGID: 300, childPID: 301, childTGID: 300)))
        world.table.apply(ProcEvent(timestamp: Self.t0 + 2, kind: .exit(pid: 300, tgid: 300, exitCode: 0, exitSignal: 17,
                                                                         parentPID: 100, parentTGID: 100)))
        #expect(world.table.process(pid: 300)?.exitTime != nil)
        #expect(world.table.process(pid: 300)?.exited(before: after) == false)
        // The shell came from the seed: never known single-threaded.
        #expect(world.table.process(pid: 100)?.knownSingleThreaded == false)
        // A re-seed (after lost events) forgets what was known, for the exited too.
        world.table.seed()
        #expect(world.table.process(pid: 200)?.exited(before: after) == false)
    }

    @Test func leavesFollowThePpidChainThroughGrandchildren() throws {
        let world = try World { proc in
            try proc.add(pid: 100, comm: "bash", cgroup: Self.scope, exe: "/usr/bin/bash")
            try proc.add(pid: 150, comm: "sh", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/sh")
            try proc.add(pid: 200, comm: "curl", ppid: 150, cgroup: Self.scope, exe: "/usr/bin/curl")
            try proc.add(pid: 300, comm: "ssh", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/ssh")
        }
        defer { world.remove() }
        let entries = world.table.processes(uid: 1000, cgroupPath: nil, aliveAt: 11 * Self.second, window: 0)
        #expect(entries.map(\.pid) == [100, 150, 200, 300])
        // bash → sh → curl, bash → ssh: the leaves are curl and ssh.
        #expect(world.table.leaves(of: entries).map(\.pid) == [200, 300])
        // Without sh among the entries, bash is still curl's ancestor (sh is found alive in the table).
        #expect(world.table.leaves(of: entries.filter { $0.pid != 150 && $0.pid != 300 }).map(\.pid) == [200])
    }

    /// A shell that moved itself (`echo $$ > cgroup.procs`, no event) and started a one-shot
    /// program that was reaped before its fork was read: both are where the shell is now.
    @Test func aForkWhoseChildIsGoneTakesTheParentsCurrentCgroup() throws {
        let world = try World { proc in
            try proc.add(pid: 100, comm: "bash", cgroup: "/user.slice", exe: "/usr/bin/bash")
        }
        defer { world.remove() }
        try "0::\(Self.scope)\n".write(toFile: world.proc.root + "/100/cgroup", atomically: false, encoding: .utf8)
        world.spawn(200, parent: 100, at: Self.t0)  // no /proc/200: gone before any read
        #expect(world.table.process(pid: 200)?.process.cgroupPath == Self.scope)
        #expect(world.table.process(pid: 200)?.missedExec == true)
        #expect(world.table.process(pid: 100)?.process.cgroupPath == Self.scope)
    }

    /// A batch with two execs of one process (nsenter → the program) ends as the second left it.
    @Test func aBatchEndsWithTheLastExecsProgram() throws {
        let world = try World { proc in
            try proc.add(pid: 100, comm: "bash", cgroup: Self.scope, exe: "/usr/bin/bash")
        }
        defer { world.remove() }
        try world.proc.add(pid: 200, comm: "ping", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/ping")
        world.table.apply([
            ProcEvent(timestamp: Self.t0, kind: .fork(parentPID: 100, parentTGID: 100, childPID: 200, childTGID: 200)),
            ProcEvent(timestamp: Self.t0 + 1, kind: .exec(pid: 200, tgid: 200)),
            ProcEvent(timestamp: Self.t0 + 2, kind: .exec(pid: 200, tgid: 200)),
            ProcEvent(timestamp: Self.t0 + 3, kind: .exit(pid: 200, tgid: 200, exitCode: 0, exitSignal: 17,
                                                           parentPID: 100, parentTGID: 100)),
        ])
        let entry = try #require(world.table.process(pid: 200))
        #expect(entry.process.exe == "/usr/bin/ping")
        #expect(entry.process.comm == "ping")
        #expect(entry.exitTime == Self.t0 + 3)
        #expect(!entry.missedExec)
    }

    @Test func childrenOfOneExecutableAreAProgramWithoutAPid() throws {
        let exe = "/usr/local/bin/nfowner-traffic"
        let world = try World { proc in
            try proc.add(pid: 100, comm: "bash", cgroup: Self.scope, exe: "/usr/bin/bash")
        }
        defer { world.remove() }
        for pid: Int32 in 201...203 {
            try world.proc.add(pid: pid, comm: "nfowner-traffic", ppid: 100, cgroup: Self.scope, exe: exe)
        }
        for pid: Int32 in 201...203 { world.spawn(pid, parent: 100, at: Self.t0 + UInt64(pid - 200) * Self.ms) }
        let found = world.attribute(cgroupPath: Self.scope)
        #expect(found.confidence == .program)
        #expect(found.named == NamedProcess(pid: nil, comm: "nfowner-traffic", exe: exe))
        #expect(found.chosen == nil)
        #expect(found.processes.map(\.pid) == [201, 202, 203])
        #expect(found.reason == "3 processes of uid 1000 in \(Self.scope), all running \(exe)")
        #expect(found.cgroup == ProcessCgroup(path: Self.scope, unit: "session-3.scope", id: nil))
    }

    @Test func aMissedExecWithTheProgramsCommStillCountsButTheParentsCommDoesNot() throws {
        let exe = "/usr/bin/ping"
        func entry(_ pid: Int32, exe: String?, comm: String) -> ProcessEntry {
            var snapshot = ProcessSnapshot(pid: pid)
            snapshot.exe = exe
            snapshot.comm = comm
            return ProcessEntry(process: snapshot, startTime: 1)
        }
        let ping = [entry(1, exe: exe, comm: "ping"), entry(2, exe: exe, comm: "ping")]
        #expect(OwnerAttributor.sameProgram(ping + [entry(3, exe: nil, comm: "ping")])?.pid == 1)
        #expect(OwnerAttributor.sameProgram(ping + [entry(3, exe: nil, comm: "sh")]) == nil)
        #expect(OwnerAttributor.sameProgram([entry(3, exe: nil, comm: "x"), entry(4, exe: nil, comm: "x")])?.pid == 3)
        #expect(OwnerAttributor.sameProgram([entry(3, exe: nil, comm: "x"), entry(4, exe: nil, comm: "y")]) == nil)
        #expect(OwnerAttributor.sameProgram(ping + [entry(3, exe: "/usr/bin/ping6", comm: "ping")]) == nil)
    }

    @Test func mixedExecutablesStayCandidates() throws {
        let world = try World { proc in
            try proc.add(pid: 100, comm: "bash", cgroup: Self.scope, exe: "/usr/bin/bash")
        }
        defer { world.remove() }
        try world.proc.add(pid: 201, comm: "ping", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/ping")
        try world.proc.add(pid: 202, comm: "curl", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/curl")
        world.spawn(201, parent: 100, at: Self.t0)
        world.spawn(202, parent: 100, at: Self.t0 + Self.ms)
        let found = world.attribute(cgroupPath: Self.scope)
        #expect(found.confidence == .candidates)
        #expect(found.named == nil)
        #expect(found.processes.map(\.pid) == [201, 202])  // bash, their parent, is dropped
        #expect(found.cgroup == nil)
        #expect(world.attributor.cgroupCorrections == 0)
    }

    @Test func withoutACgroupOnlyProcessesThatStartedOrExitedAroundThePacketCount() throws {
        let world = try World(ids: ["/": 1]) { proc in
            // Long-running processes of uid 1000 in the root cgroup, and a root shell.
            try proc.add(pid: 100, comm: "daemon", uid: 1000, cgroup: "/", exe: "/usr/sbin/daemon")
            try proc.add(pid: 110, comm: "agent", uid: 1000, cgroup: "/", exe: "/usr/sbin/agent")
            try proc.add(pid: 120, comm: "bash", uid: 0, cgroup: "/", exe: "/usr/bin/bash")
        }
        defer { world.remove() }
        try world.proc.add(pid: 300, comm: "curl", ppid: 120, uid: 1000, cgroup: "/", exe: "/usr/bin/curl")
        // No short-lived process yet: only the uid.
        let before = world.attribute(port: 40_001, cgroupPath: nil)
        #expect(before == OwnerAttribution(confidence: .uid, reason: "no cgroup known for the packet"))
        world.spawn(300, parent: 120, at: Self.t0)
        let found = world.attribute(port: 40_002, cgroupPath: nil)
        #expect(found.confidence == .single)
        #expect(found.named == NamedProcess(pid: 300, comm: "curl", exe: "/usr/bin/curl"))
        #expect(found.reason == "the only process of uid 1000 started or exited at packet time (no cgroup known for the packet)")
        // The root cgroup is "/", with its id; not a correction (nothing was classified).
        #expect(found.cgroup == ProcessCgroup(path: "/", unit: nil, id: 1))
        #expect(world.attributor.cgroupCorrections == 0)
        // Read 200 ms later (the window is 120 ms): nobody in the window, curl within 370 ms.
        let late = world.attribute(port: 40_003, cgroupPath: nil, at: Self.t0 + 200 * Self.ms)
        #expect(late.confidence == .single)
        #expect(late.named?.exe == "/usr/bin/curl")
        #expect(late.reason == "the only process of uid 1000 started or exited at packet time (no cgroup known for the packet), none within 120 ms but within 370 ms (the packet was read late)")
        // A second later curl is outside both: only long-running processes are left.
        let later = world.attribute(port: 40_004, cgroupPath: nil, at: Self.t0 + Self.second)
        #expect(later.confidence == .uid)
    }

    @Test func withoutACgroupShortLivedSendersOfOneProgramAreAProgram() throws {
        let world = try World(ids: ["/": 1]) { proc in
            try proc.add(pid: 100, comm: "daemon", uid: 1000, cgroup: "/", exe: "/usr/sbin/daemon")
        }
        defer { world.remove() }
        try world.proc.add(pid: 120, comm: "bash", uid: 1000, cgroup: "/", exe: "/usr/bin/bash")
        for pid: Int32 in 301...310 {
            try world.proc.add(pid: pid, comm: "sender", ppid: 120, uid: 1000, cgroup: "/", exe: "/opt/sender")
        }
        // bash started right before its children: short-lived too, but their parent.
        world.spawn(120, parent: 1, at: Self.t0 - 10 * Self.ms, exits: false)
        for pid: Int32 in 301...310 { world.spawn(pid, parent: 120, at: Self.t0 + UInt64(pid - 300) * Self.ms) }
        let found = world.attribute(cgroupPath: nil)
        #expect(found.confidence == .program)
        #expect(found.named == NamedProcess(pid: nil, comm: "sender", exe: "/opt/sender"))
        #expect(Set(found.processes.map(\.pid)) == Set(301...310))
        #expect(found.cgroup == ProcessCgroup(path: "/", unit: nil, id: 1))
    }

    @Test func theOwnersCgroupIsTheProcesssOwnAndCorrectionsAreCounted() throws {
        let ids: [String: UInt64] = [Self.scope: 4242, "/user.slice": 7]
        let world = try World(ids: ids) { proc in
            try proc.add(pid: 100, comm: "sh", cgroup: Self.scope, exe: "/usr/bin/sh")
        }
        defer { world.remove() }
        try world.proc.add(pid: 200, comm: "ping", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/ping")
        world.spawn(200, parent: 100, at: Self.t0)
        let index = CgroupIndex(nodes: [CgroupNode(id: 7, path: "/user.slice", level: 1),
                                        CgroupNode(id: 4242, path: Self.scope, level: 3)],
                                walk: { [] })
        let engine = AttributionEngine(cgroups: CgroupNames(index: index), processes: world.attributor)
        let packet = OwnerAttributorTests.packet(port: 40_000)
        let now = Self.t0 + 50 * Self.ms
        // The ruleset classified the packet at level 1 (/user.slice, id 7); ping is in the session scope.
        let owner = engine.owner(packet, direction: .outbound, uid: 1000, gid: 1000, cgroupID: 7, now: now)
        #expect(owner.attribution?.confidence == .single)
        #expect(owner.cgroupPath == Self.scope)
        #expect(owner.unit == "session-3.scope")
        #expect(owner.cgroupID == 4242)
        #expect(world.attributor.cgroupCorrections == 1)

        // In place (the pipeline's way): the same, and a cached flow is not counted again.
        var updated = PacketOwner()
        for _ in 0..<3 {
            engine.update(&updated, packet: packet, direction: .outbound, uid: 1000, gid: 1000, cgroupID: 7, now: now)
        }
        #expect(updated.cgroupPath == Self.scope)
        #expect(updated.cgroupID == 4242)
        #expect(updated.unit == "session-3.scope")
        #expect(world.attributor.cgroupCorrections == 1)

        // Classified into the process's own cgroup: no correction, the packet's id is kept.
        let exact = engine.owner(OwnerAttributorTests.packet(port: 40_001), direction: .outbound, uid: 1000,
                                 gid: 1000, cgroupID: 4242, now: now)
        #expect(exact.cgroupPath == Self.scope)
        #expect(exact.cgroupID == 4242)
        #expect(world.attributor.cgroupCorrections == 1)

        // Candidates name no process: the classification stands.
        let unknownUID = engine.owner(OwnerAttributorTests.packet(port: 40_002), direction: .outbound, uid: 1001,
                                      gid: 1001, cgroupID: 7, now: now)
        #expect(unknownUID.attribution?.confidence == .uid)
        #expect(unknownUID.cgroupPath == "/user.slice")
        #expect(unknownUID.cgroupID == 7)
        #expect(unknownUID.unit == nil)
    }

    @Test func aCorrectedCgroupWhoseIDIsUnknownHasNoID() throws {
        let world = try World(ids: [:]) { proc in
            try proc.add(pid: 100, comm: "sh", cgroup: Self.scope, exe: "/usr/bin/sh")
        }
        defer { world.remove() }
        try world.proc.add(pid: 200, comm: "ping", ppid: 100, cgroup: Self.scope, exe: "/usr/bin/ping")
        world.spawn(200, parent: 100, at: Self.t0)
        let index = CgroupIndex(nodes: [CgroupNode(id: 7, path: "/user.slice", level: 1)], walk: { [] })
        let engine = AttributionEngine(cgroups: CgroupNames(index: index), processes: world.attributor)
        var owner = PacketOwner()
        engine.update(&owner, packet: OwnerAttributorTests.packet(port: 40_000), direction: .outbound, uid: 1000,
                      gid: 1000, cgroupID: 7, now: Self.t0 + 50 * Self.ms)
        #expect(owner.cgroupPath == Self.scope)
        #expect(owner.cgroupID == nil)  // not 7: that is /user.slice's
    }

    /// An inbound packet without a uid whose socket nfowner cannot find any more (a quick
    /// transfer over before its SYN was read), classified by the kernel into the cgroup of its
    /// receiving socket: the receiver is the process there, `single`, with its uid as the
    /// owner's; an unclassified one stays `none`; a receiving process of another cgroup is not
    /// a candidate.
    @Test func anInboundPacketWithoutAUidIsTheReceiverInItsClassifiedCgroups() throws {
        let service = "/system.slice/web.service"
        let world = try World { proc in
            try proc.add(pid: 300, comm: "web", uid: 33, cgroup: service, exe: "/usr/sbin/web")
            try proc.add(pid: 400, comm: "other", uid: 1000, cgroup: Self.scope, exe: "/usr/bin/other")
        }
        defer { world.remove() }
        let now = Self.t0 + 50 * Self.ms
        let classified = world.attributor.attribute(packet: OwnerAttributorTests.packet(port: 41_000), direction: .inbound,
                                                    uid: nil, cgroupPath: service, now: now)
        #expect(classified.confidence == .single)
        #expect(classified.processes.map(\.pid) == [300])
        #expect(classified.uid == 33)
        #expect(classified.reason?.hasPrefix("the only process in \(service), where the kernel found its socket") == true,
                "\(classified.reason ?? "nil")")
        let unclassified = world.attributor.attribute(packet: OwnerAttributorTests.packet(port: 41_001), direction: .inbound,
                                                      uid: nil, cgroupPath: nil, now: now)
        #expect(unclassified.confidence == .none)
        #expect(unclassified.processes.isEmpty && unclassified.uid == nil)
    }

    /// Several receivers in the cgroup: one program's processes are that `program` with their
    /// shared uid; mixed programs are `candidates`, still with the uid they share.
    @Test func inboundReceiversInOneCgroupAreAProgramOrCandidates() throws {
        let service = "/system.slice/web.service"
        let world = try World { proc in
            try proc.add(pid: 300, comm: "web", uid: 33, cgroup: service, exe: "/usr/sbin/web")
            try proc.add(pid: 301, comm: "web", uid: 33, cgroup: service, exe: "/usr/sbin/web")
            try proc.add(pid: 500, comm: "worker", uid: 33, cgroup: "/system.slice/jobs.service", exe: "/usr/bin/worker")
            try proc.add(pid: 501, comm: "helper", uid: 33, cgroup: "/system.slice/jobs.service", exe: "/usr/bin/helper")
        }
        defer { world.remove() }
        let now = Self.t0 + 50 * Self.ms
        let program = world.attributor.attribute(packet: OwnerAttributorTests.packet(port: 41_002), direction: .inbound,
                                                 uid: nil, cgroupPath: service, now: now)
        #expect(program.confidence == .program)
        #expect(Set(program.processes.map(\.pid)) == [300, 301])
        #expect(program.uid == 33)
        let mixed = world.attributor.attribute(packet: OwnerAttributorTests.packet(port: 41_003), direction: .inbound,
                                               uid: nil, cgroupPath: "/system.slice/jobs.service", now: now)
        #expect(mixed.confidence == .candidates)
        #expect(Set(mixed.processes.map(\.pid)) == [500, 501])
        #expect(mixed.uid == 33)
    }
}
