/// One sample of the Prometheus text exposition format: `name{label="value",…} value`.
public struct MetricSample: Sendable, Equatable {
    public var name: String
    public var labels: [String: String]
    public var value: Double

    public init(name: String, labels: [String: String] = [:], value: Double) {
        self.name = name
        self.labels = labels
        self.value = value
    }
}

/// Why a scrape's text could not be read: the line (from 1) and what was wrong there.
public struct ExpositionParseError: Error, Sendable, Equatable, CustomStringConvertible {
    public var line: Int
    public var reason: String
    public var description: String { "line \(line): \(reason)" }
}

/// Reads the text exposition format (version 0.0.4) that `/metrics` serves: comments and blank
/// lines skipped, each sample's name, labels (with `\\`, `\"` and `\n` escapes) and value
/// (a float, `NaN`, `+Inf`, `-Inf`), an optional timestamp ignored. Untrusted bytes: every read
/// is bounds-checked and anything else is a typed error, never a trap.
public enum ExpositionText {
    public static func samples(_ text: [UInt8]) throws(ExpositionParseError) -> [MetricSample] {
        var samples: [MetricSample] = []
        var lineNumber = 0
        var start = 0
        while start < text.count {
            lineNumber += 1
            var end = start
            while end < text.count && text[end] != UInt8(ascii: "\n") { end += 1 }
            var reader = LineReader(bytes: text, position: start, end: end, line: lineNumber)
            reader.skipBlanks()
            if !reader.atEnd && reader.peek != UInt8(ascii: "#") {
                samples.append(try reader.sample())
            }
            start = end + 1
        }
        return samples
    }
}

private struct LineReader {
    let bytes: [UInt8]
    var position: Int
    let end: Int
    let line: Int

    var atEnd: Bool { position >= end }
    var peek: UInt8 { bytes[position] }

    func failure(_ reason: String) -> ExpositionParseError { ExpositionParseError(line: line, reason: reason) }

    mutating func skipBlanks() {
        while !atEnd && (peek == UInt8(ascii: " ") || peek == UInt8(ascii: "\t") || peek == UInt8(ascii: "\r")) {
            position += 1
        }
    }

    mutating func sample() throws(ExpositionParseError) -> MetricSample {
        let name = try identifier(allowColon: true, what: "a metric name")
        var labels: [String: String] = [:]
        skipBlanks()
        if !atEnd && peek == UInt8(ascii: "{") {
            position += 1
            while true {
                skipBlanks()
                guard !atEnd else { throw failure("labels of \(name) not closed with }") }
                if peek == UInt8(ascii: "}") {
                    position += 1
                    break
                }
                let label = try identifier(allowColon: false, what: "a label name")
                skipBlanks()
                guard !atEnd, peek == UInt8(ascii: "=") else { throw failure("label \(label) of \(name) has no =") }
                position += 1
                skipBlanks()
                labels[label] = try quoted(label)
                skipBlanks()
                guard !atEnd else { throw failure("labels of \(name) not closed with }") }
                if peek == UInt8(ascii: ",") {
                    position += 1
                } else if peek != UInt8(ascii: "}") {
                    throw failure("expected , or } after label \(label) of \(name)")
                }
            }
        }
        skipBlanks()
        let valueText = word()
        guard let value = Self.number(valueText) else {
            throw failure(valueText.isEmpty ? "\(name) has no value" : "\(name): '\(valueText)' is not a number")
        }
        skipBlanks()
        let timestamp = word()
        guard timestamp.isEmpty || Int64(timestamp) != nil else { throw failure("\(name): '\(timestamp)' is not a timestamp") }
        skipBlanks()
        guard atEnd else { throw failure("unexpected text after the value of \(name)") }
        return MetricSample(name: name, labels: labels, value: value)
    }

    /// `[a-zA-Z_:][a-zA-Z0-9_:]*` (colons only in metric names).
    mutating func identifier(allowColon: Bool, what: String) throws(ExpositionParseError) -> String {
        let first = position
        while !atEnd {
            let byte = peek
            let letter = (byte >= 0x41 && byte <= 0x5A) || (byte >= 0x61 && byte <= 0x7A) || byte == UInt8(ascii: "_")
                || (allowColon && byte == UInt8(ascii: ":"))
            let digit = byte >= 0x30 && byte <= 0x39
            guard letter || (digit && position > first) else { break }
            position += 1
        }
        guard position > first else { throw failure("expected \(what)") }
        return String(decoding: bytes[first..<position], as: UTF8.self)
    }

    mutating func quoted(_ label: String) throws(ExpositionParseError) -> String {
        guard !atEnd, peek == UInt8(ascii: "\"") else { throw failure("the value of label \(label) is not quoted") }
        position += 1
        var value: [UInt8] = []
        while true {
            guard !atEnd else { throw failure("the value of label \(label) is not closed with \"") }
            let byte = peek
            position += 1
            if byte == UInt8(ascii: "\"") { break }
            if byte == UInt8(ascii: "\\") {
                guard !atEnd else { throw failure("the value of label \(label) ends in a lone \\") }
                let escaped = peek
                position += 1
                switch escaped {
                case UInt8(ascii: "n"): value.append(UInt8(ascii: "\n"))
                case UInt8(ascii: "\\"), UInt8(ascii: "\""): value.append(escaped)
                default: throw failure("label \(label): unknown escape \\\(Character(Unicode.Scalar(escaped)))")
                }
            } else {
                value.append(byte)
            }
        }
        return String(decoding: value, as: UTF8.self)
    }

    mutating func word() -> String {
        let first = position
        while !atEnd && peek != UInt8(ascii: " ") && peek != UInt8(ascii: "\t") && peek != UInt8(ascii: "\r") { position += 1 }
        return String(decoding: bytes[first..<position], as: UTF8.self)
    }

    static func number(_ text: String) -> Double? {
        switch text {
        case "NaN": return .nan
        case "+Inf", "Inf": return .infinity
        case "-Inf": return -.infinity
        default:
            // Double(String) also takes "inf", "nan" and hex floats: the format has none of these.
            guard !text.isEmpty, text.allSatisfy({ $0.isASCII && ($0.isNumber || "+-.eE".contains($0)) }) else { return nil }
            return Double(text)
        }
    }
}
