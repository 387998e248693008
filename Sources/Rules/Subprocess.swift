// Runs a program to completion with optional stdin, capturing stdout and stderr. The only place
// in this module that starts processes.

import Foundation

struct SubprocessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum Subprocess {
    /// Runs `executable` with `arguments`, feeding `input` on stdin (or /dev/null). Throws
    /// `.ioFailure` only when the process cannot be started; a non-zero exit is a result.
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws(RulesError) -> SubprocessResult {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        let stdoutPipe = Pipe()
        let stderrPipe = Pipe()
        let stdinPipe = input == nil ? nil : Pipe()
        process.standardOutput = stdoutPipe
        process.standardError = stderrPipe
        process.standardInput = stdinPipe ?? FileHandle.nullDevice
        do {
            try process.run()
        } catch {
            throw RulesError(.ioFailure, "cannot start \(executable): \(error.localizedDescription)")
        }
        // Drain both pipes on their own threads while stdin is written: a child blocked on a
        // full stdout pipe would otherwise never read the rest of its stdin.
        let collected = Collected()
        let group = DispatchGroup()
        for (pipe, isStdout) in [(stdoutPipe, true), (stderrPipe, false)] {
            let handle = pipe.fileHandleForReading
            group.enter()
            DispatchQueue.global().async {
                let data = handle.readDataToEndOfFile()
                collected.store(data, isStdout: isStdout)
                group.leave()
            }
        }
        if let stdinPipe, let input {
            let writer = stdinPipe.fileHandleForWriting
            // A child that exits without reading makes the write fail (EPIPE); its exit status
            // and stderr then tell the story, so the write error itself is not reported.
            try? writer.write(contentsOf: Data(input.utf8))
            try? writer.close()
        }
        group.wait()
        process.waitUntilExit()
        let (out, err) = collected.values()
        return SubprocessResult(
            status: process.terminationStatus,
            stdout: String(decoding: out, as: UTF8.self),
            stderr: String(decoding: err, as: UTF8.self))
    }

    /// The first of `candidates` that is an executable file, else the first match on $PATH.
    static func locate(_ name: String, candidates: [String]) -> String? {
        let fm = FileManager.default
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let onPath = path.split(separator: ":").map { "\($0)/\(name)" }
        return (candidates + onPath).first { fm.isExecutableFile(atPath: $0) }
    }
}

/// Output collected from the reader threads.
private final class Collected: @unchecked Sendable {
    private let lock = NSLock()
    private var stdout = Data()
    private var stderr = Data()

    func store(_ data: Data, isStdout: Bool) {
        lock.lock()
        defer { lock.unlock() }
        if isStdout { stdout = data } else { stderr = data }
    }

    func values() -> (Data, Data) {
        lock.lock()
        defer { lock.unlock() }
        return (stdout, stderr)
    }
}
