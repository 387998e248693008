import ArgumentParser
import NetfilterSystem
import Session
import Sinks

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
        var trace = CommandTrace(command: command, report: note)
        trace.identity = try resolveIdentity()
        trace.snaplen = snaplen
        trace.input = input
        trace.namespace = namespace.name
        trace.processes = ProcessResolutionSettings(flowLifetime: flowCache.lifetimeNanoseconds,
                                                    maximumFlows: flowCache.maxFlows)
        if format != .none { trace.sinks = [EventStreamSink(format: format)] }
        let status: Int32
        do { status = try trace.run() } catch { throw UserFacingError(error.description) }
        if status != 0 { throw ExitCode(status) }
    }

    private func resolveIdentity() throws -> (uid: UInt32, gid: UInt32)? {
        guard let user else { return ChildProcess.invokingUser }
        let uid = UInt32(user) ?? AccountDatabase.uid(ofUser: user)
        guard let uid else { throw ValidationError("no user named '\(user)' on this system (see `getent passwd`)") }
        let gid = AccountDatabase.primaryGroup(ofUser: uid) ?? uid
        return (uid, gid)
    }
}
