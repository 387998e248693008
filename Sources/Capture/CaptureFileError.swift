/// Why a capture file could not be read (further).
///
/// Every error says where (`offset`, the byte where the bad block, record or header starts) and
/// how many packet records were read completely before it (`recordsBefore`): a file cut short by
/// a crash or SIGKILL ends in `.truncated`, and everything before it is good. Tests compare
/// `code`; `reason` is for people.
public struct CaptureFileError: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Code: Sendable, Equatable, Hashable {
        /// The file starts with neither a pcapng section header nor a pcap magic number.
        case notACaptureFile
        /// The file ends inside a header, block or record (a file cut short).
        case truncated
        /// A pcapng block length below 12, not a multiple of 4, or too small for the block's
        /// fixed fields.
        case badBlockLength
        /// A pcapng block's trailing length differs from its leading one.
        case blockLengthMismatch
        /// A section header whose byte-order magic is 0x1A2B3C4D in neither byte order.
        case badByteOrderMagic
        /// A pcapng section of major version other than 1, or pcap of major version other than 2.
        case unsupportedVersion
        /// A field that cannot be right: a captured length past its block, a timestamp
        /// resolution no clock has.
        case badField
        /// An option whose length runs past its block, or a known option of the wrong length.
        case badOption
        /// A packet that names an interface no Interface Description Block described.
        case unknownInterface
    }

    public var code: Code
    /// Human text naming the field and the values, e.g.
    /// "enhanced packet block: captured length 1500 exceeds the 96 bytes of the block".
    public var reason: String
    /// The byte offset in the file where the failing header, block or record starts.
    public var offset: Int
    /// Packet records read completely before this error.
    public var recordsBefore: Int

    public init(_ code: Code, _ reason: String, offset: Int, recordsBefore: Int) {
        self.code = code
        self.reason = reason
        self.offset = offset
        self.recordsBefore = recordsBefore
    }

    public var description: String {
        "\(reason) (at byte \(offset), after \(recordsBefore) complete packet record\(recordsBefore == 1 ? "" : "s"))"
    }
}
