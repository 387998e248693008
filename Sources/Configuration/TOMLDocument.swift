// The steps every TOML file nfowner reads goes through before its own schema is checked: read at
// most a bounded number of bytes of UTF-8, refuse NUL bytes (TOMLKit hands the text to C as a
// NUL-terminated string, which would silently cut it), refuse the inputs toml++ traps on
// (`ParserGuard`), parse with TOMLKit, and keep a `KeyLocator` so that validation errors found
// later still carry a line. The config file and the policy file (module Policy) share them.

import Foundation
import TOMLKit

/// A parsed TOML text and the lines of its keys.
public struct TOMLDocument {
    public let root: TOMLTable
    public let locator: KeyLocator

    /// Reads `file` (at most `maxBytes`). Throws `.fileNotFound`, `.unreadable` (a directory, no
    /// permission, too large, not UTF-8); `missing` is the advice appended when it does not exist.
    public static func readText(file: String, maxBytes: Int, missing: String) throws(ConfigError) -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: file, isDirectory: &isDirectory) else {
            throw ConfigError(.fileNotFound, "no such file; \(missing)", file: file)
        }
        guard !isDirectory.boolValue else {
            throw ConfigError(.unreadable, "is a directory, not a file", file: file)
        }
        guard let handle = FileHandle(forReadingAtPath: file) else {
            throw ConfigError(.unreadable, "cannot be opened for reading (permission denied?)", file: file)
        }
        defer { try? handle.close() }
        let data: Data
        do {
            data = try handle.read(upToCount: maxBytes + 1) ?? Data()
        } catch {
            throw ConfigError(.unreadable, "cannot be read: \(error.localizedDescription)", file: file)
        }
        guard data.count <= maxBytes else {
            throw ConfigError(.unreadable, "is larger than \(maxBytes) bytes", file: file)
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            throw ConfigError(.unreadable, "is not UTF-8 text (TOML files are UTF-8)", file: file)
        }
        return text
    }

    /// Parses `text`; `file` names it in errors. Throws `.unreadable` for a NUL byte and
    /// `.syntax` (with the line when known) for text that is not TOML.
    public init(parsing text: String, file: String) throws(ConfigError) {
        if let nul = text.utf8.firstIndex(of: 0) {
            let line = text.utf8[..<nul].reduce(1) { $1 == UInt8(ascii: "\n") ? $0 + 1 : $0 }
            throw ConfigError(.unreadable, "contains a NUL byte; TOML text cannot", file: file, line: line)
        }
        if let unsafe = ParserGuard.firstUnsafeHeader(in: text) ?? ParserGuard.firstBraceAfterOpening(in: text) {
            throw ConfigError(.syntax, "invalid TOML: \(unsafe.reason) (column \(unsafe.column))", file: file, line: unsafe.line)
        }
        do {
            root = try TOMLTable(string: text)
        } catch let error as TOMLParseError {
            let position = error.source.begin
            throw ConfigError(.syntax, "invalid TOML: \(printable(error.description)) (column \(position.column))",
                              file: file, line: position.line > 0 ? position.line : nil)
        } catch {
            throw ConfigError(.syntax, "invalid TOML: \(printable(String(describing: error)))", file: file)
        }
        locator = KeyLocator(text: text)
    }

    /// A value as a message shows it: strings quoted, numbers and booleans as written,
    /// containers by kind.
    public static func describe(_ value: TOMLValueConvertible) -> String {
        switch value.type {
        case .string: quoted(value.string ?? "")
        case .int: value.int.map { String($0) } ?? "an integer"
        case .double: value.double.map { "\($0)" } ?? "a floating-point number"
        case .bool: value.bool.map { String($0) } ?? "a boolean"
        case .array: "an array"
        case .table: "a table"
        case .date: "a date"
        case .time: "a time"
        case .dateTime: "a date-time"
        }
    }
}
