/// Why a packet could not be parsed at all.
///
/// Only the IP fixed header (and IPv4 options) can make parsing fail: anything after it that is
/// missing or malformed yields a partial `PacketSummary` instead, because the addresses alone
/// are still worth reporting. Tests compare `code`; `reason` is for people.
public struct PacketParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable, Hashable {
        /// Fewer bytes were captured than the IP header needs (fixed part or IPv4 options).
        case truncatedIPHeader
        /// The version nibble is neither 4 nor 6.
        case unsupportedVersion
        /// The IPv4 IHL is below 5 (20 bytes).
        case badHeaderLength
        /// The IPv4 total length is non-zero and smaller than the header itself.
        case badTotalLength
        /// The version nibble differs from the family the caller expected.
        case familyMismatch
    }

    public var code: Code
    /// Human text naming the field and the values, e.g.
    /// "IPv4 header length 12 is below the minimum of 20".
    public var reason: String

    public init(_ code: Code, _ reason: String) {
        self.code = code
        self.reason = reason
    }

    public var description: String { reason }
}
