// What a monitor does with an nfowner table it finds already installed: adopt it (use it, and
// follow cgroups in it), remove it at exit or leave it, or refuse to start. Pure: the comment
// and the liveness of its installer are looked up by the caller and passed in, so every case is
// a unit test.
//
//   installed by                      uses it   follows   removes at exit   start-up line
//   this run (same pid and start)     yes       yes       yes (*)           "installed … by this monitor"
//   `rules install` / no installer    yes       yes       no                "using … installed by `nfowner rules install`"
//   `monitor --keep-rules`            yes       yes       no                "using … kept by …"
//   a monitor no longer running       yes       yes       yes (*)           "adopted … left by monitor pid 812 (not running)"
//   a monitor still running           NO: an error naming the pid; stop that monitor first
//   an installer unknown to us        yes       yes       no                "using … installed by 'x' (unknown …)"
//   not nfowner's comment             yes       no        no                "using … as it is"
//
//   (*) unless this run was given --keep-rules.

import Foundation

/// Who holds the installed table, as far as this run can tell.
public enum TableHolder: Sendable, Equatable {
    case thisRun
    /// `rules install`, or a comment that records no installer (an older nfowner wrote it).
    case rulesInstall
    case keptMonitor
    case runningMonitor(ProcessStamp)
    case exitedMonitor(ProcessStamp)
    case unrecognized(String)
    /// The table has no nfowner comment: made by hand, or by an nfowner without a content hash.
    case notNfowner

    /// Classifies a table by its comment (nil: none that is nfowner's). `me` is this process;
    /// `isRunning` says whether a stamp's process still runs (same pid AND same start time).
    public static func classify(_ comment: TableComment?, me: ProcessStamp?,
                                isRunning: (ProcessStamp) -> Bool) -> TableHolder {
        guard let comment else { return .notNfowner }
        switch comment.installer {
        case nil, .rulesInstall?: return .rulesInstall
        case .keptMonitor?: return .keptMonitor
        case .unrecognized(let value)?: return .unrecognized(value)
        case .monitor(let stamp)?:
            if stamp == me { return .thisRun }
            return isRunning(stamp) ? .runningMonitor(stamp) : .exitedMonitor(stamp)
        }
    }
}

/// The decision for an installed table.
public struct TableAdoption: Sendable, Equatable {
    /// False: the table is another running monitor's; do not start (see `refusal`).
    public var uses: Bool
    /// Whether this run may keep the table's cgroup maps current (map elements and per-cgroup
    /// chains only; nothing else in the table is changed).
    public var follows: Bool
    /// Whether this run deletes the table when it exits.
    public var removesAtExit: Bool
    public var holder: TableHolder

    /// Decides for `holder`; `keepOnExit` is the run's `--keep-rules`.
    public static func decide(_ holder: TableHolder, keepOnExit: Bool) -> TableAdoption {
        switch holder {
        case .thisRun, .exitedMonitor:
            return TableAdoption(uses: true, follows: true, removesAtExit: !keepOnExit, holder: holder)
        case .rulesInstall, .keptMonitor, .unrecognized:
            return TableAdoption(uses: true, follows: true, removesAtExit: false, holder: holder)
        case .runningMonitor:
            return TableAdoption(uses: false, follows: false, removesAtExit: false, holder: holder)
        case .notNfowner:
            return TableAdoption(uses: true, follows: false, removesAtExit: false, holder: holder)
        }
    }

    /// The one start-up line: whose table it is, whether cgroups are followed (`following`
    /// describes that, e.g. "following cgroups" or "not following cgroups: …"), and what happens
    /// to it at exit. Nil when the table is refused (`refusal` has the error).
    public func startLine(table: String, following: String) -> String? {
        let fate = removesAtExit ? "it is removed on exit" : "it stays installed"
        let kept = removesAtExit ? "" : " (--keep-rules)"
        switch holder {
        case .thisRun:
            return "using \(table), installed by this monitor; \(following); \(fate)\(kept)"
        case .rulesInstall:
            return "using \(table) installed by `nfowner rules install`; \(following); \(fate)"
        case .keptMonitor:
            return "using \(table) kept by `nfowner monitor --keep-rules`; \(following); \(fate)"
        case .exitedMonitor(let stamp):
            return "adopted \(table) left by monitor pid \(stamp.pid) (not running); \(following); \(fate)\(kept)"
        case .unrecognized(let value):
            return "using \(table) installed by '\(NftText.printable(value))' (an installer this version does not know); "
                + "\(following); \(fate)"
        case .notNfowner:
            return "using \(table) as it is: its comment is not nfowner's (made by hand or by an older nfowner); "
                + "\(following); \(fate)"
        case .runningMonitor:
            return nil
        }
    }

    /// Why the run cannot start, when `uses` is false: names the running monitor and the fix.
    /// `command` is the process name, when known.
    public func refusal(table: String, command: String?) -> String? {
        guard case .runningMonitor(let stamp) = holder else { return nil }
        let who = command.map { "pid \(stamp.pid) \($0)" } ?? "pid \(stamp.pid)"
        return "cannot use \(table): another monitor still running holds it (\(who)); it follows cgroups in the "
            + "table and removes it when it exits. Stop that monitor first (kill \(stamp.pid)), then start this one"
    }
}

extension ProcessStamp {
    /// This process, or nil when /proc/self/stat cannot be read.
    public static func current(procRoot: String = "/proc") -> ProcessStamp? {
        let pid = getpid()
        return read(pid: pid, procRoot: procRoot)
    }

    /// The process with this pid now (pid and start time), or nil when there is none.
    public static func read(pid: Int32, procRoot: String = "/proc") -> ProcessStamp? {
        guard let text = try? String(contentsOfFile: "\(procRoot)/\(pid)/stat", encoding: .utf8),
              let start = startTicks(fromStat: text) else { return nil }
        return ProcessStamp(pid: pid, startTicks: start)
    }

    /// Whether this very process still runs: its pid exists with the same start time (a reused
    /// pid has another). A zombie still counts as running: it has not finished exiting.
    public func isRunning(procRoot: String = "/proc") -> Bool {
        Self.read(pid: pid, procRoot: procRoot) == self
    }

    /// /proc/PID/comm, trimmed, or nil.
    public func command(procRoot: String = "/proc") -> String? {
        guard let comm = try? String(contentsOfFile: "\(procRoot)/\(pid)/comm", encoding: .utf8) else { return nil }
        let trimmed = comm.trimmingCharacters(in: .whitespacesAndNewlines)
        return trimmed.isEmpty ? nil : trimmed
    }
}
