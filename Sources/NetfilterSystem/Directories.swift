import Glibc

/// The few file-system calls cgroupfs needs (a cgroup is a directory; its id is the inode).
public enum Directories {
    /// mkdir(2) with mode 0755.
    public static func make(_ path: String) throws(SystemError) {
        guard mkdir(path, 0o755) == 0 else { throw SystemError(code: Errno.current, operation: "create \(path)") }
    }

    /// rmdir(2).
    public static func remove(_ path: String) throws(SystemError) {
        guard rmdir(path) == 0 else { throw SystemError(code: Errno.current, operation: "remove \(path)") }
    }

    /// The inode number of `path` (a cgroup's id).
    public static func inode(of path: String) throws(SystemError) -> UInt64 {
        var information = stat()
        guard stat(path, &information) == 0 else { throw SystemError(code: Errno.current, operation: "stat \(path)") }
        return UInt64(information.st_ino)
    }

    /// The inode number of `path` when it is a directory; nil when it is missing or something else.
    public static func directoryInode(_ path: String) -> UInt64? {
        var information = stat()
        guard stat(path, &information) == 0, information.st_mode & S_IFMT == S_IFDIR else { return nil }
        return UInt64(information.st_ino)
    }

    /// stat(2) of `path`, following links: its device and inode (st_dev, st_ino), what names a
    /// file across renames; nil when it is missing or unreadable.
    public static func fileIdentity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var information = stat()
        guard stat(path, &information) == 0 else { return nil }
        return (UInt64(information.st_dev), UInt64(information.st_ino))
    }

    /// lstat(2) of `path` when it is a regular file (not a link to one): its device and inode.
    public static func regularFileIdentity(_ path: String) -> (device: UInt64, inode: UInt64)? {
        var information = stat()
        guard lstat(path, &information) == 0, information.st_mode & S_IFMT == S_IFREG else { return nil }
        return (UInt64(information.st_dev), UInt64(information.st_ino))
    }

    /// lstat(2) of `path`: its inode and whether it is a directory (a symlink is not); nil when
    /// it is missing. One system call: no owner-name lookups, no extended attributes.
    public static func linkStatus(_ path: String) -> (inode: UInt64, isDirectory: Bool)? {
        var information = stat()
        guard lstat(path, &information) == 0 else { return nil }
        return (UInt64(information.st_ino), information.st_mode & S_IFMT == S_IFDIR)
    }

    /// Writes `text` to an existing file (a cgroupfs control file), without creating it.
    public static func write(_ text: String, toExisting path: String) throws(SystemError) {
        let descriptor = open(path, O_WRONLY | O_CLOEXEC)
        guard descriptor >= 0 else { throw SystemError(code: Errno.current, operation: "open \(path)") }
        defer { close(descriptor) }
        let written = text.utf8CString.withUnsafeBufferPointer { Glibc.write(descriptor, $0.baseAddress, $0.count - 1) }
        guard written >= 0 else { throw SystemError(code: Errno.current, operation: "write \(path)") }
    }
}
