// Runs a program to completion with optional stdin, capturing stdout and stderr. The only place
// in this module that starts processes (through NetfilterSystem.ChildProcess: see there why not
// Foundation.Process).

import Foundation
import NetfilterSystem

struct SubprocessResult: Sendable {
    var status: Int32
    var stdout: String
    var stderr: String
}

enum Subprocess {
    /// Runs `executable` with `arguments`, feeding `input` on stdin (or nothing). Throws
    /// `.ioFailure` only when the process cannot be started; a non-zero exit is a result.
    static func run(_ executable: String, _ arguments: [String], input: String? = nil) throws(RulesError) -> SubprocessResult {
        let outcome: ChildProcess.Outcome
        do {
            outcome = try ChildProcess.run(executable, arguments, input: input.map { Array($0.utf8) })
        } catch {
            throw RulesError(.ioFailure, "cannot start \(executable): \(error)")
        }
        return SubprocessResult(
            status: outcome.status,
            stdout: String(decoding: outcome.stdout, as: UTF8.self),
            stderr: String(decoding: outcome.stderr, as: UTF8.self))
    }

    /// The first of `candidates` that is an executable file, else the first match on $PATH.
    static func locate(_ name: String, candidates: [String]) -> String? {
        let fm = FileManager.default
        let path = ProcessInfo.processInfo.environment["PATH"] ?? ""
        let onPath = path.split(separator: ":").map { "\($0)/\(name)" }
        return (candidates + onPath).first { fm.isExecutableFile(atPath: $0) }
    }
}

