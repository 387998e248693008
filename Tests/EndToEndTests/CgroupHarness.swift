import Foundation
import TestSupport

/// A cgroup subtree made for one test under the real cgroup2 root (found in mountinfo), removed
/// by `close()` deepest first. Processes the test put in it must have exited by then.
final class TestCgroups {
    let mountPoint: String
    /// Hierarchy path of the test's top cgroup, e.g. "/nfo-e2e-1234-5".
    let top: String
    private var made: [String] = []

    init(_ label: String) throws {
        let mountinfo = try String(contentsOfFile: "/proc/self/mountinfo", encoding: .utf8)
        guard let line = mountinfo.split(separator: "\n").first(where: { $0.contains(" - cgroup2 ") }) else {
            throw HarnessError("no cgroup2 mount in /proc/self/mountinfo")
        }
        mountPoint = String(line.split(separator: " ")[4])
        top = "/nfo-\(label)-\(getpid())-\(UInt16.random(in: 0...UInt16.max))"
        try make(top)
    }

    func directory(_ path: String) -> String { mountPoint + path }

    /// Creates `path` (a hierarchy path below `top`) and any missing parents.
    @discardableResult
    func make(_ path: String) throws -> String {
        var current = ""
        for component in path.split(separator: "/") {
            current += "/\(component)"
            if !FileManager.default.fileExists(atPath: directory(current)) {
                try FileManager.default.createDirectory(atPath: directory(current), withIntermediateDirectories: false)
                made.append(current)
            }
        }
        return path
    }

    /// Removes `path` (it must be empty of processes and children).
    func remove(_ path: String) throws {
        guard rmdir(directory(path)) == 0 else { throw HarnessError("rmdir \(path): errno \(errno)") }
        made.removeAll { $0 == path }
    }

    /// The cgroup id (inode of the directory).
    func id(_ path: String) throws -> Int {
        let attributes = try FileManager.default.attributesOfItem(atPath: directory(path))
        return (attributes[.systemFileNumber] as? Int) ?? -1
    }

    /// Runs the traffic generator in `namespace`, as a process placed in cgroup `path` first.
    @discardableResult
    func traffic(in path: String, namespace: TestNamespace, _ arguments: [String],
                 asUnprivileged: Bool = true) throws -> [String: String] {
        var command = [Harness.traffic] + arguments
        if asUnprivileged {
            command += ["--uid", String(Harness.unprivilegedUID), "--gid", String(Harness.unprivilegedGID)]
        }
        let script = "echo $$ > \"$1/cgroup.procs\" && shift && exec nsenter --net=\"$1\" \"${@:2}\""
        let result = try Harness.run("/bin/bash", ["-c", script, "nfowner-test", directory(path), namespace.path] + command)
        try result.check("traffic in \(path)")
        return Harness.keyValues(result.stdout.split(separator: "\n").last.map(String.init) ?? "")
    }

    func close() {
        for path in made.reversed() { rmdir(directory(path)) }
        made.removeAll()
    }

    deinit { close() }
}
