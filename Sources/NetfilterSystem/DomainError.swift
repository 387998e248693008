// The one shape of a module's error, after swift-asn1's ASN1Error: a code that tests compare, and a
// reason a person can act on (it names the cause and, where there is one, the fix). Each module
// declares its codes and names its error with a typealias, e.g.
//
//     public typealias CgroupError = DomainError<CgroupErrorCode>
//
// so call sites read `CgroupError(.unreadable, "…")`, `error.code == .unreadable`, `error.reason`.
// It lives here, the lowest module the others share, because it is shared, not because it is a
// system call: it imports nothing.

/// The codes of one module's error. Conforming types are structs with a private backing enum and a
/// static constant per code, so adding a code does not break anyone's exhaustive switch.
public protocol DomainErrorCode: Hashable, Sendable, CustomStringConvertible {}

/// An error of the module whose codes are `Codes`.
public struct DomainError<Codes: DomainErrorCode>: Error, Sendable, Equatable, CustomStringConvertible {
    /// The code type by its usual name: `RulesError.Code` is `RulesErrorCode`.
    public typealias Code = Codes

    public let code: Code
    /// Human text: what failed, on what, and what to do about it.
    public let reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
