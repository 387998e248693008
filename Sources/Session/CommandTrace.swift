import Attribution
import NetfilterSystem
import PacketModel
import Setup
import Sinks

/// `nfowner trace -- COMMAND`: a cgroup of the trace's own, a table that logs exactly that
/// cgroup, the command started in it once everything listens, and a session that ends one flush
/// interval after the command does.
public struct CommandTrace {
    public var command: [String]
    /// Run the command as this user and group (nil: as root).
    public var identity: (uid: UInt32, gid: UInt32)?
    public var snaplen: UInt32 = 128
    public var input = false
    public var namespace: String?
    public var processes = ProcessResolutionSettings()
    /// Where the packets go besides the closing summary (text or JSON lines, or nothing).
    public var sinks: [any PacketSink] = []
    public var report: (String) -> Void

    public init(command: [String], report: @escaping (String) -> Void) {
        self.command = command
        self.report = report
    }

    /// Runs the command under the trace and returns its exit status. The closing table and the
    /// summary line go to stderr.
    public func run() throws(SessionError) -> Int32 {
        guard let program = command.first else { throw SessionError("give the command to trace after --") }
        let mount: CgroupMount
        do { mount = try CgroupMount.current() } catch { throw SessionError("\(error)") }
        let ownPID = ProcessIdentity.processID
        let cgroup: TemporaryCgroup
        do { cgroup = try TemporaryCgroup.create("/nfowner-trace-\(ownPID)", under: mount) } catch {
            throw SessionError(error.description)
        }
        defer { cgroup.remove().map(report) }

        let plan = Planner.tracePlan(cgroup: cgroup.node, mount: mount, tableName: "nfowner_trace_\(ownPID)",
                                     group: UInt16(30_000 + Int(ownPID) % 20_000), snaplen: snaplen, input: input)
        let summary = TrafficSummarySink()
        var options = SessionOptions(plan: plan, rules: .installOwn, sinks: sinks + [summary],
                                     processes: processes, report: report)
        options.namespace = namespace
        options.groupSearch = 16
        options.summaryHasDuration = false
        nonisolated(unsafe) var status: Int32 = 0
        options.summarySuffix = { " exit_status=\(status)" }
        let flushMilliseconds = Int(plan.nflog.flushTimeout) * 10

        // Into the cgroup first, then drop privileges, then exec: no packet leaves outside it.
        var wrapper = ["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", cgroup.directory]
        if let identity {
            wrapper += ["setpriv", "--reuid=\(identity.uid)", "--regid=\(identity.gid)", "--init-groups"]
        }
        wrapper += command
        nonisolated(unsafe) var child: Int32?
        nonisolated(unsafe) var waiter: DedicatedThread?
        let session = Session(options)
        try session.run { ready in
            // Everything that reads packets is ready: the process table is seeded and
            // listening, so even the command's first, shortest child is seen.
            let pid: Int32
            do { pid = try ChildProcess.spawn("/bin/sh", wrapper) } catch {
                throw SessionError("cannot start \(program): \(error)")
            }
            child = pid
            report("tracing \(command.joined(separator: " ")) (pid \(pid)) in cgroup \(cgroup.node.path), "
                   + "NFLOG group \(ready.groups.map(String.init).joined(separator: ","))")
            // When the command ends, give the kernel one flush interval to deliver its last packets.
            waiter = try? DedicatedThread(name: "nfowner-wait") {
                status = ChildProcess.wait(for: pid)
                ChildProcess.sleep(milliseconds: flushMilliseconds + 100)
                ready.stop()
            }
        } beforeSummary: { ending in
            // A Ctrl-C reached the command too (same terminal); make sure it ends, then finish.
            if case .signal(let number) = ending, let child { ChildProcess.send(number, to: child) }
            waiter?.join()
            try? OutputDescriptor.standardError.write(summary.summary.render())
        }
        return status
    }
}
