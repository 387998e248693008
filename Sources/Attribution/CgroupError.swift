// The one error type for cgroup discovery: the shared `DomainError` shape (a code that tests
// compare, and a reason that names the path involved and, where there is one, the fix).
import NetfilterSystem

/// Everything that can go wrong while finding, walking or watching the cgroup2 hierarchy.
public typealias CgroupError = DomainError<CgroupErrorCode>

public struct CgroupErrorCode: DomainErrorCode {
    private enum Backing: String, Sendable {
        case noCgroup2Mount
        case unreadable
        case invalidPath
        case watchFailed
    }
    private let backing: Backing
    private init(_ backing: Backing) { self.backing = backing }

    /// /proc/self/mountinfo has no cgroup2 line (a cgroup v1-only system, or no /proc).
    public static let noCgroup2Mount = CgroupErrorCode(.noCgroup2Mount)
    /// A file or directory (mountinfo, the cgroup2 root) could not be read.
    public static let unreadable = CgroupErrorCode(.unreadable)
    /// A cgroup path is not absolute, or has "." / ".." / empty components.
    public static let invalidPath = CgroupErrorCode(.invalidPath)
    /// inotify could not be set up (instance or the root watch).
    public static let watchFailed = CgroupErrorCode(.watchFailed)

    public var description: String { backing.rawValue }
}
