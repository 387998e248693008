/// Why a netlink buffer could not be decoded.
///
/// Shaped like swift-asn1's `ASN1Error`: callers and tests compare `code`; `reason` is for people
/// (it names the field and the numbers that were wrong); `offset` says where in the batch the
/// offending message or attribute starts.
public struct NetlinkWireError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Hashable {
        /// nlmsg_len is below the 16-byte header or runs past the buffer. Iteration cannot resync.
        case invalidMessageLength
        /// A message's fixed part (nfgenmsg, or the int32 of NLMSG_ERROR) is missing.
        case truncatedMessage
        /// nla_len is below the 4-byte attribute header or runs past its message.
        case invalidAttributeLength
        /// A known attribute has the wrong size for its type (e.g. a 2-byte NFULA_UID).
        case invalidAttributeValue
        /// An NLMSG_ERROR carries a positive or unrepresentable error number.
        case invalidErrorCode
        /// A message lacks an attribute it cannot be used without (a generic netlink family's id,
        /// an exit record's struct taskstats).
        case missingAttribute
    }

    public var code: Code
    public var reason: String
    /// Byte offset, from the start of the decoded buffer, of the message or attribute at fault.
    public var offset: Int

    public init(_ code: Code, _ reason: String, offset: Int) {
        self.code = code
        self.reason = reason
        self.offset = offset
    }

    public var description: String { "NetlinkWireError.\(code) at offset \(offset): \(reason)" }
}
