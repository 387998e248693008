import CNetfilter
import Glibc

/// Runs a program to completion with posix_spawn, feeding stdin and capturing stdout/stderr.
///
/// Not Foundation's `Process`: on Linux it wakes its run loop with a 1-byte UDP datagram over
/// 127.0.0.1 (CoreFoundation's CFSocket), so every nft call nfowner made would put a stray
/// packet on the user's loopback — and into nfowner's own log. Here: pipes, poll, waitpid.
public enum ChildProcess {
    public struct Outcome: Sendable, Equatable {
        /// Exit status, or 128 + signal number when the child was killed by a signal.
        public var status: Int32
        public var stdout: [UInt8]
        public var stderr: [UInt8]
    }

    /// Runs `executable` (an absolute path) with `arguments`. The child starts with default
    /// signal dispositions and an empty signal mask, whatever this process blocked or ignored.
    /// Throws only when the program cannot be started; a non-zero exit is an outcome.
    public static func run(_ executable: String, _ arguments: [String], input: [UInt8]? = nil) throws(SystemError) -> Outcome {
        let stdinPipe = try makePipe()
        let stdoutPipe = try makePipe()
        let stderrPipe = try makePipe()
        var ours: Set<Int32> = [stdinPipe.write, stdoutPipe.read, stderrPipe.read]
        var theirs: [Int32] = [stdinPipe.read, stdoutPipe.write, stderrPipe.write]
        defer { for fd in ours.union(theirs) { close(fd) } }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe.read, 0)
        posix_spawn_file_actions_adddup2(&actions, stdoutPipe.write, 1)
        posix_spawn_file_actions_adddup2(&actions, stderrPipe.write, 2)

        let pid = try startProcess(executable, arguments, actions: &actions)
        for fd in theirs { close(fd) }
        theirs.removeAll()

        var pending = input ?? []
        var written = 0
        if pending.isEmpty {
            close(stdinPipe.write)
            ours.remove(stdinPipe.write)
        }
        var stdout: [UInt8] = [], stderr: [UInt8] = []
        var open: Set<Int32> = [stdoutPipe.read, stderrPipe.read]
        var chunk = [UInt8](repeating: 0, count: 65536)
        while !open.isEmpty || ours.contains(stdinPipe.write) {
            var fds = open.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
            if ours.contains(stdinPipe.write) { fds.append(pollfd(fd: stdinPipe.write, events: Int16(POLLOUT), revents: 0)) }
            let ready = fds.withUnsafeMutableBufferPointer { poll($0.baseAddress, nfds_t($0.count), -1) }
            if ready < 0 {
                if Errno.current == EINTR { continue }
                break
            }
            for entry in fds where entry.revents != 0 {
                if entry.fd == stdinPipe.write {
                    let count = pending[written...].withUnsafeBytes { write(entry.fd, $0.baseAddress, $0.count) }
                    if count > 0 { written += count }
                    // A child that exits without reading gets EPIPE here: its status tells the story.
                    if count < 0 && Errno.current != EINTR && Errno.current != EAGAIN || written >= pending.count {
                        close(stdinPipe.write)
                        ours.remove(stdinPipe.write)
                        pending = []
                    }
                    continue
                }
                let count = chunk.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                if count > 0 {
                    if entry.fd == stdoutPipe.read { stdout += chunk[0..<count] } else { stderr += chunk[0..<count] }
                } else if count == 0 || (Errno.current != EINTR && Errno.current != EAGAIN) {
                    open.remove(entry.fd)
                }
            }
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && Errno.current == EINTR {}
        let exitStatus = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
        return Outcome(status: exitStatus, stdout: stdout, stderr: stderr)
    }

    /// Initializes `attributes` so the child starts with default dispositions for the signals
    /// nfowner blocks or ignores, and an empty mask: ignored dispositions and the mask would
    /// otherwise survive exec (nft or the traced command would ignore Ctrl-C).
    private static func resetSignals(_ attributes: inout posix_spawnattr_t) {
        posix_spawnattr_init(&attributes)
        var empty = sigset_t()
        sigemptyset(&empty)
        posix_spawnattr_setsigmask(&attributes, &empty)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP] { sigaddset(&defaults, signal) }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        posix_spawnattr_setflags(&attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF))
    }

    private static func makePipe() throws(SystemError) -> (read: Int32, write: Int32) {
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else { throw SystemError(code: Errno.current, operation: "create pipe") }
        // Close-on-exec, so only the dup2'd copies reach the child (spawning happens on one thread).
        for fd in fds { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }
        return (fds[0], fds[1])
    }
}

extension ChildProcess {
    /// Starts `executable` with this process's stdin/stdout/stderr, default signal handling and
    /// an empty signal mask; returns its pid. For commands the user watches (`nfowner trace`).
    public static func spawn(_ executable: String, _ arguments: [String]) throws(SystemError) -> Int32 {
        try startProcess(executable, arguments, actions: nil)
    }

    /// posix_spawn of `executable` with default signal handling and an empty signal mask, with
    /// `actions` applied in the child (nil: the descriptors are inherited as they are).
    private static func startProcess(_ executable: String, _ arguments: [String],
                                     actions: UnsafePointer<posix_spawn_file_actions_t>?) throws(SystemError) -> Int32 {
        var attributes = posix_spawnattr_t()
        resetSignals(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        let argv = ([executable] + arguments).map { strdup($0) }
        defer { argv.forEach { free($0) } }
        var pid: pid_t = 0
        let spawned = (argv + [nil]).withUnsafeBufferPointer { list -> Int32 in
            guard let argumentList = list.baseAddress else { return EINVAL }
            return posix_spawn(&pid, executable, actions, &attributes, argumentList, environ)
        }
        guard spawned == 0 else { throw SystemError(code: spawned, operation: "start \(executable)") }
        return pid
    }

    /// Waits for child `pid` to end; returns its exit status (128 + signal when killed).
    public static func wait(for pid: Int32) -> Int32 {
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 {
            if Errno.current != EINTR { return -1 }
        }
        return status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
    }

    /// Sends `signal` to process `pid` (by pid, never by name).
    public static func send(_ signal: Int32, to pid: Int32) {
        _ = kill(pid, signal)
    }

    /// Pauses the calling thread (less when a signal arrives; see `ThreadInterrupter.sleep`).
    public static func sleep(milliseconds: Int) {
        ThreadInterrupter.sleep(nanoseconds: UInt64(max(0, milliseconds)) * 1_000_000)
    }

    /// The invoking user behind sudo (SUDO_UID/SUDO_GID), if any.
    public static var invokingUser: (uid: UInt32, gid: UInt32)? {
        guard let uidText = getenv("SUDO_UID"), let gidText = getenv("SUDO_GID"),
              let uid = UInt32(String(cString: uidText)), let gid = UInt32(String(cString: gidText)) else { return nil }
        return (uid, gid)
    }
}
