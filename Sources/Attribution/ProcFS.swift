// Reading what a process is from /proc/PID: pure parsers, and readers that take a root
// directory so tests run on fixture trees.
//
// A process can exit between any two reads (or between listing /proc and the first read): every
// reader returns nil for that, never an error — a vanished pid is the normal case, not a fault.
import Foundation

/// One process's /proc directory, as the table needs it.
public struct ProcFS: Sendable {
    /// The proc mount: "/proc", or a fixture tree.
    public let root: String
    /// USER_HZ, the unit of /proc/PID/stat times (100 on every Linux architecture since 2.6).
    public let clockTicksPerSecond: UInt64
    /// At most this many bytes of /proc/PID/cmdline are read (arguments can be megabytes).
    public static let cmdlineLimit = 4096

    public init(root: String = "/proc", clockTicksPerSecond: UInt64 = 100) {
        self.root = root
        self.clockTicksPerSecond = clockTicksPerSecond
    }

    // MARK: - Pure parsers

    /// The ids of one "Uid:" or "Gid:" line of /proc/PID/status: real, effective, saved, filesystem.
    public struct IDs: Sendable, Equatable {
        public var real: UInt32
        public var effective: UInt32
        public var saved: UInt32
        /// The id file and socket creation use (fsuid/fsgid): what NFLOG reports as a packet's owner.
        public var filesystem: UInt32

        public init(real: UInt32, effective: UInt32, saved: UInt32, filesystem: UInt32) {
            self.real = real
            self.effective = effective
            self.saved = saved
            self.filesystem = filesystem
        }
    }

    /// What /proc/PID/status says that the table uses.
    public struct Status: Sendable, Equatable {
        public var name: String?
        /// "Tgid:" — differs from the pid in the path when that pid is a thread.
        public var tgid: Int32?
        public var ppid: Int32?
        public var uid: IDs?
        public var gid: IDs?
    }

    /// Parses /proc/PID/status ("Key:\tvalue" lines). Unknown keys and malformed values are
    /// left out (nil), never fatal.
    /// Stops after the five fields it reads (they come first, within ~10 of ~60 lines): the
    /// process table reads status at every exec, racing the reaping of short-lived programs.
    public static func parseStatus(_ text: String) -> Status {
        var status = Status()
        var rest = Substring(text)
        while !rest.isEmpty {
            if status.name != nil, status.tgid != nil, status.ppid != nil, status.uid != nil, status.gid != nil { break }
            let end = rest.utf8.firstIndex(of: UInt8(ascii: "\n")) ?? rest.endIndex
            let line = rest[..<end]
            rest = end == rest.endIndex ? rest[end...] : rest[rest.utf8.index(after: end)...]
            guard let colon = line.utf8.firstIndex(of: UInt8(ascii: ":")) else { continue }
            let key = line[..<colon]
            let value = line[line.index(after: colon)...]
            switch key {
            case "Name": status.name = String(value.drop { $0 == "\t" || $0 == " " })
            case "Tgid": status.tgid = Int32(value.trimmingCharacters(in: .whitespaces))
            case "PPid": status.ppid = Int32(value.trimmingCharacters(in: .whitespaces))
            case "Uid": status.uid = parseIDs(value)
            case "Gid": status.gid = parseIDs(value)
            default: continue
            }
        }
        return status
    }

    private static func parseIDs(_ value: Substring) -> IDs? {
        let numbers = value.split(whereSeparator: { $0 == "\t" || $0 == " " }).compactMap { UInt32($0) }
        guard numbers.count == 4 else { return nil }
        return IDs(real: numbers[0], effective: numbers[1], saved: numbers[2], filesystem: numbers[3])
    }

    /// The fields of /proc/PID/stat the table uses.
    public struct Stat: Sendable, Equatable {
        /// Field 2 without its parentheses (15 bytes at most; may hold spaces and ')').
        public var comm: String
        /// Field 4.
        public var ppid: Int32
        /// Field 22: start time in clock ticks after boot (CLOCK_BOOTTIME based).
        public var startTicks: UInt64
    }

    /// Parses /proc/PID/stat. The comm field is free text in parentheses, so the fields after it
    /// are found from the LAST ')'. Returns nil when the line is not in that shape.
    public static func parseStat(_ text: String) -> Stat? {
        guard let open = text.firstIndex(of: "("), let close = text.lastIndex(of: ")"), open < close else {
            return nil
        }
        let comm = String(text[text.index(after: open)..<close])
        // After ") ": field 3 (state) is index 0, so field N is index N - 3.
        let rest = text[text.index(after: close)...].split(separator: " ", omittingEmptySubsequences: true)
        guard rest.count > 19, let ppid = Int32(rest[1]),
              let start = UInt64(rest[19].trimmingCharacters(in: .whitespacesAndNewlines))
        else { return nil }
        return Stat(comm: comm, ppid: ppid, startTicks: start)
    }

    /// The cgroup v2 path from /proc/PID/cgroup: the "0::/path" line. nil when there is none
    /// (a cgroup v1-only system).
    public static func parseCgroup(_ text: String) -> String? {
        for line in text.split(separator: "\n") where line.hasPrefix("0::") {
            let path = line.dropFirst(3)
            // A process in a cgroup that was removed (only possible for zombies) shows " (deleted)".
            return String(path.hasSuffix(" (deleted)") ? path.dropLast(10) : path)
        }
        return nil
    }

    /// /proc/PID/cmdline (NUL-separated arguments) as one line: NULs become spaces, the trailing
    /// NUL is dropped. nil for an empty cmdline (kernel threads, zombies).
    public static func parseCmdline(_ bytes: [UInt8]) -> String? {
        var trimmed = bytes[...]
        while trimmed.last == 0 { trimmed = trimmed.dropLast() }
        guard !trimmed.isEmpty else { return nil }
        return String(decoding: trimmed.map { $0 == 0 ? 0x20 : $0 }, as: UTF8.self)
    }

    // MARK: - Readers (nil when the process is gone or the file unreadable)

    /// The numeric entries of the root: every process id (threads are not listed there).
    public func pids() -> [Int32] {
        guard let names = try? FileManager.default.contentsOfDirectory(atPath: root) else { return [] }
        return names.compactMap { name in
            guard let first = name.utf8.first, first >= 0x31, first <= 0x39 else { return nil }
            return Int32(name)
        }
    }

    public func status(_ pid: Int32) -> Status? {
        read(pid, "status").map(Self.parseStatus)
    }

    public func stat(_ pid: Int32) -> Stat? {
        read(pid, "stat").flatMap(Self.parseStat)
    }

    /// /proc/PID/comm without the newline.
    public func comm(_ pid: Int32) -> String? {
        read(pid, "comm").map { $0.hasSuffix("\n") ? String($0.dropLast()) : $0 }
    }

    /// The executable (readlink /proc/PID/exe). nil for kernel threads, zombies and vanished
    /// pids, and without permission (another user's process when not root). A replaced or
    /// deleted binary keeps the kernel's " (deleted)" suffix: it is what ran.
    public func exe(_ pid: Int32) -> String? {
        try? FileManager.default.destinationOfSymbolicLink(atPath: "\(root)/\(pid)/exe")
    }

    /// The arguments, bounded to `cmdlineLimit` bytes, NULs shown as spaces.
    public func cmdline(_ pid: Int32) -> String? {
        guard let handle = FileHandle(forReadingAtPath: "\(root)/\(pid)/cmdline") else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: Self.cmdlineLimit) else { return nil }
        return Self.parseCmdline(Array(data))
    }

    public func cgroupPath(_ pid: Int32) -> String? {
        read(pid, "cgroup").flatMap(Self.parseCgroup)
    }

    /// Start time in nanoseconds after boot (CLOCK_BOOTTIME; equal to CLOCK_MONOTONIC unless
    /// the machine was suspended), with clock-tick resolution.
    public func startTime(_ pid: Int32) -> UInt64? {
        stat(pid).flatMap(startTime(of:))
    }

    /// A stat's start time in nanoseconds after boot; nil on overflow (a corrupt value).
    public func startTime(of stat: Stat) -> UInt64? {
        guard clockTicksPerSecond > 0, clockTicksPerSecond <= 1_000_000_000 else { return nil }
        let (nanoseconds, overflow) = stat.startTicks.multipliedReportingOverflow(
            by: 1_000_000_000 / clockTicksPerSecond)
        return overflow ? nil : nanoseconds
    }

    /// Small /proc text files (status is ~1.5 KiB); bounded so a fixture cannot make us read much.
    private func read(_ pid: Int32, _ file: String) -> String? {
        guard let handle = FileHandle(forReadingAtPath: "\(root)/\(pid)/\(file)") else { return nil }
        defer { try? handle.close() }
        guard let data = try? handle.read(upToCount: 64 * 1024) else { return nil }
        return String(decoding: data, as: UTF8.self)
    }
}

/// What /proc says about one process: everything `ProcFS.snapshot` read at one moment, or, as a
/// `ProcessEntry`'s `process`, that kept current by process events. Fields are nil when they could
/// not be read (the process exited part-way, or permissions).
public struct ProcessSnapshot: Sendable, Equatable {
    public var pid: Int32
    public var ppid: Int32?
    public var comm: String?
    public var exe: String?
    /// Arguments joined by spaces, at most `ProcFS.cmdlineLimit` bytes.
    public var cmdline: String?
    /// fsuid/fsgid: the ids a socket created now would carry.
    public var uid: UInt32?
    public var gid: UInt32?
    public var cgroupPath: String?
    /// Nanoseconds after boot.
    public var startTime: UInt64?

    public init(pid: Int32, ppid: Int32? = nil, comm: String? = nil, exe: String? = nil, cmdline: String? = nil,
                uid: UInt32? = nil, gid: UInt32? = nil, cgroupPath: String? = nil, startTime: UInt64? = nil) {
        self.pid = pid
        self.ppid = ppid
        self.comm = comm
        self.exe = exe
        self.cmdline = cmdline
        self.uid = uid
        self.gid = gid
        self.cgroupPath = cgroupPath
        self.startTime = startTime
    }
}

extension ProcFS {
    /// Reads everything about `pid`; nil when it is gone (or is a thread id, not a process).
    public func snapshot(_ pid: Int32) -> ProcessSnapshot? {
        guard let status = status(pid) else { return nil }
        if let tgid = status.tgid, tgid != pid { return nil }
        let stat = stat(pid)
        return ProcessSnapshot(
            pid: pid, ppid: status.ppid ?? stat?.ppid, comm: comm(pid) ?? status.name ?? stat?.comm,
            exe: exe(pid), cmdline: cmdline(pid), uid: status.uid?.filesystem, gid: status.gid?.filesystem,
            cgroupPath: cgroupPath(pid), startTime: stat.flatMap(startTime(of:)))
    }
}
