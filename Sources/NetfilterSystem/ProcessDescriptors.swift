import Glibc

/// Which processes hold which sockets, from the /proc/PID/fd symbolic links ("socket:[307351]").
///
/// The one /proc fd scan: `SocketOwners` (Attribution) keeps an index built from it, and
/// `rules status` (Rules) asks it once for the NFLOG listener's holders. Every function takes
/// the procfs root, so tests run against a fixture tree of directories and symbolic links.
/// Processes that vanish or deny access during a scan are skipped: that is normal, not an error.
public enum ProcessDescriptors {
    /// The pids under `procRoot` (its numeric entries above 0), ascending; [] when it cannot be read.
    public static func pids(procRoot: String) -> [Int32] {
        (entries(of: procRoot) ?? []).compactMap { name in
            guard let pid = Int32(name), pid > 0 else { return nil }
            return pid
        }.sorted()
    }

    /// The socket inodes `pid` holds, by fd; nil when its fd directory cannot be read (the
    /// process is gone, or access is denied). Fds that are not sockets are left out.
    public static func socketInodes(pid: Int32, procRoot: String) -> [Int32: UInt64]? {
        guard let names = entries(of: "\(procRoot)/\(pid)/fd") else { return nil }
        var sockets: [Int32: UInt64] = [:]
        for name in names {
            guard let fd = Int32(name), let inode = socketInode(pid: pid, fd: fd, procRoot: procRoot) else { continue }
            sockets[fd] = inode
        }
        return sockets
    }

    /// The socket inode behind `pid`'s `fd`; nil when it is not a socket or cannot be read.
    public static func socketInode(pid: Int32, fd: Int32, procRoot: String) -> UInt64? {
        linkTarget("\(procRoot)/\(pid)/fd/\(fd)").flatMap(parseSocketLink)
    }

    /// Every pid with an fd linking to socket `inode`, ascending: one full scan, nothing kept.
    public static func holders(ofSocketInode inode: UInt64, procRoot: String) -> [Int32] {
        pids(procRoot: procRoot).filter { pid in
            guard let names = entries(of: "\(procRoot)/\(pid)/fd") else { return false }
            return names.contains { name in
                guard let fd = Int32(name) else { return false }
                return socketInode(pid: pid, fd: fd, procRoot: procRoot) == inode
            }
        }
    }

    /// "socket:[307351]" → 307351; nil for anything else (files, pipes, anon inodes).
    public static func parseSocketLink(_ target: String) -> UInt64? {
        guard target.hasPrefix("socket:["), target.hasSuffix("]") else { return nil }
        return UInt64(target.dropFirst(8).dropLast())
    }

    /// The names in a directory (without "." and ".."); nil when it cannot be opened.
    private static func entries(of directory: String) -> [String]? {
        guard let stream = opendir(directory) else { return nil }
        defer { closedir(stream) }
        var names: [String] = []
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { raw in
                String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
            }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }

    /// readlink(2) of a short link. A socket link ("socket:[" + at most 20 digits + "]") fits in
    /// 64 bytes, so a longer target (a file path) is reported as nil: it is not a socket anyway.
    private static func linkTarget(_ path: String) -> String? {
        let capacity = 64
        var buffer = [CChar](repeating: 0, count: capacity)
        let count = readlink(path, &buffer, capacity)
        guard count >= 0, count < capacity else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}
