import NetfilterSystem

/// Why a packet source could not start or had to stop, phrased for the person running it.
public enum SourceError: Error, Sendable, CustomStringConvertible {
    case openSocket(SystemError)
    case configure(what: String, SystemError)
    /// `holders` describes who holds the group ("pid 812 (nfowner)"), when the caller could tell.
    case bind(group: UInt16, errno: Int32, holders: [String])
    case noAnswer(what: String)
    /// An NFQUEUE queue could not be bound.
    case queueBind(queue: UInt16, errno: Int32)
    case receive(SystemError)
    /// Settings that contradict each other (the reason says which, and what to change).
    case invalidSettings(String)

    public var description: String {
        switch self {
        case .openSocket(let error):
            if error.code == Errno.protocolNotSupported || error.code == Errno.notSupported {
                return "cannot open an nfnetlink socket: this kernel has no NETLINK_NETFILTER support (\(error))"
            }
            return "cannot open an nfnetlink socket: \(error)"
        case .configure(let what, let error):
            return "cannot \(what): \(error)"
        case .bind(let group, let errno, let holders):
            if errno == Errno.permissionDenied {
                if !ProcessIdentity.isRoot {
                    return "cannot bind NFLOG group \(group): binding needs CAP_NET_ADMIN; run as root (sudo nfowner …)"
                }
                let who = holders.isEmpty ? "" : " (" + holders.joined(separator: ", ") + ")"
                return "cannot bind NFLOG group \(group): another process already holds it\(who); choose another with --group"
            }
            if errno == Errno.notSupported || errno == Errno.notFound || errno == Errno.protocolNotSupported {
                return "cannot bind NFLOG group \(group): the kernel has no NFLOG support (nfnetlink_log); "
                    + "load it with `modprobe nfnetlink_log` or enable CONFIG_NETFILTER_NETLINK_LOG (\(Errno.describe(errno)))"
            }
            return "cannot bind NFLOG group \(group): \(Errno.describe(errno))"
        case .queueBind(let queue, let errno):
            if errno == Errno.permissionDenied && !ProcessIdentity.isRoot {
                return "cannot bind NFQUEUE queue \(queue): binding needs CAP_NET_ADMIN; run as root (sudo nfowner …)"
            }
            if errno == Errno.busy || errno == Errno.permissionDenied {
                return "cannot bind NFQUEUE queue \(queue): another process already holds it (its netlink port id is "
                    + "in /proc/net/netfilter/nfnetlink_queue); choose another with --hold-queue"
            }
            if errno == Errno.notSupported || errno == Errno.notFound || errno == Errno.protocolNotSupported {
                return "cannot bind NFQUEUE queue \(queue): the kernel has no NFQUEUE support (nfnetlink_queue); "
                    + "load it with `modprobe nfnetlink_queue` or enable CONFIG_NETFILTER_NETLINK_QUEUE "
                    + "(\(Errno.describe(errno)))"
            }
            return "cannot bind NFQUEUE queue \(queue): \(Errno.describe(errno))"
        case .noAnswer(let what):
            return "cannot \(what): the kernel did not answer within 2 s"
        case .receive(let error):
            return "receiving NFLOG messages failed: \(error)"
        case .invalidSettings(let reason):
            return reason
        }
    }
}
