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

/// A fake /proc in a temp directory: one directory per pid with the files the readers use.
struct FakeProc {
    let directory: TemporaryDirectory
    var root: String { directory.path }

    init() throws { directory = try TemporaryDirectory("proc") }

    func add(pid: Int32, comm: String = "sh", ppid: Int32 = 1, uid: UInt32 = 1000, fsuid: UInt32? = nil,
             gid: UInt32 = 1000, cgroup: String = "/user.slice", exe: String? = "/usr/bin/sh",
             cmdline: [String] = ["sh"], startTicks: UInt64 = 500, tgid: Int32? = nil) throws {
        try directory.make("\(pid)")
        let base = "\(root)/\(pid)/"
        let fs = fsuid ?? uid
        let status = "Name:\t\(comm)\nUmask:\t0022\nState:\tS (sleeping)\nTgid:\t\(tgid ?? pid)\nPid:\t\(pid)\nPPid:\t\(ppid)\n"
            + "Uid:\t\(uid)\t\(uid)\t\(uid)\t\(fs)\nGid:\t\(gid)\t\(gid)\t\(gid)\t\(gid)\n"
        try status.write(toFile: base + "status", atomically: false, encoding: .utf8)
        let stat = "\(pid) (\(comm)) S \(ppid) \(pid) \(pid) 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 \(startTicks) 1000 100\n"
        try stat.write(toFile: base + "stat", atomically: false, encoding: .utf8)
        try "\(comm)\n".write(toFile: base + "comm", atomically: false, encoding: .utf8)
        try "0::\(cgroup)\n".write(toFile: base + "cgroup", atomically: false, encoding: .utf8)
        let args = cmdline.map { Array($0.utf8) + [0] }.flatMap { $0 }
        try Data(args).write(to: URL(fileURLWithPath: base + "cmdline"))
        if let exe { try FileManager.default.createSymbolicLink(atPath: base + "exe", withDestinationPath: exe) }
    }

    func remove(pid: Int32) { try? FileManager.default.removeItem(atPath: "\(root)/\(pid)") }
}
