import CNetfilter
import Glibc

/// Network namespaces by name, as `ip netns` keeps them under /run/netns.
public enum NetworkNamespace {
    public static let directory = "/run/netns"

    /// Moves the calling thread into the named namespace.
    ///
    /// setns is per thread: sockets the thread opens afterwards, threads it starts and processes
    /// it spawns live in the namespace; other threads do not move. Call it on the main thread
    /// before starting anything else to run a whole pipeline inside the namespace.
    public static func enter(named name: String) throws(NamespaceError) {
        guard !name.isEmpty, !name.contains("/"), name != ".", name != ".." else {
            throw NamespaceError(reason: "'\(name)' is not a namespace name (names as in `ip netns list`)")
        }
        let path = "\(directory)/\(name)"
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let code = Errno.current
            if code == ENOENT {
                throw NamespaceError(reason: "network namespace '\(name)' does not exist (\(path)); create it with `ip netns add \(name)` or check `ip netns list`")
            }
            throw NamespaceError(reason: "cannot open \(path): \(Errno.describe(code))")
        }
        defer { close(fd) }
        guard nfowner_enter_network_namespace(fd) == 0 else {
            let code = Errno.current
            let hint = code == EPERM ? "; entering a namespace needs CAP_SYS_ADMIN: run as root" : ""
            throw NamespaceError(reason: "cannot enter network namespace '\(name)': \(Errno.describe(code))\(hint)")
        }
    }
}

public struct NamespaceError: Error, Sendable, CustomStringConvertible {
    public var reason: String
    public var description: String { reason }
}
