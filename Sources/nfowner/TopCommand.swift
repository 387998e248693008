import Accounting
import ArgumentParser
import Attribution
import Configuration
import MetricsEndpoint
import Foundation
import NetfilterSystem
import Session
import Setup
import Sinks
import Synchronization
import Views

struct TopCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "top",
        abstract: "A live table of who is using the network: rates and totals per program, user, unit, cgroup or remote.",
        discussion: """
            Installs rules in a table of its own (`table inet nfowner_top_<pid>`, logging output and, \
            unless --no-input, input), reads the first free NFLOG group from 5, names every packet's \
            owner as `monitor` does — ICMP, raw sockets and programs that exited included — and \
            redraws a table every --interval seconds: the rate in and out over the last interval and \
            the totals since start, per row, sorted; the header has the rates in and out of all \
            traffic and the packets the kernel dropped before nfowner saw them. The rules go at exit.

            With --from URL it installs nothing and needs no root: it reads the totals a running \
            `nfowner run` serves at its metrics endpoint ([metrics] listen) at every refresh, so the \
            kernel logs each packet once however many views are open. Grouping by remote needs the \
            daemon's [metrics] remote_labels = true; the daemon's metrics carry units, not cgroup \
            paths, so by cgroup is not available there.

            Keys: p program, u user, s unit (systemd), c cgroup, r remote (group by); i, o, t sort by \
            rate in, rate out, total; space pauses; q or Ctrl-C quits. The terminal is restored on \
            every exit (q, Ctrl-C, SIGTERM). Colors only on a terminal, never with NO_COLOR set.

            Examples:
              sudo nfowner top                          # per program, every 2 s
              sudo nfowner top --by unit --interval 5
              sudo nfowner top --netns test1 --by remote
              sudo nfowner top --once --by user         # one plain-text table after 2 s, for scripts
              nfowner top --from http://127.0.0.1:9465  # what a running `nfowner run` counts
            """)

    @Option(help: "Group rows by program, user, unit, cgroup or remote.")
    var by: TopGrouping = .program

    @Option(help: ArgumentHelp("Seconds between refreshes (0.2 to 60); --once prints after this long.", valueName: "seconds"))
    var interval: Double = 2

    @Flag(inversion: .prefixedNo, help: "Also count packets arriving for local sockets (in).")
    var input = true

    @Flag(help: "Print one snapshot as plain text after --interval and exit (no terminal needed).")
    var once = false

    @Option(help: ArgumentHelp(
        "Read a running `nfowner run` at its metrics endpoint instead of counting here: http://ADDRESS:PORT "
            + "(e.g. http://127.0.0.1:9465, the daemon's [metrics] listen). No rules, no root.",
        valueName: "url"))
    var from: String?

    @OptionGroup var namespace: NamespaceOption

    func validate() throws {
        guard (0.2...60).contains(interval) else { throw ValidationError("--interval must be 0.2 to 60 seconds") }
        if let from {
            do { _ = try MetricsURL(from) } catch { throw ValidationError("--from \(error)") }
        }
    }

    func run() throws {
        let interactive = !once
        if interactive && !(TerminalMode.isTerminal(0) && TerminalMode.isTerminal(1)) {
            throw UserFacingError("top draws on a terminal, and stdin or stdout is not one: use `nfowner top --once` "
                                  + "for a plain-text snapshot")
        }
        if let from {
            try runFromDaemon(try MetricsURL(from), interactive: interactive)
            return
        }
        guard ProcessIdentity.isRoot else {
            throw UserFacingError("top needs root (it installs nftables rules and reads NFLOG): run `sudo nfowner top`, "
                                  + "or read a running daemon with `nfowner top --from http://127.0.0.1:9465`")
        }
        let config: NfownerConfig
        do { config = try ConfigLoader.load() } catch { throw UserFacingError(error.description) }
        var overrides = Overrides()
        if input { overrides.input = true }
        var plan = try makePlan(config: config, overrides: overrides, follow: true)
        plan.spec.tableName = "nfowner_top_\(getpid())"
        let names = plan.cgroupMount.flatMap { CgroupNames(mountPoint: $0.mountPoint) }
        let sink = AccountingSink(
            limits: .init(bucketSeconds: 3600, maxRemotes: 1000, remoteLabels: true, cgroupLabels: true),
            userName: AccountDatabase.userName(of:),
            cgroupName: { id in names?.entry(forID: id).map { ($0.path, $0.unit) } }, deliver: { _ in })
        // While the table is on screen, notes wait and are printed after it.
        let held = Mutex<(onScreen: Bool, notes: [String])>((false, []))
        var options = SessionOptions(
            plan: plan, rules: .installOwn, sinks: [sink], processes: ProcessResolutionSettings(),
            report: { text in
                let now = held.withLock { state -> Bool in
                    if state.onScreen { state.notes.append(text) }
                    return !state.onScreen
                }
                if now { note(text) }
            })
        options.namespace = namespace.name
        options.groupSearch = 16
        // SIGHUP is a hung-up terminal here, not a reload: quit, putting it back as far as it goes.
        let stopSession = Mutex<(@Sendable () -> Void)?>(nil)
        options.reload = { stopSession.withLock { $0 }?() }
        let session = Session(options)
        sink.lostPackets = { [weak session] in session?.counters.source.lost ?? 0 }
        let view = try LiveTable(feed: { [weak session] in
                                     TopReading(snapshot: sink.published.withLock { $0 }, lost: session?.counters.source.lost ?? 0)
                                 },
                                 settleSeconds: 0.6, grouping: by, intervalSeconds: interval, color: Self.color)
        defer {
            view.stop()
            let notes = held.withLock { state in
                state.onScreen = false
                return state.notes
            }
            notes.forEach(note)
        }
        do {
            try session.run(onReady: { ready in
                stopSession.withLock { $0 = ready.stop }
                if interactive {
                    held.withLock { $0.onScreen = true }
                    try view.startInteractive(stop: ready.stop)
                } else {
                    try view.startOnce(stop: ready.stop)
                }
            })
        } catch {
            throw UserFacingError(error.description)
        }
    }

    static var color: Bool { TerminalMode.isTerminal(1) && ProcessInfo.processInfo.environment["NO_COLOR"] == nil }

    /// `--from`: the daemon's totals at each refresh; until q, Ctrl-C, SIGINT, SIGTERM or a
    /// hung-up terminal (SIGHUP).
    private func runFromDaemon(_ url: MetricsURL, interactive: Bool) throws {
        // Before any thread starts, so that every thread inherits the blocked signals.
        let signals: TerminationSignals
        do { signals = try TerminationSignals() } catch { throw UserFacingError(error.description) }
        defer { signals.close() }
        if let name = namespace.name {
            do { try NetworkNamespace.enter(named: name) } catch { throw UserFacingError(error.description) }
        }
        let feed = DaemonFeed(url: url)
        let first = feed.read()
        if let problem = first.notice, first.takenAt == nil { throw UserFacingError(problem) }
        let finished = try WakeupEvent()
        defer { finished.close() }
        let view = try LiveTable(feed: { feed.read() }, settleSeconds: 0, grouping: by, intervalSeconds: interval,
                                 color: Self.color, first: first)
        defer { view.stop() }
        if interactive {
            try view.startInteractive(stop: { finished.signal() })
        } else {
            try view.startOnce(stop: { finished.signal() })
        }
        while true {
            let ready = try waitReadable([signals.descriptor, finished.descriptor], timeoutMilliseconds: -1)
            if ready.contains(finished.descriptor) { return }
            if ready.contains(signals.descriptor), signals.take() != nil { return }
        }
    }
}

extension TopGrouping: ExpressibleByArgument {}

/// What the live view shows at one refresh: the running totals, the packets lost, when they
/// were taken (monotonic ns; nil when the feed has no clock of its own), and what to say
/// about them.
struct TopReading: Sendable {
    var snapshot: AccountingSnapshot
    var lost: UInt64
    var takenAt: UInt64? = nil
    var notice: String? = nil
    /// Groupings the feed cannot fill, and why.
    var unavailable: [TopGrouping: String] = [:]
}

/// A running daemon's totals, read from its metrics endpoint at each call. When a read fails,
/// the last figures stay on screen with the reason; the next read tries again.
final class DaemonFeed: Sendable {
    private let url: MetricsURL
    private let state = Mutex<(reader: MetricsSnapshotReader, last: TopReading?)>((MetricsSnapshotReader(), nil))

    init(url: MetricsURL) { self.url = url }

    func read() -> TopReading {
        let problem: String
        var brief: String?
        do {
            let samples = try ExpositionText.samples(try MetricsClient.fetch(url))
            let takenAt = WallClock.monotonicNanoseconds()
            return try state.withLock { state throws -> TopReading in
                let reading = try state.reader.read(samples)
                var unavailable: [TopGrouping: String] = [:]
                if !reading.hasCgroups { unavailable[.cgroup] = "by cgroup: the daemon's metrics carry units, not cgroup paths (press s)" }
                if !reading.hasRemotes {
                    unavailable[.remote] = "by remote: the daemon's metrics have no remote label; set [metrics] remote_labels = true"
                }
                let result = TopReading(snapshot: reading.snapshot, lost: reading.lostPackets, takenAt: takenAt,
                                        unavailable: unavailable)
                state.last = result
                return result
            }
        } catch let error as MetricsClient.ScrapeError {
            problem = error.description
            brief = error.reason
        } catch let error as ExpositionParseError {
            problem = "cannot read \(url): not the metrics text format (\(error))"
        } catch {
            problem = "cannot read \(url): it serves no nfowner metrics; is it the daemon's [metrics] listen address?"
        }
        return state.withLock { state in
            guard var last = state.last else {
                return TopReading(snapshot: AccountingSnapshot(), lost: 0, notice: problem)
            }
            // The figures on screen are the last ones read: say so first, the width may cut the rest.
            last.notice = "old figures: " + (brief ?? problem)
            return last
        }
    }
}

/// The view's thread: snapshots of the totals every interval, keys, drawing, and the terminal
/// put back however the run ends.
final class LiveTable: @unchecked Sendable {
    private let feed: @Sendable () -> TopReading
    /// How long after the interval the feed's figures are up to date (a sink publishes at its
    /// next tick).
    private let settleSeconds: Double
    private let intervalSeconds: Double
    private let color: Bool
    private var grouping: TopGrouping
    private var sort = TopSort.rateOut
    private var paused = false
    private var previous: TopReading?
    private var current: TopReading
    private var thread: DedicatedThread?
    private var terminal: TerminalMode?
    private let wakeup: WakeupEvent
    private let stopped = Mutex(false)

    /// `first`: a reading already taken (the first figures on screen); else one is taken now.
    init(feed: @escaping @Sendable () -> TopReading, settleSeconds: Double, grouping: TopGrouping, intervalSeconds: Double,
         color: Bool, first: TopReading? = nil) throws {
        self.feed = feed
        self.settleSeconds = settleSeconds
        self.grouping = grouping
        self.intervalSeconds = intervalSeconds
        self.color = color
        current = first ?? TopReading(snapshot: AccountingSnapshot(), lost: 0)
        wakeup = try WakeupEvent()
    }

    /// The frame of the readings now held, rates over the time between them.
    private func frame() -> TopFrame {
        var seconds = intervalSeconds + settleSeconds
        if let before = previous?.takenAt, let now = current.takenAt, now > before { seconds = Double(now - before) / 1e9 }
        var frame = TopFrame(current: current.snapshot, previous: previous?.snapshot, seconds: seconds,
                             grouping: grouping, sort: sort, lostPackets: current.lost)
        frame.notice = current.notice ?? current.unavailable[grouping]
        return frame
    }

    /// One plain table after the interval, on stdout; then `stop`.
    func startOnce(stop: @escaping @Sendable () -> Void) throws {
        if current.takenAt == nil { current = feed() }
        previous = current
        thread = try DedicatedThread(name: "nfowner-top") { [self] in
            _ = try? waitReadable([wakeup.descriptor], timeoutMilliseconds: Int32(intervalSeconds * 1000))
            if settleSeconds > 0 { usleep(UInt32(settleSeconds * 1e6)) }
            current = feed()
            let frame = frame()
            let width = TerminalMode.size(of: 1)?.columns ?? 100
            let lines = frame.render(width: width, height: Int.max, color: false, paused: false, interactive: false)
            try? OutputDescriptor.standardOutput.write(lines.joined(separator: "\n") + "\n")
            stop()
        }
    }

    /// The full-screen table until q or Ctrl-C (then `stop`), or until `stop()` is called.
    func startInteractive(stop: @escaping @Sendable () -> Void) throws {
        terminal = try TerminalMode(keysFrom: 0)
        // The alternate screen, cursor hidden: the shell's screen comes back as it was.
        try? OutputDescriptor.standardOutput.write("\u{1B}[?1049h\u{1B}[?25l")
        if current.takenAt == nil { current = feed() }
        previous = nil
        thread = try DedicatedThread(name: "nfowner-top") { [self] in
            var nextRefresh = WallClock.monotonicNanoseconds() + UInt64(intervalSeconds * 1e9)
            var size = TerminalMode.size(of: 1)
            draw(size: size)
            while !(stopped.withLock { $0 }) {
                let ready = (try? waitReadable([0, wakeup.descriptor], timeoutMilliseconds: 100)) ?? []
                if ready.contains(wakeup.descriptor) { break }
                var redraw = false
                if ready.contains(0) {
                    // The terminal hung up (its window closed): nothing to draw on any more.
                    guard let keys = terminal?.readKeys() else {
                        stop()
                        return
                    }
                    for key in keys {
                        if key == UInt8(ascii: "q") || key == 3 {
                            stop()
                            return
                        }
                        if key == UInt8(ascii: " ") { paused.toggle() }
                        if let chosen = TopGrouping.allCases.first(where: { UInt8(ascii: $0.key.unicodeScalars.first!) == key }) {
                            grouping = chosen
                        }
                        if let chosen = TopSort.allCases.first(where: { UInt8(ascii: $0.key.unicodeScalars.first!) == key }) {
                            sort = chosen
                        }
                        redraw = true
                    }
                }
                let now = WallClock.monotonicNanoseconds()
                if now >= nextRefresh {
                    nextRefresh = now + UInt64(intervalSeconds * 1e9)
                    if !paused {
                        previous = current
                        current = feed()
                        redraw = true
                    }
                }
                let newSize = TerminalMode.size(of: 1)
                if newSize?.rows != size?.rows || newSize?.columns != size?.columns {
                    size = newSize
                    redraw = true
                }
                if redraw { draw(size: size) }
            }
        }
    }

    private func draw(size: (rows: Int, columns: Int)?) {
        let lines = frame().render(width: size?.columns ?? 80, height: size?.rows ?? 24, color: color, paused: paused,
                                 interactive: true)
        // Home, each line cleared to its end, the rest of the screen cleared.
        try? OutputDescriptor.standardOutput.write("\u{1B}[H" + lines.joined(separator: "\u{1B}[K\r\n") + "\u{1B}[K\u{1B}[J")
    }

    /// Ends the view's thread and puts the terminal back (any thread; more than once is fine).
    func stop() {
        let first = stopped.withLock { state -> Bool in
            defer { state = true }
            return !state
        }
        guard first else { return }
        wakeup.signal()
        thread?.join()
        thread = nil
        if let terminal {
            try? OutputDescriptor.standardOutput.write("\u{1B}[?25h\u{1B}[?1049l")
            terminal.restore()
            self.terminal = nil
        }
    }
}
