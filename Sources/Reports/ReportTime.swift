/// The report's time syntax, and Unix seconds <-> UTC calendar dates (proleptic Gregorian,
/// no leap seconds, as POSIX time is), without Foundation or the C library.
///
/// Accepted:
///   now
///   90s  30m  1h  2d  1w  1h30m    relative: that long before now
///   2026-12-05                     midnight UTC
///   2026-12-05 14:30  2026-12-05 14:30:15  2026-12-05T14:30:15    UTC
///   2026-12-05T14:30:15Z  2026-12-05T14:30:15.5+01:00              RFC 3339 (offset applied;
///                                                                  fractions of a second dropped)
public enum ReportTime {
    public struct ParseError: Error, Equatable, CustomStringConvertible {
        public var text: String
        public var description: String {
            "'\(text)' is not a time: give now, a duration before now (90s, 30m, 1h, 2d, 1w, 1h30m), "
                + "a UTC date and time (2026-12-05, 2026-12-05 14:30, 2026-12-05 14:30:15) or RFC 3339 "
                + "(2026-12-05T14:30:15Z, 2026-12-05T15:30:15+01:00)"
        }
    }

    /// Parses `text` relative to `now` (Unix seconds). Throws `ParseError` for anything else.
    public static func parse(_ text: String, now: Int64) throws(ParseError) -> Int64 {
        let trimmed = text.trimmingSpaces()
        if trimmed == "now" { return now }
        if let seconds = duration(trimmed) { return now - seconds }
        if let absolute = absolute(trimmed) { return absolute }
        throw ParseError(text: text)
    }

    /// "1h30m" -> 5400; nil unless the whole text is number+unit pairs (s, m, h, d, w).
    public static func duration(_ text: String) -> Int64? {
        var total: Int64 = 0
        var number: Int64?
        var sawUnit = false
        for character in text {
            if let digit = character.wholeNumberValue, character.isASCII {
                let (times, overflow1) = (number ?? 0).multipliedReportingOverflow(by: 10)
                let (value, overflow2) = times.addingReportingOverflow(Int64(digit))
                if overflow1 || overflow2 { return nil }
                number = value
                continue
            }
            guard let n = number else { return nil }
            let unit: Int64
            switch character {
            case "s": unit = 1
            case "m": unit = 60
            case "h": unit = 3600
            case "d": unit = 86400
            case "w": unit = 604_800
            default: return nil
            }
            let (part, overflow1) = n.multipliedReportingOverflow(by: unit)
            let (sum, overflow2) = total.addingReportingOverflow(part)
            if overflow1 || overflow2 || sum > 100 * 366 * 86400 { return nil }
            total = sum
            number = nil
            sawUnit = true
        }
        return sawUnit && number == nil ? total : nil
    }

    /// A date, a date and time (UTC), or RFC 3339 with Z or an offset.
    static func absolute(_ text: String) -> Int64? {
        var scanner = Scanner(Array(text.utf8))
        guard let year = scanner.digits(4), scanner.skip("-"), let month = scanner.digits(2), scanner.skip("-"),
              let day = scanner.digits(2), (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return nil }
        var seconds = Int64(daysFromCivil(year: year, month: month, day: day)) * 86400
        if scanner.atEnd { return seconds }
        guard scanner.skip(" ") || scanner.skip("T") || scanner.skip("t"),
              let hour = scanner.digits(2), scanner.skip(":"), let minute = scanner.digits(2),
              hour < 24, minute < 60 else { return nil }
        var second = 0
        if scanner.skip(":") {
            guard let s = scanner.digits(2), s < 60 else { return nil }
            second = s
            if scanner.skip(".") {
                guard scanner.skipDigits() else { return nil }
            }
        }
        seconds += Int64(hour * 3600 + minute * 60 + second)
        if scanner.atEnd { return seconds }
        if scanner.skip("Z") || scanner.skip("z") { return scanner.atEnd ? seconds : nil }
        let sign: Int64
        if scanner.skip("+") { sign = 1 } else if scanner.skip("-") { sign = -1 } else { return nil }
        guard let offsetHours = scanner.digits(2), scanner.skip(":"), let offsetMinutes = scanner.digits(2),
              offsetHours < 24, offsetMinutes < 60, scanner.atEnd else { return nil }
        return seconds - sign * Int64(offsetHours * 3600 + offsetMinutes * 60)
    }

    /// "2026-12-05T11:00:00Z".
    public static func rfc3339(_ seconds: Int64) -> String {
        let c = civil(seconds)
        return "\(pad(c.year, 4))-\(pad(c.month))-\(pad(c.day))T\(pad(c.hour)):\(pad(c.minute)):\(pad(c.second))Z"
    }

    /// "2026-12-05 11:00:00" (UTC, for people).
    public static func readable(_ seconds: Int64) -> String {
        let c = civil(seconds)
        return "\(pad(c.year, 4))-\(pad(c.month))-\(pad(c.day)) \(pad(c.hour)):\(pad(c.minute)):\(pad(c.second))"
    }

    /// A length of time in the relative syntax's units: 3600 -> "1h", 5400 -> "1h30m", 0 -> "0s".
    public static func durationText(_ seconds: Int64) -> String {
        if seconds <= 0 { return "0s" }
        var rest = seconds
        var text = ""
        for (unit, name) in [(Int64(86400), "d"), (3600, "h"), (60, "m"), (1, "s")] where rest >= unit {
            text += "\(rest / unit)\(name)"
            rest %= unit
        }
        return text
    }

    struct Civil: Equatable {
        var year, month, day, hour, minute, second: Int
    }

    static func civil(_ seconds: Int64) -> Civil {
        let days = seconds >= 0 ? seconds / 86400 : (seconds - 86399) / 86400
        let secondOfDay = Int(seconds - days * 86400)
        let date = civilFromDays(days)
        return Civil(year: date.year, month: date.month, day: date.day, hour: secondOfDay / 3600,
                     minute: secondOfDay / 60 % 60, second: secondOfDay % 60)
    }

    // Howard Hinnant's days_from_civil / civil_from_days (public domain algorithms).
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    static func civilFromDays(_ days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = Int(days) + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private static func pad(_ value: Int, _ width: Int = 2) -> String {
        let digits = String(value)
        return String(repeating: "0", count: max(0, width - digits.count)) + digits
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0
        init(_ bytes: [UInt8]) { self.bytes = bytes }
        var atEnd: Bool { index == bytes.count }

        mutating func skip(_ character: Unicode.Scalar) -> Bool {
            guard index < bytes.count, bytes[index] == UInt8(ascii: character) else { return false }
            index += 1
            return true
        }

        /// Exactly `count` ASCII digits.
        mutating func digits(_ count: Int) -> Int? {
            guard bytes.count - index >= count else { return nil }
            var value = 0
            for byte in bytes[index..<index + count] {
                guard byte >= 48 && byte <= 57 else { return nil }
                value = value * 10 + Int(byte - 48)
            }
            index += count
            return value
        }

        /// One or more digits.
        mutating func skipDigits() -> Bool {
            let start = index
            while index < bytes.count, bytes[index] >= 48, bytes[index] <= 57 { index += 1 }
            return index > start
        }
    }
}

extension String {
    fileprivate func trimmingSpaces() -> String {
        var scalars = Substring(self)
        while scalars.first == " " { scalars.removeFirst() }
        while scalars.last == " " { scalars.removeLast() }
        return String(scalars)
    }
}
