// The one error type of the Rules module: the shared `DomainError` shape (a code that tests
// compare, and a reason a person can act on: it names the cause and, where there is one, the fix).
import NetfilterSystem

/// Everything that can go wrong while building, installing, inspecting or removing nfowner's
/// nftables table.
public typealias RulesError = DomainError<RulesErrorCode>

public struct RulesErrorCode: DomainErrorCode {
    private enum Backing: String, Sendable {
        case invalidSpec
        case unsafeText
        case nftNotFound
        case nsenterNotFound
        case namespaceNotFound
        case permissionDenied
        case kernelUnsupported
        case nftFailed
        case unexpectedOutput
        case ioFailure
    }
    private let backing: Backing
    private init(_ backing: Backing) { self.backing = backing }

    /// A field of `RulesetSpec` is out of range or inconsistent.
    public static let invalidSpec = RulesErrorCode(.invalidSpec)
    /// A string that would reach nft text (prefix, comment, table name) cannot be written safely.
    public static let unsafeText = RulesErrorCode(.unsafeText)
    /// The nft binary is not installed (or not where we were told).
    public static let nftNotFound = RulesErrorCode(.nftNotFound)
    /// `--netns` needs nsenter (util-linux), which is missing.
    public static let nsenterNotFound = RulesErrorCode(.nsenterNotFound)
    /// `/run/netns/NAME` does not exist.
    public static let namespaceNotFound = RulesErrorCode(.namespaceNotFound)
    /// nft (or nsenter) was refused: not root / no CAP_NET_ADMIN.
    public static let permissionDenied = RulesErrorCode(.permissionDenied)
    /// The kernel lacks nf_tables, or its log statement / nfnetlink_log.
    public static let kernelUnsupported = RulesErrorCode(.kernelUnsupported)
    /// nft exited non-zero for another reason; the reason carries its stderr.
    public static let nftFailed = RulesErrorCode(.nftFailed)
    /// nft or /proc printed something the parsers do not understand.
    public static let unexpectedOutput = RulesErrorCode(.unexpectedOutput)
    /// Starting a process or reading a file failed.
    public static let ioFailure = RulesErrorCode(.ioFailure)

    public var description: String { backing.rawValue }
}
