import CNetfilter
import Glibc

/// The user and group databases (NSS: /etc/passwd, /etc/group, LDAP …) through the reentrant
/// getpw*_r / getgr*_r calls, which are safe on the receive thread.
public enum AccountDatabase {
    /// The login name of `uid`, or nil when no entry exists.
    public static func userName(of uid: UInt32) -> String? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        return withScratch { buffer in
            guard let base = buffer.baseAddress, getpwuid_r(uid, &entry, base, buffer.count, &result) == 0,
                  result != nil, let name = entry.pw_name else { return .done(nil) }
            return .done(String(cString: name))
        }
    }

    /// The name of group `gid`, or nil when no entry exists.
    public static func groupName(of gid: UInt32) -> String? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        return withScratch { buffer in
            guard let base = buffer.baseAddress, getgrgid_r(gid, &entry, base, buffer.count, &result) == 0,
                  result != nil, let name = entry.gr_name else { return .done(nil) }
            return .done(String(cString: name))
        }
    }

    /// The uid of user `name`, or nil when no such user exists.
    public static func uid(ofUser name: String) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        return withScratch { buffer in
            guard let base = buffer.baseAddress, getpwnam_r(name, &entry, base, buffer.count, &result) == 0,
                  result != nil else { return .done(nil) }
            return .done(entry.pw_uid)
        }
    }

    /// The gid of group `name`, or nil when no such group exists.
    public static func gid(ofGroup name: String) -> UInt32? {
        var entry = group()
        var result: UnsafeMutablePointer<group>?
        return withScratch { buffer in
            guard let base = buffer.baseAddress, getgrnam_r(name, &entry, base, buffer.count, &result) == 0,
                  result != nil else { return .done(nil) }
            return .done(entry.gr_gid)
        }
    }

    private enum Attempt<T> { case done(T), tooSmall }

    /// Runs `body` with a scratch buffer, growing it while the entry does not fit (ERANGE).
    private static func withScratch<T>(_ body: (UnsafeMutableBufferPointer<CChar>) -> Attempt<T?>) -> T? {
        var size = 1024
        while size <= 1 << 20 {
            let outcome: Attempt<T?> = withUnsafeTemporaryAllocation(of: CChar.self, capacity: size) { buffer in
                nfowner_set_errno(0)
                let attempt = body(buffer)
                if case .done(nil) = attempt, Errno.current == ERANGE { return .tooSmall }
                return attempt
            }
            switch outcome {
            case .done(let value): return value
            case .tooSmall: size *= 4
            }
        }
        return nil
    }
}

/// Facts about the running process.
public enum ProcessIdentity {
    public static var effectiveUserID: UInt32 { geteuid() }
    public static var isRoot: Bool { geteuid() == 0 }
    public static var processID: Int32 { getpid() }
}

/// Interface index → name, in the calling thread's network namespace.
public enum InterfaceIndex {
    /// The interface name for `index`, or nil when no interface has it (any more).
    public static func name(of index: UInt32) -> String? {
        withUnsafeTemporaryAllocation(of: CChar.self, capacity: Int(IF_NAMESIZE) + 1) { buffer in
            guard let base = buffer.baseAddress, if_indextoname(index, base) != nil else { return nil }
            return String(cString: base)
        }
    }

    /// The index of the interface named `name`, nil when there is none.
    public static func index(of name: String) -> UInt32? {
        let index = if_nametoindex(name)
        return index == 0 ? nil : index
    }

    /// The ARPHRD_* type of interface `index` (1 Ethernet, 772 loopback, 65534 none, …), which
    /// says how its frames start; nil when no interface has the index or the kernel did not say.
    public static func hardwareType(of index: UInt32) -> UInt16? {
        guard let name = name(of: index) else { return nil }
        let descriptor = socket(AF_INET, Int32(SOCK_DGRAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { return nil }
        defer { close(descriptor) }
        var request = ifreq()
        let fits = withUnsafeMutableBytes(of: &request.ifr_ifrn.ifrn_name) { field in
            let bytes = Array(name.utf8)
            guard bytes.count < field.count else { return false }
            field.copyBytes(from: bytes)
            return true
        }
        guard fits, ioctl(descriptor, UInt(SIOCGIFHWADDR), &request) == 0 else { return nil }
        return request.ifr_ifru.ifru_hwaddr.sa_family
    }
}

/// The wall clock, for events the kernel did not timestamp (NFLOG gives none at output).
public enum WallClock {
    /// Seconds and microseconds since the Unix epoch (CLOCK_REALTIME).
    public static func now() -> (seconds: UInt64, microseconds: UInt64) {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return (UInt64(spec.tv_sec), UInt64(spec.tv_nsec / 1000))
    }

    /// Monotonic nanoseconds, for durations and rates.
    public static func monotonicNanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

extension AccountDatabase {
    /// The primary gid of user `uid`, or nil when no such user exists.
    public static func primaryGroup(ofUser uid: UInt32) -> UInt32? {
        var entry = passwd()
        var result: UnsafeMutablePointer<passwd>?
        var buffer = [CChar](repeating: 0, count: 16_384)
        guard getpwuid_r(uid, &entry, &buffer, buffer.count, &result) == 0, result != nil else { return nil }
        return entry.pw_gid
    }
}
