import ArgumentParser
import Capture
import Export
import NetfilterSystem
import PacketModel
import PacketParsing
import Session
import Sinks
import Synchronization

struct CaptureCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "capture",
        abstract: "Write packets with their owners to a pcapng (or pcap) file, or read one back.",
        discussion: """
            Writes every logged packet to FILE as pcapng: each packet carries its owner (uid, gid, \
            cgroup, unit, process) as a comment Wireshark shows and as JSON in a custom option, and \
            processes as Apple process-information blocks (see docs/capture.md). A pcapng file is \
            written around the page cache (direct I/O, 1 MiB at a time, what is new at least \
            twice a second) where its file system allows, else once per received batch; every \
            write ends on a whole block, so after a crash or SIGKILL the file is readable up to \
            its last write. Rules are handled as by `monitor`. Packets are cut \
            at --snaplen (default 128 bytes: the headers); --snaplen 65535 keeps them whole.

            --proto and --unit filter in nfowner (the ruleset still logs everything it selects); \
            --unit matches the systemd unit in the packet's cgroup path exactly.

            Reading (--read FILE) needs no root: it prints the packets with their owners, or \
            --conversations totals per process and remote endpoint. Files of other tools show \
            the owner as unknown ("-").

            Examples:
              sudo nfowner capture -w out.pcapng --count 1000
              sudo nfowner capture -w - | wireshark -k -i -
              sudo nfowner capture -w out.pcapng --proto udp --user alice --duration 60
              sudo nfowner capture -w ring.pcapng --rotate-size 100 --rotate-count 5
              nfowner capture --read out.pcapng --conversations
            """)

    @Option(name: .customShort("w"), help: ArgumentHelp("Write the capture to this file (`-` for stdout).",
                                                        valueName: "file"))
    var writePath: String?

    @Option(name: .customLong("read"), help: ArgumentHelp("Read a pcapng or pcap file and print its packets.",
                                                         valueName: "file"))
    var readPath: String?

    @Option(help: ArgumentHelp(
        "File format with -w: pcapng|pcap (pcap has no owners); output with --read: text|json. Default: pcapng / text.",
        valueName: "format"))
    var format: String?

    @Flag(help: "With --read: one line per process, remote endpoint and protocol, with packets and bytes each way.")
    var conversations = false

    @Option(help: ArgumentHelp("Stop after this many packets written.", valueName: "n"))
    var count: UInt64?

    @Option(help: ArgumentHelp("Stop after this many seconds.", valueName: "seconds"))
    var duration: UInt32?

    @Option(name: .customLong("rotate-size"), help: ArgumentHelp(
        "Start a new file when the current one reaches this many megabytes (10^6 bytes): FILE, FILE.1, ….",
        valueName: "MB"))
    var rotateSize: UInt32?

    @Option(name: .customLong("rotate-count"), help: ArgumentHelp(
        "With --rotate-size: keep at most this many files (the oldest is removed). Default: 10.", valueName: "k"))
    var rotateCount: Int?

    @Option(name: .customLong("proto"), help: ArgumentHelp(
        "Only write packets of this IP protocol: tcp, udp, icmp, icmpv6, sctp, gre, esp, ah or a number (repeatable).",
        valueName: "protocol"))
    var protocols: [String] = []

    @Option(name: .customLong("unit"), help: ArgumentHelp(
        "Only write packets whose cgroup is in this systemd unit, e.g. nginx.service (repeatable).",
        valueName: "name"))
    var units: [String] = []

    @Flag(name: .customLong("buffered-writes"), help: ArgumentHelp(
        "Write through the page cache (one write per batch) instead of with direct I/O.",
        discussion: "Direct I/O costs less CPU per packet and leaves other programs' cached files alone; it is used only for pcapng files on file systems that take it."))
    var bufferedWrites = false

    @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions

    @Flag(name: .customLong("keep-rules"), help: "Leave the ruleset this run installs in place on exit.")
    var keepRules = false

    @Flag(name: .customLong("no-rules"), help: "Do not install rules: read a group an existing ruleset logs to.")
    var noRules = false

    @Flag(name: .customLong("no-processes"), help: "Do not resolve packets to processes (pid/comm/exe); uid, gid and cgroup only.")
    var noProcesses = false

    @OptionGroup var namespace: NamespaceOption

    func validate() throws {
        switch (writePath, readPath) {
        case (nil, nil): throw ValidationError("give -w FILE to capture or --read FILE to print a capture")
        case (.some, .some): throw ValidationError("-w and --read contradict each other: pick one")
        case (.some, nil):
            if let format, CaptureSink.FileFormat(rawValue: format) == nil {
                throw ValidationError("--format with -w must be pcapng or pcap")
            }
            if conversations { throw ValidationError("--conversations goes with --read") }
        case (nil, .some):
            if let format, format != "text" && format != "json" {
                throw ValidationError("--format with --read must be text or json")
            }
        }
        if keepRules && noRules { throw ValidationError("--keep-rules and --no-rules contradict each other: pick one") }
        if count == 0 { throw ValidationError("--count must be at least 1") }
        if duration == 0 { throw ValidationError("--duration must be at least 1 second") }
        if rotateSize == 0 { throw ValidationError("--rotate-size must be at least 1 (MB)") }
        if rotateCount != nil && rotateSize == nil { throw ValidationError("--rotate-count needs --rotate-size") }
        if let rotateCount, rotateCount < 1 { throw ValidationError("--rotate-count must be at least 1") }
        if rotateSize != nil && writePath == "-" { throw ValidationError("stdout (-w -) cannot be rotated") }
        for name in protocols where Self.protocolNumber(name) == nil {
            throw ValidationError("--proto \(name): not a protocol name (tcp, udp, icmp, icmpv6, sctp, gre, esp, ah) or number")
        }
    }

    /// How the file is written, for the start note: a file system that refuses O_DIRECT is named.
    static func writeMode(_ sink: CaptureSink, path: String) -> String {
        if path == "-" { return "" }
        if sink.writesDirectly { return " (direct I/O)" }
        if sink.format == .pcapng && sink.directWrites {
            return " (through the page cache: its file system does not take direct I/O)"
        }
        return " (through the page cache)"
    }

    static func protocolNumber(_ name: String) -> UInt8? {
        switch name.lowercased() {
        case "tcp": IPProtocolNumber.tcp
        case "udp": IPProtocolNumber.udp
        case "icmp": IPProtocolNumber.icmp
        case "icmpv6", "ipv6-icmp": IPProtocolNumber.icmpv6
        case "sctp": IPProtocolNumber.sctp
        case "gre": IPProtocolNumber.gre
        case "esp": IPProtocolNumber.esp
        case "ah": IPProtocolNumber.ah
        case "udplite": IPProtocolNumber.udpLite
        default: UInt8(name)
        }
    }

    func run() throws {
        if let readPath {
            try CaptureReading.print(path: readPath, json: format == "json", conversations: conversations)
            return
        }
        guard let writePath else { return }
        let plan = try ruleset.plan(follow: !noRules)
        let filter = CaptureSink.Filter(protocols: Set(protocols.compactMap(Self.protocolNumber)), units: Set(units))
        let sink = CaptureSink(
            path: writePath == "-" ? nil : writePath,
            format: format.flatMap(CaptureSink.FileFormat.init(rawValue:)) ?? .pcapng,
            snapLength: 0, filter: filter, limit: count,
            rotateBytes: rotateSize.map { Int($0) * 1_000_000 }, rotateCount: rotateCount ?? 10,
            directWrites: !bufferedWrites)
        let stop = StopHandle()
        sink.onLimit = { stop.stop() }
        var options = SessionOptions(
            plan: plan, rules: noRules ? .none : .installIfAbsent(keepOnExit: keepRules),
            sinks: [sink],
            processes: noProcesses ? nil : ProcessResolutionSettings(),
            report: note)
        options.namespace = namespace.name
        options.summarySuffix = { " written=\(sink.packetsWritten) files=\(sink.filesStarted)" }
        let duration = duration
        do {
            try Session(options).run(onReady: { ready in
                stop.set(ready.stop)
                if let duration {
                    _ = try DedicatedThread(name: "capture-timer") {
                        ChildProcess.sleep(milliseconds: Int(duration) * 1000)
                        ready.stop()
                    }
                }
                note("capturing NFLOG group\(ready.groups.count > 1 ? "s" : "") "
                     + ready.groups.map(String.init).joined(separator: ",")
                     + " to \(writePath == "-" ? "stdout" : writePath)\(Self.writeMode(sink, path: writePath)); stop with Ctrl-C")
            })
        } catch {
            throw UserFacingError(error.description)
        }
    }
}

/// `ready.stop`, once the session is ready; a stop asked for before that is kept and done then.
final class StopHandle: Sendable {
    private let state = Mutex<(stop: (@Sendable () -> Void)?, requested: Bool)>((nil, false))

    func set(_ stop: @escaping @Sendable () -> Void) {
        let requested = state.withLock { state in
            state.stop = stop
            return state.requested
        }
        if requested { stop() }
    }

    func stop() {
        let stop = state.withLock { state in
            state.requested = true
            return state.stop
        }
        stop?()
    }
}
