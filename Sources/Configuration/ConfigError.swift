// The one error type of the Configuration module, shaped like swift-asn1's ASN1Error: a code that
// tests compare, and a reason a person can act on. Every error names the file and, when it can be
// found, the line, so `description` reads like a compiler diagnostic: "FILE:LINE: REASON".

/// Everything that can go wrong while reading, parsing or validating nfowner's config file.
public struct ConfigError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Backing: String, Sendable {
            case fileNotFound
            case unreadable
            case syntax
            case unknownKey
            case wrongType
            case outOfRange
            case duplicate
            case invalidName
            case invalidCgroup
        }
        private let backing: Backing
        private init(_ backing: Backing) { self.backing = backing }

        /// A file named explicitly (`--config FILE`, `config check FILE`) does not exist.
        public static let fileNotFound = Code(.fileNotFound)
        /// The file exists but cannot be read, is too large, is not UTF-8 or contains a NUL byte.
        public static let unreadable = Code(.unreadable)
        /// The text is not valid TOML (reported by TOMLKit with line and column).
        public static let syntax = Code(.syntax)
        /// A key or table nfowner does not know; the reason suggests the closest known one.
        public static let unknownKey = Code(.unknownKey)
        /// A value has the wrong TOML type (a string where an integer is expected, …).
        public static let wrongType = Code(.wrongType)
        /// An integer or a list length is outside its documented range.
        public static let outOfRange = Code(.outOfRange)
        /// A list names the same value twice.
        public static let duplicate = Code(.duplicate)
        /// A user or group name is empty, too long, numeric-looking or has forbidden characters.
        public static let invalidName = Code(.invalidName)
        /// A cgroup path or unit name cannot be used (`..`, quotes, `;`, control characters, …).
        public static let invalidCgroup = Code(.invalidCgroup)

        public var description: String { backing.rawValue }
    }

    public let code: Code
    /// What is wrong and what is expected, without the file and line.
    public let reason: String
    /// The file the text came from, as the user named it ("" when there is none).
    public let file: String
    /// 1-based line of the offending key or syntax error, when it could be found.
    public let line: Int?

    public init(_ code: Code, _ reason: String, file: String = "", line: Int? = nil) {
        self.code = code
        self.reason = reason
        self.file = file
        self.line = line
    }

    /// "FILE:LINE: REASON", "FILE: REASON" without a line, or just the reason without a file.
    public var description: String { located(reason, file: file, line: line) }
}

/// How every diagnostic about a file reads, like a compiler's: "FILE:LINE: TEXT", "FILE: TEXT"
/// without a line, or just the text without a file.
public func located(_ text: String, file: String, line: Int?) -> String {
    switch (file.isEmpty, line) {
    case (true, _): text
    case (false, nil): "\(file): \(text)"
    case (false, let line?): "\(file):\(line): \(text)"
    }
}
