import Foundation
import Testing
import NetfilterSystem
@testable import Attribution

/// A fresh directory under /tmp, removed (recursively) by `remove()`.
struct TemporaryDirectory {
    let path: String

    init(_ label: String) throws {
        path = NSTemporaryDirectory() + "nfo-\(label)-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    func make(_ relative: String) throws {
        try FileManager.default.createDirectory(atPath: path + "/" + relative, withIntermediateDirectories: true)
    }

    func inode(_ relative: String) throws -> UInt64 {
        let attributes = try FileManager.default.attributesOfItem(atPath: relative.isEmpty ? path : path + "/" + relative)
        return try #require((attributes[.systemFileNumber] as? NSNumber)?.uint64Value)
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// Runs a command, returning its exit status and combined output.
@discardableResult
func run(_ arguments: [String], input: String? = nil) throws -> (status: Int32, output: String) {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
    process.arguments = arguments
    let pipe = Pipe()
    process.standardOutput = pipe
    process.standardError = pipe
    let stdin = Pipe()
    process.standardInput = stdin
    try process.run()
    if let input { stdin.fileHandleForWriting.write(Data(input.utf8)) }
    try stdin.fileHandleForWriting.close()
    let data = pipe.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return (process.terminationStatus, String(decoding: data, as: UTF8.self))
}

/// Reads the watcher's changes until `done` holds for everything read, or `seconds` pass.
func collectChanges(_ watcher: CgroupWatcher, seconds: Double = 1.0,
                    until done: ([CgroupChange]) -> Bool) -> [CgroupChange] {
    let deadline = Date().addingTimeInterval(seconds)
    var changes: [CgroupChange] = []
    while Date() < deadline {
        _ = try? waitReadable([watcher.descriptor], timeoutMilliseconds: 50)
        changes += watcher.readChanges()
        if done(changes) { break }
    }
    return changes
}

extension [CgroupChange] {
    var createdPaths: [String] {
        compactMap { if case .created(let node) = $0 { node.path } else { nil } }
    }
    var removedPaths: [String] {
        compactMap { if case .removed(_, let path) = $0 { path } else { nil } }
    }
}
