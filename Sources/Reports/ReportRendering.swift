import Accounting

/// The report's three formats. Pure: a result in, text out. The JSON and CSV shapes are a
/// public contract (docs/report.md): change them only compatibly (new keys or columns at the end).
public enum ReportRendering {
    // MARK: Table

    /// Aligned columns for people: a header line (range, grouping, mode, unaccounted), one line
    /// per row sorted by bytes, human byte units, "-" for unknown values.
    public static func table(_ result: ReportResult) -> String {
        var lines: [String] = []
        let by = result.dimensions.map(\.rawValue).joined(separator: ",")
        let modes = result.modes.isEmpty ? "none recorded" : result.modes.map(\.rawValue).joined(separator: " and ")
        lines.append("Traffic from \(ReportTime.readable(result.since)) to \(ReportTime.readable(result.until)) UTC "
                     + "(\(ReportTime.durationText(result.until - result.since))) by \(by); "
                     + "counted from \(modes); unaccounted: \(result.unaccountedPackets) packets")
        if result.rows.isEmpty {
            lines.append("No traffic recorded in this range.")
            return lines.joined(separator: "\n") + "\n"
        }
        let showMode = result.modes.count > 1
        var header = result.dimensions.map { $0.rawValue.uppercased() } + ["DIR"]
        if showMode { header.append("MODE") }
        header += ["BYTES", "PACKETS", "FLOWS"]
        let numericColumns = 3
        var cells: [[String]] = [header]
        for row in result.rows {
            var line = row.keys.map { $0.isEmpty ? "-" : $0 } + [row.direction.rawValue]
            if showMode { line.append(row.mode.rawValue) }
            line += [humanBytes(row.counts.bytes), String(row.counts.packets), String(row.counts.flows)]
            cells.append(line)
        }
        let widths = header.indices.map { column in cells.map { $0[column].count }.max() ?? 0 }
        let firstNumeric = header.count - numericColumns
        for line in cells {
            let padded = line.enumerated().map { column, text -> String in
                let fill = String(repeating: " ", count: widths[column] - text.count)
                if column >= firstNumeric { return fill + text }
                return column == line.count - 1 ? text : text + fill
            }
            lines.append(padded.joined(separator: "  "))
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// "0 B", "1023 B", "1.0 KiB", "1.5 MiB", … (binary units, one decimal).
    public static func humanBytes(_ bytes: UInt64) -> String {
        if bytes < 1024 { return "\(bytes) B" }
        let units = ["KiB", "MiB", "GiB", "TiB", "PiB", "EiB"]
        var value = Double(bytes) / 1024
        var unit = 0
        while value >= 1023.95 && unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        let tenths = Int((value * 10).rounded())
        return "\(tenths / 10).\(tenths % 10) \(units[unit])"
    }

    // MARK: JSON

    /// One JSON object (and a newline):
    /// `{"since":"…Z","until":"…Z","modes":[…],"rows":[{<dimension>:string|null,…,"direction":"out"|"in",
    /// "mode":"packets"|"kernel","bytes":n,"packets":n,"flows":n},…],"unaccounted":n}`.
    public static func json(_ result: ReportResult) -> String {
        var out = "{\"since\":\(jsonString(ReportTime.rfc3339(result.since)))"
        out += ",\"until\":\(jsonString(ReportTime.rfc3339(result.until)))"
        out += ",\"modes\":[" + result.modes.map { jsonString($0.rawValue) }.joined(separator: ",") + "]"
        out += ",\"rows\":["
        for (index, row) in result.rows.enumerated() {
            if index > 0 { out += "," }
            out += "{"
            for (dimension, value) in zip(result.dimensions, row.keys) {
                out += "\(jsonString(dimension.rawValue)):\(value.isEmpty ? "null" : jsonString(value)),"
            }
            out += "\"direction\":\(jsonString(row.direction.rawValue)),\"mode\":\(jsonString(row.mode.rawValue))"
            out += ",\"bytes\":\(row.counts.bytes),\"packets\":\(row.counts.packets),\"flows\":\(row.counts.flows)}"
        }
        out += "],\"unaccounted\":\(result.unaccountedPackets)}\n"
        return out
    }

    static func jsonString(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20 || scalar.value == 0x7F:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }

    // MARK: CSV

    /// RFC 4180: a header row (the dimensions, then direction, mode, bytes, packets, flows),
    /// CRLF line ends, fields quoted when they hold a comma, quote, CR or LF; unknown values empty.
    /// The unaccounted packets are not a row: they are in the table's header and the JSON.
    public static func csv(_ result: ReportResult) -> String {
        var lines = [(result.dimensions.map(\.rawValue) + ["direction", "mode", "bytes", "packets", "flows"])
            .joined(separator: ",")]
        for row in result.rows {
            let fields = row.keys.map(csvField) + [row.direction.rawValue, row.mode.rawValue,
                                                   String(row.counts.bytes), String(row.counts.packets),
                                                   String(row.counts.flows)]
            lines.append(fields.joined(separator: ","))
        }
        return lines.map { $0 + "\r\n" }.joined()
    }

    static func csvField(_ text: String) -> String {
        guard text.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" }) else {
            return text
        }
        return "\"" + text.replacingQuotes() + "\""
    }
}

extension String {
    fileprivate func replacingQuotes() -> String {
        var out = ""
        for character in self {
            if character == "\"" { out += "\"\"" } else { out.append(character) }
        }
        return out
    }
}
