import Accounting
import ArgumentParser
import Export
import Foundation
import Monitor
import NetfilterSystem
import ProcessResolution
import Rules
import Setup

struct TraceCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trace",
        abstract: "Run a command and show every packet it (and its children) sends — like strace, for the network.",
        discussion: """
            nfowner creates a cgroup of its own, starts the command in it (as the user who ran sudo, \
            or --user), installs rules in a table of its own (`table inet nfowner_trace_<pid>`) that \
            log exactly that cgroup's packets, children included, and prints them live. When the \
            command ends it prints a summary — packets and bytes per protocol and remote endpoint, \
            and per sender — removes its rules and cgroup, and exits with the command's status.

            Examples:
              sudo nfowner trace -- curl -s https://example.org/
              sudo nfowner trace --format json -- sh -c 'ping -c1 ::1; dig example.org'
              sudo nfowner trace --user alice --input -- ./client
            """)

    @Option(help: "Output: text (aligned columns), json (JSON Lines, see docs/json-schema.md), none (summary only).")
    var format: OutputFormat = .text

    @Option(help: ArgumentHelp("Run the command as this user (name or uid). Default: the user who ran sudo, else root.",
                               valueName: "user"))
    var user: String?

    @Flag(help: "Also show packets arriving for the command's sockets.")
    var input = false

    @Option(help: ArgumentHelp("Bytes of each packet to copy. Default: 128.", valueName: "bytes"))
    var snaplen: UInt32 = 128

    @OptionGroup var flowCache: FlowCacheOptions

    @OptionGroup var namespace: NamespaceOption

    @Argument(parsing: .captureForPassthrough, help: ArgumentHelp("The command and its arguments (after --).", valueName: "command"))
    var command: [String] = []

    func validate() throws {
        if command.first == "--" { return }
        if command.isEmpty { throw ValidationError("give the command to trace after --, e.g. `nfowner trace -- curl …`") }
    }

    func run() throws {
        let command = self.command.first == "--" ? Array(self.command.dropFirst()) : self.command
        guard !command.isEmpty else { throw ValidationError("give the command to trace after --") }
        guard ProcessIdentity.isRoot else {
            throw UserFacingError("tracing needs root (it creates a cgroup and installs nftables rules): run `sudo nfowner trace -- …`")
        }
        let identity = try resolveIdentity()
        let mount: CgroupMount
        do { mount = try CgroupMount.current() } catch { throw UserFacingError("\(error)") }
        // Before entering a namespace: the process connector lives in the initial one only.
        let processEvents = OwnerResolution.subscribeToProcessEvents()
        if let name = namespace.name {
            do { try NetworkNamespace.enter(named: name) } catch { throw UserFacingError(error.description) }
        }
        let signals: TerminationSignals, wakeup: WakeupEvent
        do {
            signals = try TerminationSignals()
            wakeup = try WakeupEvent()
        } catch {
            throw UserFacingError("cannot set up signal handling: \(error)")
        }

        // The cgroup the command runs in: level 1, so the ruleset needs one map.
        let ownPID = ProcessIdentity.processID
        let cgroupPath = "/nfowner-trace-\(ownPID)"
        let cgroupDirectory = mount.directory(forHierarchyPath: cgroupPath)
        do {
            try FileManager.default.createDirectory(atPath: cgroupDirectory, withIntermediateDirectories: false)
        } catch {
            throw UserFacingError("cannot create cgroup \(cgroupDirectory): \(error.localizedDescription)")
        }
        defer { removeCgroup(cgroupDirectory) }
        let id = ((try? FileManager.default.attributesOfItem(atPath: cgroupDirectory))?[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        let node = CgroupNode(id: id, path: cgroupPath, level: 1)

        var settings = NflogSettings()
        settings.copyRange = snaplen
        // 10 ms batches: one command's traffic is small, and a short window tells its
        // short-lived children apart (a packet is matched to processes alive within it).
        settings.flushTimeout = 1
        let (subscription, group) = try subscribeToFreeGroup(settings: settings, preferred: UInt16(30_000 + Int(ownPID) % 20_000))
        var spec = RulesetSpec(tableName: "nfowner_trace_\(ownPID)", group: group, snaplen: snaplen,
                               hooks: input ? [.output, .input] : [.output],
                               cgroups: [Planner.classifier(for: node, mount: mount)], cgroupLevels: [1])
        spec.logsUnclassified = false
        let runner = NftRunner()
        do { try runner.install(spec) } catch {
            subscription.close()
            throw UserFacingError(error.description)
        }
        defer { _ = try? runner.remove(spec) }

        // Everything that reads packets is ready before the command starts: the process table
        // is seeded (a /proc scan) and listening, so even its first, shortest child is seen.
        nonisolated(unsafe) var summary = TrafficSummary()
        let writer = EventWriter(format: format)
        do { try writer.writeHeader() } catch {}
        let cgroupNames = CgroupNames(mountPoint: mount.mountPoint)
        let owners = OwnerResolution(events: processEvents, flushTimeout: settings.flushTimeout,
                                     flowLifetime: flowCache.lifetimeNanoseconds, maximumFlows: flowCache.maxFlows,
                                     report: note)
        let processor = BatchProcessor(buildsEvents: true, cgroups: cgroupNames, attributor: owners, clock: {
            let now = WallClock.now()
            return EventTime(seconds: now.seconds, microseconds: now.microseconds)
        })
        let loop = ReceiveLoop(subscription: subscription, processor: processor, writer: writer,
                               signals: signals, wakeup: wakeup, observe: { summary.add($0, owner: Self.senderLabel($0)) },
                               tick: { owners.housekeeping() })
        // Into the cgroup first, then drop privileges, then exec: no packet leaves outside it.
        var wrapper = ["-c", "echo $$ > \"$0/cgroup.procs\" && exec \"$@\"", cgroupDirectory]
        if let identity {
            wrapper += ["setpriv", "--reuid=\(identity.uid)", "--regid=\(identity.gid)", "--init-groups"]
        }
        wrapper += command
        nonisolated(unsafe) var ending = ReceiveLoop.Ending.stopRequested
        let receiver = try? DedicatedThread(name: "nfowner-recv") { ending = loop.run() }
        let child: Int32
        do { child = try ChildProcess.spawn("/bin/sh", wrapper) } catch {
            loop.requestStop()
            receiver?.join()
            subscription.close()
            throw UserFacingError("cannot start \(command[0]): \(error)")
        }
        note("tracing \(command.joined(separator: " ")) (pid \(child)) in cgroup \(cgroupPath), NFLOG group \(group)")

        // When the command ends, give the kernel one flush interval to deliver its last packets.
        nonisolated(unsafe) var status: Int32 = 0
        let waiter = try? DedicatedThread(name: "nfowner-wait") {
            status = ChildProcess.wait(for: child)
            ChildProcess.sleep(milliseconds: Int(settings.flushTimeout) * 10 + 100)
            loop.requestStop()
        }
        receiver?.join()
        if case .signal(let number) = ending {
            // Ctrl-C reached the command too (same terminal); make sure it ends, then finish.
            ChildProcess.send(number, to: child)
        }
        waiter?.join()
        owners.shutdown()
        subscription.close()
        try? OutputDescriptor.standardError.write(summary.render())
        try? OutputDescriptor.standardError.write(
            loop.counters.summaryLine(durationSeconds: 0, groups: [group]).replacingOccurrences(of: " duration_s=0.0", with: "")
                + " exit_status=\(status)\n")
        if case .failed(let reason) = ending { throw UserFacingError(reason) }
        if status != 0 { throw ExitCode(status) }
    }

    /// "curl[812]" for a known process, "ping or sh (2 candidates)" for several, else nil (the
    /// summary then labels by uid).
    static func senderLabel(_ event: PacketEvent) -> String? {
        guard let attribution = event.attribution else { return nil }
        if let chosen = attribution.chosen { return "\(chosen.comm ?? "?")[\(chosen.pid)]" }
        guard attribution.confidence == .candidates else { return nil }
        let names = Set(attribution.processes.compactMap(\.comm)).sorted().joined(separator: " or ")
        return "\(names) (\(attribution.processes.count) candidates)"
    }

    private func resolveIdentity() throws -> (uid: UInt32, gid: UInt32)? {
        guard let user else { return ChildProcess.invokingUser }
        let uid = UInt32(user) ?? AccountDatabase.uid(ofUser: user)
        guard let uid else { throw ValidationError("no user named '\(user)' on this system (see `getent passwd`)") }
        let gid = AccountDatabase.primaryGroup(ofUser: uid) ?? uid
        return (uid, gid)
    }

    /// Binds the preferred NFLOG group, or the next free one: a monitor may hold group 5 and
    /// other traces theirs.
    private func subscribeToFreeGroup(settings: NflogSettings, preferred: UInt16) throws -> (NflogSubscription, UInt16) {
        var settings = settings
        var lastError: MonitorError?
        for offset in 0..<16 {
            let group = preferred &+ UInt16(offset)
            settings.groups = [group]
            do { return (try NflogSubscription(settings: settings), group) } catch {
                lastError = error
                if case .bind(_, let errno, _) = error, errno == Errno.permissionDenied { continue }
                break
            }
        }
        throw UserFacingError(lastError?.description ?? "cannot bind an NFLOG group")
    }

    /// Ends anything the command left running in its cgroup, then removes the cgroup.
    private func removeCgroup(_ directory: String) {
        if rmdir(directory) == 0 { return }
        try? "1".write(toFile: directory + "/cgroup.kill", atomically: false, encoding: .utf8)
        for _ in 0..<50 {
            if rmdir(directory) == 0 { return }
            ChildProcess.sleep(milliseconds: 20)
        }
        note("could not remove cgroup \(directory): processes are still in it; remove it with rmdir when they exit")
    }
}
