// What the kernel tests of several targets share: running a command to completion, and a network
// namespace made for one test. Not a test target itself (no tests here), so RulesTests,
// AttributionTests and EndToEndTests can all depend on it.
import Foundation

/// A command that ran to completion.
public struct CommandResult: Sendable {
    public var status: Int32
    public var stdout: String
    public var stderr: String

    public init(status: Int32, stdout: String, stderr: String) {
        self.status = status
        self.stdout = stdout
        self.stderr = stderr
    }

    /// Throws `HarnessError` naming `what`, the exit status and the output when the command failed.
    @discardableResult
    public func check(_ what: String) throws -> CommandResult {
        guard status == 0 else {
            throw HarnessError("\(what) failed (exit \(status)): \(stderr)\(stdout)")
        }
        return self
    }
}

/// A test harness step that failed (a command, a process that did not start): the text says what.
public struct HarnessError: Error, CustomStringConvertible {
    public var description: String
    public init(_ description: String) { self.description = description }
}

public enum Command {
    /// Runs `executable` to completion and captures its output.
    @discardableResult
    public static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws -> CommandResult {
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
        return CommandResult(status: process.terminationStatus,
                             stdout: String(decoding: outData, as: UTF8.self),
                             stderr: String(decoding: errData, as: UTF8.self))
    }
}

/// A network namespace made for one test (`ip netns add`, a unique name), with loopback up and
/// unprivileged ping allowed. Removed by `close()` (and at deinit); tests call it in `defer` so
/// failures clean up too.
public final class TestNamespace {
    public let name: String
    public var path: String { "/run/netns/\(name)" }
    private var closed = false

    /// `label` goes into the name ("nfo-LABEL-PID-RANDOM"), so a leftover namespace says which test made it.
    public init(_ label: String) throws {
        name = "nfo-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try Command.run("/usr/bin/env", ["ip", "netns", "add", name]).check("ip netns add \(name)")
        do {
            try Command.run("/usr/bin/env", ["ip", "-n", name, "link", "set", "lo", "up"]).check("lo up")
            try exec(["sysctl", "-q", "-w", "net.ipv4.ping_group_range=0 2147483647"]).check("ping_group_range")
        } catch {
            close()
            throw error
        }
    }

    /// Runs a command inside the namespace (`nsenter --net`, which keeps /sys and cgroupfs).
    @discardableResult
    public func exec(_ command: [String], input: String? = nil) throws -> CommandResult {
        try Command.run("/usr/bin/env", ["nsenter", "--net=\(path)"] + command, input: input)
    }

    /// Joins this namespace and `peer` with a veth pair (`end` here, `peerEnd` there), gives each
    /// end its address (with prefix length, e.g. "10.231.0.1/30") and brings both up. The pair
    /// goes with the namespaces.
    public func connect(to peer: TestNamespace, end: String, address: String, peerEnd: String, peerAddress: String) throws {
        try Command.run("/usr/bin/env", ["ip", "link", "add", end, "netns", name, "type", "veth",
                                         "peer", "name", peerEnd, "netns", peer.name]).check("veth")
        try exec(["ip", "addr", "add", address, "dev", end]).check("addr")
        try exec(["ip", "link", "set", end, "up"]).check("up")
        try peer.exec(["ip", "addr", "add", peerAddress, "dev", peerEnd]).check("addr")
        try peer.exec(["ip", "link", "set", peerEnd, "up"]).check("up")
    }

    public func nft(_ arguments: [String], input: String? = nil) throws -> CommandResult {
        try exec(["nft"] + arguments, input: input)
    }

    public func close() {
        guard !closed else { return }
        closed = true
        _ = try? Command.run("/usr/bin/env", ["ip", "netns", "delete", name])
    }

    deinit { close() }
}
