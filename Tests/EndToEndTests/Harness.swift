import Foundation
import TestSupport
import Testing

/// Every root end-to-end suite is nested here: they run one at a time (timing matters to
/// some — a short-lived process must be seen before it is reaped — and the machine has 2
/// cores), while unit tests in other targets still run in parallel.
@Suite(.serialized) enum EndToEnd {}

/// Shared machinery for the end-to-end tests: real binaries, real namespaces, real kernel.
enum Harness {
    static let isRoot = getuid() == 0
    static let rootReason: Comment = "needs root: creates network namespaces and binds NFLOG groups"

    /// The directory holding the built executables: the test bundle sits next to them.
    static let binDirectory: URL = {
        URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().deletingLastPathComponent()
    }()
    static var nfowner: String { binDirectory.appendingPathComponent("nfowner").path }
    static var traffic: String { binDirectory.appendingPathComponent("nfowner-traffic").path }

    /// The unprivileged identity traffic is sent as (nobody/nogroup on Debian).
    static let unprivilegedUID: UInt32 = 65534
    static let unprivilegedGID: UInt32 = 65534

    typealias Result = CommandResult

    /// Runs a command to completion and captures its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> Result {
        try Command.run(executable, arguments, input: input)
    }

    /// Parses `key=value key=value` lines (the monitor summary, the traffic tool's result line).
    static func keyValues(_ line: String) -> [String: String] {
        var result: [String: String] = [:]
        for field in line.split(whereSeparator: { $0 == " " || $0 == "\n" }) {
            guard let equals = field.firstIndex(of: "=") else { continue }
            result[String(field[..<equals])] = String(field[field.index(after: equals)...])
        }
        return result
    }
}

/// The end-to-end tests' additions to the shared namespace (TestSupport): the traffic generator.
extension TestNamespace {
    /// Runs the traffic generator inside the namespace and returns its result line's keys.
    @discardableResult
    func traffic(_ arguments: [String], asUnprivileged: Bool = true) throws -> [String: String] {
        var args = [Harness.traffic] + arguments
        if asUnprivileged {
            args += ["--uid", String(Harness.unprivilegedUID), "--gid", String(Harness.unprivilegedGID)]
        }
        let result = try exec(args)
        return Harness.keyValues(result.stdout.split(separator: "\n").last.map(String.init) ?? "")
    }

    /// Starts a TCP sink (`nfowner-traffic listen`) on 127.0.0.1:`port` inside the namespace and
    /// returns once it listens. It exits by itself after `accept` connections or 10 s; `stop()`
    /// ends it early (by PID).
    func tcpListener(port: Int, accept: Int = 1) throws -> BackgroundProcess {
        try BackgroundProcess(["nsenter", "--net=\(path)", Harness.traffic, "listen", "--tcp", "--port", String(port),
                               "--address", "127.0.0.1", "--timeout", "10", "--accept", String(accept)],
                              waitForOutput: true)
    }
}

/// A helper process a test runs in the background; killed by PID on `stop()` or deinit.
final class BackgroundProcess {
    let process = Process()

    /// Starts `command` (through /usr/bin/env). With `waitForOutput`, returns once the process
    /// printed something (a "ready" line).
    init(_ command: [String], waitForOutput: Bool = false) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = command
        let output = Pipe()
        process.standardOutput = waitForOutput ? output : FileHandle.nullDevice
        try process.run()
        if waitForOutput { _ = output.fileHandleForReading.availableData }
    }

    var pid: Int32 { process.processIdentifier }

    func waitUntilExit() { process.waitUntilExit() }

    func stop() {
        if process.isRunning { kill(process.processIdentifier, SIGKILL) }
        process.waitUntilExit()
    }

    deinit { stop() }
}

/// `nfowner monitor` (or another long-running command: `enforce`) running in the background, its
/// stdout and stderr going to files.
class RunningMonitor {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL
    /// The summary line on stderr starts with this.
    let summaryPrefix: String

    /// Starts the monitor and waits until it reads its group (its "reading NFLOG group" note).
    convenience init(_ arguments: [String]) throws {
        try self.init(command: "monitor", arguments, readyNote: "reading NFLOG group", summaryPrefix: "received=")
    }

    /// Starts `nfowner COMMAND ARGUMENTS…` and waits until its stderr contains `readyNote`.
    init(command: String, _ arguments: [String], readyNote: String, summaryPrefix: String) throws {
        let directory = FileManager.default.temporaryDirectory
        let token = UUID().uuidString
        stdoutURL = directory.appendingPathComponent("nfowner-\(token).out")
        stderrURL = directory.appendingPathComponent("nfowner-\(token).err")
        self.summaryPrefix = summaryPrefix
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Harness.nfowner)
        process.arguments = [command] + arguments
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if stderr.contains(readyNote) { return }
            if !process.isRunning { throw HarnessError("\(command) exited early: \(stderr)") }
            usleep(20_000)
        }
        stop()
        throw HarnessError("\(command) did not start within 15 s: \(stderr)")
    }

    var stdout: String { (try? String(contentsOf: stdoutURL, encoding: .utf8)) ?? "" }
    var stderr: String { (try? String(contentsOf: stderrURL, encoding: .utf8)) ?? "" }

    /// JSON events printed so far.
    var events: [[String: Any]] {
        stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
    }

    /// Waits until `predicate` holds for the events printed so far (or the timeout passes).
    @discardableResult
    func waitForEvents(timeout: TimeInterval = 5, _ predicate: ([[String: Any]]) -> Bool) -> [[String: Any]] {
        let deadline = Date().addingTimeInterval(timeout)
        var current = events
        while !predicate(current), Date() < deadline {
            usleep(50_000)
            current = events
        }
        return current
    }

    /// Stops the monitor with `signal` (by PID; SIGKILL if it is still running 10 s later) and
    /// returns its summary line's keys.
    @discardableResult
    func stop(with signal: Int32 = SIGINT) -> [String: String] {
        if process.isRunning {
            kill(process.processIdentifier, signal)
            let deadline = Date().addingTimeInterval(10)
            while process.isRunning, Date() < deadline { usleep(20_000) }
            if process.isRunning { kill(process.processIdentifier, SIGKILL) }
            process.waitUntilExit()
        }
        let summary = stderr.split(separator: "\n").last { $0.hasPrefix(summaryPrefix) }.map(String.init) ?? ""
        return Harness.keyValues(summary)
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
        try? FileManager.default.removeItem(at: stdoutURL)
        try? FileManager.default.removeItem(at: stderrURL)
    }
}

extension Dictionary where Key == String, Value == Any {
    func int(_ key: String) -> Int? { self[key] as? Int }
    func string(_ key: String) -> String? { self[key] as? String }
    func isNull(_ key: String) -> Bool { self[key] is NSNull }
}
