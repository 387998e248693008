// The root command, the options every mode shares (--uid, --gid, --quiet), privilege dropping, and the one
// machine-readable result line each mode prints at the end. Keys and examples: docs/traffic-generator.md.
import ArgumentParser
import Glibc
import NetfilterSystem

struct Traffic: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "nfowner-traffic",
        abstract: "Generate attributable test traffic for nfowner's end-to-end tests and benchmarks.",
        discussion: """
            Every mode prints one result line of key=value pairs on stdout when it ends, e.g.
            mode=udp sent=3 bytes=192 errors=0 pid=1234 uid=65534 gid=65534 local=127.0.0.1:40211 elapsed_ns=123456
            Send traffic only to loopback or to addresses inside a network namespace you created.
            """,
        subcommands: [UDP.self, TCP.self, Ping.self, Raw.self, Listen.self, Roundtrip.self, BurstExit.self]
    )
}

/// Options of every mode.
struct CommonOptions: ParsableArguments {
    @Option(help: "Switch to this user id before opening any socket (needs root).")
    var uid: UInt32?

    @Option(help: "Switch to this group id (and drop supplementary groups) before opening any socket (needs root).")
    var gid: UInt32?

    @Flag(help: "Do not print warnings about counted (non-fatal) errors on stderr.")
    var quiet = false

    /// Drops to --gid/--uid: setgroups(0) → setgid → setuid, in that order because each step needs the
    /// privilege the next one removes. Sockets opened afterwards carry these ids, which is what NFLOG reports
    /// (the socket's creator credentials, fixed at socket creation).
    /// Throws `.privileges` when a step fails or did not take.
    func dropPrivileges() throws(TrafficError) {
        guard uid != nil || gid != nil else { return }
        guard setgroups(0, nil) == 0 else {
            throw failure("setgroups(0)", Glibc.errno, hint: "--uid/--gid need root")
        }
        if let gid {
            guard setgid(gid) == 0 else { throw failure("setgid(\(gid))", Glibc.errno, hint: nil) }
        }
        if let uid {
            guard setuid(uid) == 0 else { throw failure("setuid(\(uid))", Glibc.errno, hint: nil) }
        }
        // Verify rather than trust: a silent partial drop would make every attribution test meaningless.
        if let uid, getuid() != uid || geteuid() != uid {
            throw TrafficError(.privileges, "setuid(\(uid)) did not take: uid=\(getuid()) euid=\(geteuid())")
        }
        if let gid, getgid() != gid || getegid() != gid {
            throw TrafficError(.privileges, "setgid(\(gid)) did not take: gid=\(getgid()) egid=\(getegid())")
        }
        if getgroups(0, nil) != 0 {
            throw TrafficError(.privileges, "setgroups(0) did not take: still \(getgroups(0, nil)) supplementary groups")
        }
        // setuid as root also sets the saved uid; if root could be regained, the drop was not real.
        if let uid, uid != 0, setuid(0) == 0 {
            throw TrafficError(.privileges, "dropped to uid \(uid) but could regain root; refusing to continue")
        }
    }

    private func failure(_ call: String, _ code: Int32, hint: String?) -> TrafficError {
        let suffix = hint.map { " (\($0); running as uid \(getuid()))" } ?? ""
        return TrafficError(.privileges, "cannot drop privileges: \(call) failed: \(Errno.describe(code))\(suffix)",
                            errno: code)
    }

    /// A warning about a counted error; once per errno per run so `--max` cannot flood stderr.
    func warn(_ message: String) {
        if !quiet { printError("warning: \(message)") }
    }
}

/// Counts soft send errors and warns once per distinct errno.
struct ErrorTally {
    private(set) var count = 0
    private var warned: Set<Int32> = []

    mutating func record(_ error: SystemError, _ context: String, _ options: CommonOptions) {
        count += 1
        if warned.insert(error.code).inserted {
            options.warn("\(context): \(error.text) (counted in errors=, further ones not shown)")
        }
    }
}

/// The one result line a mode prints at the end:
/// `mode=M <mode keys…> pid=P uid=U gid=G local=ADDR:PORT elapsed_ns=N`.
struct ResultLine {
    private var fields: [String]

    init(mode: String) { fields = ["mode=\(mode)"] }

    mutating func add(_ key: String, _ value: some CustomStringConvertible) {
        fields.append("\(key)=\(value)")
    }

    /// Appends the keys every mode shares and prints the line, flushed. `local` is "-" when no socket got an
    /// address; uid/gid are the ids the process ran with (after --uid/--gid).
    func emit(local: SocketAddress?, startedAt start: UInt64) {
        let elapsed = Monotonic.now() - start
        var line = fields
        line.append("pid=\(getpid())")
        line.append("uid=\(getuid())")
        line.append("gid=\(getgid())")
        line.append("local=\(local.map(\.description) ?? "-")")
        line.append("elapsed_ns=\(elapsed)")
        printLine(line.joined(separator: " "))
    }
}

/// A payload of `size` bytes with a recognisable pattern (0, 1, 2, … wrapping), easy to spot in a capture.
func patternPayload(size: Int) -> [UInt8] {
    (0..<size).map { UInt8(truncatingIfNeeded: $0) }
}

/// Shared validation of a seconds option.
func validateSeconds(_ value: Double?, _ name: String) throws {
    if let value, !(value.isFinite && value > 0 && value <= maximumSeconds) {
        throw ValidationError("--\(name) must be > 0 and at most \(Int(maximumSeconds)) seconds")
    }
}
