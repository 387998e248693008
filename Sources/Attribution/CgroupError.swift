// The one error type for cgroup discovery, shaped like swift-asn1's ASN1Error: a code that tests
// compare, and a reason that names the path involved and, where there is one, the fix.

/// Everything that can go wrong while finding, walking or watching the cgroup2 hierarchy.
public struct CgroupError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Sendable {
            case noCgroup2Mount
            case unreadable
            case invalidPath
            case watchFailed
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// /proc/self/mountinfo has no cgroup2 line (a cgroup v1-only system, or no /proc).
        public static let noCgroup2Mount = Code(.noCgroup2Mount)
        /// A file or directory (mountinfo, the cgroup2 root) could not be read.
        public static let unreadable = Code(.unreadable)
        /// A cgroup path is not absolute, or has "." / ".." / empty components.
        public static let invalidPath = Code(.invalidPath)
        /// inotify could not be set up (instance or the root watch).
        public static let watchFailed = Code(.watchFailed)

        public var description: String { backing.rawValue }
    }

    public let code: Code
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
