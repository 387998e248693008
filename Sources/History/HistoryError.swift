import GRDB

/// What went wrong with the history database, phrased for the person who has to fix it: the
/// cause, the path, and what to do. Tests compare `code`.
public struct HistoryError: Error, Sendable, Equatable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// No file at the path (reading).
        public static let noDatabase = Code(name: "noDatabase")
        /// The file system is full (SQLITE_FULL), or the database reached its page limit.
        public static let diskFull = Code(name: "diskFull")
        /// The file or its file system cannot be written (SQLITE_READONLY, EROFS, EACCES).
        public static let readOnly = Code(name: "readOnly")
        /// The file is not a database, or is damaged (SQLITE_NOTADB, SQLITE_CORRUPT).
        public static let notADatabase = Code(name: "notADatabase")
        /// The file was written by a newer nfowner whose schema this one does not know.
        public static let newerSchema = Code(name: "newerSchema")
        /// The file or its directory cannot be opened or created (SQLITE_CANTOPEN, permissions).
        public static let cannotOpen = Code(name: "cannotOpen")
        /// This user may not read the file or a directory above it (reading).
        public static let permissionDenied = Code(name: "permissionDenied")
        /// `PRAGMA integrity_check` found problems.
        public static let corrupt = Code(name: "corrupt")
        /// The writer was closed.
        public static let closed = Code(name: "closed")
        /// Anything else SQLite reported.
        public static let other = Code(name: "other")
    }

    public var code: Code
    /// The database file.
    public var path: String
    /// The whole sentence for the user.
    public var reason: String
    public var description: String { reason }

    public init(code: Code, path: String, reason: String) {
        self.code = code
        self.path = path
        self.reason = reason
    }

    static func noDatabase(_ path: String) -> HistoryError {
        HistoryError(code: .noDatabase, path: path,
                     reason: "no history at \(path): start `nfowner run` (it writes [storage] path) or give --db")
    }

    static func permissionDenied(_ path: String, detail: String) -> HistoryError {
        HistoryError(code: .permissionDenied, path: path,
                     reason: "cannot read history at \(path): \(detail.lowercased()); run as root (sudo nfowner report) "
                        + "or copy the file somewhere readable and give --db")
    }

    static func newerSchema(_ path: String, unknown: [String]) -> HistoryError {
        HistoryError(code: .newerSchema, path: path,
                     reason: "\(path) was written by a newer nfowner (schema \(unknown.sorted().joined(separator: ", ")) "
                        + "is unknown to this one): upgrade nfowner, or give [storage] path another file")
    }

    static func closed(_ path: String) -> HistoryError {
        HistoryError(code: .closed, path: path, reason: "the history writer for \(path) is closed")
    }

    /// Classifies a GRDB/SQLite error: `doing` is what was attempted ("write history to").
    static func from(_ error: any Error, path: String, doing: String) -> HistoryError {
        if let error = error as? HistoryError { return error }
        guard let database = error as? DatabaseError else {
            return HistoryError(code: .other, path: path, reason: "cannot \(doing) \(path): \(error)")
        }
        let detail = database.message ?? "\(database.resultCode)"
        switch database.resultCode {
        case .SQLITE_FULL:
            return HistoryError(code: .diskFull, path: path,
                                reason: "cannot \(doing) \(path): disk full; free space on its file system, "
                                    + "or lower [storage] max_mb or retention_days")
        case .SQLITE_READONLY:
            return HistoryError(code: .readOnly, path: path,
                                reason: "cannot \(doing) \(path): the file or its file system is read-only; "
                                    + "make it writable for nfowner, or give [storage] path a writable place")
        case .SQLITE_PERM, .SQLITE_AUTH:
            return HistoryError(code: .readOnly, path: path,
                                reason: "cannot \(doing) \(path): permission denied; run as root or fix the file's owner")
        case .SQLITE_NOTADB, .SQLITE_CORRUPT:
            return HistoryError(code: .notADatabase, path: path,
                                reason: "cannot \(doing) \(path): it is not an nfowner history database, or it is "
                                    + "damaged (\(detail)); check the path: a damaged history can be moved away, "
                                    + "and `nfowner run` starts a new one")
        case .SQLITE_CANTOPEN:
            return HistoryError(code: .cannotOpen, path: path,
                                reason: "cannot \(doing) \(path): cannot open the file (\(detail)); check that it "
                                    + "and its directory exist and that nfowner may use them")
        case .SQLITE_IOERR:
            return HistoryError(code: .other, path: path,
                                reason: "cannot \(doing) \(path): I/O error (\(detail)); check the disk and the kernel log")
        default:
            return HistoryError(code: .other, path: path, reason: "cannot \(doing) \(path): \(detail)")
        }
    }
}
