// The Policy module's error type, shaped like ConfigError: a code tests compare, a reason a
// person can act on, the file and (when found) the line, printed "FILE:LINE: REASON".

import Configuration

public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Sendable {
            case fileNotFound, unreadable, syntax, unknownKey, wrongType, invalidValue, outOfRange, missingKey,
                 duplicate, tooLarge
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// The policy file does not exist.
        public static let fileNotFound = Code(.fileNotFound)
        /// It cannot be read, is too large, is not UTF-8 or holds a NUL byte.
        public static let unreadable = Code(.unreadable)
        /// Not valid TOML.
        public static let syntax = Code(.syntax)
        /// A key the format does not have; the reason suggests the closest one.
        public static let unknownKey = Code(.unknownKey)
        /// A value of the wrong TOML type.
        public static let wrongType = Code(.wrongType)
        /// A value of the right type that means nothing: a bad CIDR, a range whose start is past
        /// its end, an unknown action or protocol, a relative exe path.
        public static let invalidValue = Code(.invalidValue)
        /// A number outside its range (a port above 65535, a uid of -1).
        public static let outOfRange = Code(.outOfRange)
        /// A rule without its `action`.
        public static let missingKey = Code(.missingKey)
        /// Two rules with one name.
        public static let duplicate = Code(.duplicate)
        /// More rules or list items than nfowner accepts.
        public static let tooLarge = Code(.tooLarge)

        public var description: String { backing.rawValue }
    }

    public let code: Code
    public let reason: String
    /// The file as the user named it ("" for text without a file).
    public let file: String
    /// 1-based line, when it could be found.
    public let line: Int?

    public init(_ code: Code, _ reason: String, file: String = "", line: Int? = nil) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { located(reason, file: file, line: line) }
}

/// Something legal but almost certainly not meant (a rule an earlier one shadows).
public struct PolicyWarning: Sendable, Equatable, CustomStringConvertible {
    public let reason: String
    public let file: String
    public let line: Int?

    public init(_ reason: String, file: String = "", line: Int? = nil) {
        self.reason = reason
        self.file = file
        self.line = line
    }

    public var description: String { located("warning: " + reason, file: file, line: line) }
}

/// A parsed policy file: the policy when there was no error, every error, every warning.
public struct PolicyCheck: Sendable {
    public var policy: Policy?
    public var errors: [PolicyError]
    public var warnings: [PolicyWarning]

    /// The policy, or the first error.
    public func get() throws(PolicyError) -> Policy {
        if let policy, errors.isEmpty { return policy }
        throw errors.first ?? PolicyError(.invalidValue, "the policy could not be read")
    }
}
