/// Path → id for cgroups the packet did not carry the id of: a process's own cgroup, which an
/// owner reports instead of the ruleset's classification (the packet carries only the classified
/// cgroup's id, in its log prefix).
///
/// The id is the inode of the cgroup's directory: one lstat per lookup, made once per flow
/// resolution and only when the process's cgroup differs from the classified one. nil when the
/// cgroup is gone (a short-lived process's cgroup may be removed with it).
public enum CgroupIDs {
    /// Looks ids up under the cgroup2 mount point `mountPoint` (e.g. "/sys/fs/cgroup").
    public static func lookup(mountPoint: String,
                              fileSystem: some CgroupFileSystem = LocalCgroupFileSystem()) -> (String) -> UInt64? {
        { path in
            let directory = path == "/" ? mountPoint : mountPoint + path
            guard let entry = fileSystem.entry(at: directory), entry.isDirectory else { return nil }
            return entry.inode
        }
    }
}
