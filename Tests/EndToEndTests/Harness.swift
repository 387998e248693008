import Foundation
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

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs a command to completion and captures its output.
    @discardableResult
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> Result {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let out = Pipe(), err = Pipe()
        process.standardOutput = out
        process.standardError = err
        let inPipe = Pipe()
        if input != nil { process.standardInput = inPipe } else { process.standardInput = FileHandle.nullDevice }
        try process.run()
        if let input {
            inPipe.fileHandleForWriting.write(Data(input.utf8))
            try inPipe.fileHandleForWriting.close()
        }
        // Read both pipes to the end before waiting, so a chatty child cannot block on a full pipe.
        nonisolated(unsafe) var errData = Data()
        let errReader = Thread { errData = err.fileHandleForReading.readDataToEndOfFile() }
        errReader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while errReader.isExecuting || !errReader.isFinished { usleep(1000) }
        return Result(status: process.terminationStatus,
                      stdout: String(decoding: outData, as: UTF8.self),
                      stderr: String(decoding: errData, as: UTF8.self))
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

/// A network namespace made for one test, with loopback up and unprivileged ping allowed.
/// Removed by `close()`; tests call it in `defer` so failures clean up too.
final class TestNamespace {
    let name: String
    var path: String { "/run/netns/\(name)" }
    private var closed = false

    init(_ label: String) throws {
        name = "nfo-\(label)-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try Harness.run("/usr/bin/env", ["ip", "netns", "add", name]).check("ip netns add \(name)")
        do {
            try Harness.run("/usr/bin/env", ["ip", "-n", name, "link", "set", "lo", "up"]).check("lo up")
            try exec(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"]).check("ping_group_range")
        } catch {
            close()
            throw error
        }
    }

    /// Runs a command inside the namespace (`nsenter --net`, which keeps /sys and cgroupfs).
    @discardableResult
    func exec(_ command: [String], input: String? = nil) throws -> Harness.Result {
        try Harness.run("/usr/bin/env", ["nsenter", "--net=\(path)"] + command, input: input)
    }

    /// Joins this namespace and `peer` with a veth pair (`end` here, `peerEnd` there), gives each
    /// end its address (with prefix length, e.g. "10.231.0.1/30") and brings both up. The pair
    /// goes with the namespaces.
    func connect(to peer: TestNamespace, end: String, address: String, peerEnd: String, peerAddress: String) throws {
        try Harness.run("/usr/bin/env", ["ip", "link", "add", end, "netns", name, "type", "veth",
                                          "peer", "name", peerEnd, "netns", peer.name]).check("veth")
        try exec(["ip", "addr", "add", address, "dev", end]).check("addr")
        try exec(["ip", "link", "set", end, "up"]).check("up")
        try peer.exec(["ip", "addr", "add", peerAddress, "dev", peerEnd]).check("addr")
        try peer.exec(["ip", "link", "set", peerEnd, "up"]).check("up")
    }

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

    func nft(_ arguments: [String], input: String? = nil) throws -> Harness.Result {
        try exec(["nft"] + arguments, input: input)
    }

    func close() {
        guard !closed else { return }
        closed = true
        _ = try? Harness.run("/usr/bin/env", ["ip", "netns", "delete", name])
    }

    deinit { close() }
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

extension Harness.Result {
    @discardableResult
    func check(_ what: String) throws -> Harness.Result {
        guard status == 0 else {
            throw HarnessError("\(what) failed (exit \(status)): \(stderr)\(stdout)")
        }
        return self
    }
}

struct HarnessError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// `nfowner monitor` running in the background, its stdout and stderr going to files.
final class RunningMonitor {
    let process = Process()
    let stdoutURL: URL
    let stderrURL: URL

    /// Starts the monitor and waits until it reads its group (its "reading NFLOG group" note).
    init(_ arguments: [String]) throws {
        let directory = FileManager.default.temporaryDirectory
        let token = UUID().uuidString
        stdoutURL = directory.appendingPathComponent("nfowner-\(token).out")
        stderrURL = directory.appendingPathComponent("nfowner-\(token).err")
        FileManager.default.createFile(atPath: stdoutURL.path, contents: nil)
        FileManager.default.createFile(atPath: stderrURL.path, contents: nil)
        process.executableURL = URL(fileURLWithPath: Harness.nfowner)
        process.arguments = ["monitor"] + arguments
        process.standardOutput = try FileHandle(forWritingTo: stdoutURL)
        process.standardError = try FileHandle(forWritingTo: stderrURL)
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = Date().addingTimeInterval(15)
        while Date() < deadline {
            if stderr.contains("reading NFLOG group") { return }
            if !process.isRunning { throw HarnessError("monitor exited early: \(stderr)") }
            usleep(20_000)
        }
        stop()
        throw HarnessError("monitor did not start within 15 s: \(stderr)")
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
        let summary = stderr.split(separator: "\n").last { $0.hasPrefix("received=") }.map(String.init) ?? ""
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
