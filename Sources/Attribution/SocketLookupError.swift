// The one error type for socket lookups (sock_diag, /proc/net, /proc/PID/fd): the shared
// `DomainError` shape (a code that tests compare and a reason that names what failed).
import NetfilterSystem

/// A socket lookup that failed for a reason other than "no such socket" (that is `nil`).
public typealias SocketLookupError = DomainError<SocketLookupErrorCode>

public struct SocketLookupErrorCode: DomainErrorCode {
    private enum Backing: String, Sendable {
        case systemCall
        case malformedReply
        case unreadable
    }
    private let backing: Backing
    private init(_ backing: Backing) { self.backing = backing }

    /// Opening, sending to or receiving from the sock_diag socket failed (errno in reason).
    public static let systemCall = SocketLookupErrorCode(.systemCall)
    /// The kernel's reply did not decode, or answered another request.
    public static let malformedReply = SocketLookupErrorCode(.malformedReply)
    /// A /proc/net table could not be read.
    public static let unreadable = SocketLookupErrorCode(.unreadable)

    public var description: String { backing.rawValue }
}
