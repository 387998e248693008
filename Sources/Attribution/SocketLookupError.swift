// The one error type for socket lookups (sock_diag, /proc/net, /proc/PID/fd), shaped like
// swift-asn1's ASN1Error: a code that tests compare and a reason that names what failed.

/// A socket lookup that failed for a reason other than "no such socket" (that is `nil`).
public struct SocketLookupError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Sendable {
            case systemCall
            case malformedReply
            case unreadable
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// Opening, sending to or receiving from the sock_diag socket failed (errno in reason).
        public static let systemCall = Code(.systemCall)
        /// The kernel's reply did not decode, or answered another request.
        public static let malformedReply = Code(.malformedReply)
        /// A /proc/net table could not be read.
        public static let unreadable = Code(.unreadable)

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
