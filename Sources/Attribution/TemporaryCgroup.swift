import NetfilterSystem

/// A cgroup a run creates for itself (a trace puts its command in one) and removes at the end,
/// ending whatever is still running in it.
public struct TemporaryCgroup: Sendable {
    public let node: CgroupNode
    /// Its directory under the cgroup2 mount.
    public let directory: String

    /// Creates `path` (relative to the cgroup2 root, e.g. "/nfowner-trace-812") under `mount`.
    public static func create(_ path: String, under mount: CgroupMount) throws(CgroupError) -> TemporaryCgroup {
        let directory = mount.directory(forHierarchyPath: path)
        do {
            try Directories.make(directory)
            let id = try Directories.inode(of: directory)
            return TemporaryCgroup(node: CgroupNode(id: id, path: path, level: CgroupPath.components(of: path).count),
                                   directory: directory)
        } catch {
            throw CgroupError(.unreadable, "cannot create cgroup \(directory): \(error)")
        }
    }

    /// Removes the cgroup; if processes are still in it, kills them (cgroup.kill) and retries for
    /// up to a second. Returns a note for the user when it could not.
    public func remove() -> String? {
        if (try? Directories.remove(directory)) != nil { return nil }
        try? Directories.write("1", toExisting: directory + "/cgroup.kill")
        for _ in 0..<50 {
            if (try? Directories.remove(directory)) != nil { return nil }
            ChildProcess.sleep(milliseconds: 20)
        }
        return "could not remove cgroup \(directory): processes are still in it; remove it with rmdir when they exit"
    }
}
