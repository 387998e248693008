// Small append-to-buffer writers shared by the JSON and text encoders. Events are written
// into one reusable [UInt8] per batch, so no String is built per field.

import PacketModel

extension Array where Element == UInt8 {
    @inlinable
    mutating func append(ascii text: StaticString) {
        text.withUTF8Buffer { append(contentsOf: $0) }
    }

    @inlinable
    mutating func append(decimal value: UInt64) {
        if value < 10 {
            append(UInt8(ascii: "0") &+ UInt8(value))
            return
        }
        // Up to 20 digits, written backwards into a fixed scratch value: no allocation.
        var scratch: (UInt64, UInt64, UInt64) = (0, 0, 0)
        Swift.withUnsafeMutableBytes(of: &scratch) { digits in
            var remaining = value
            var index = digits.count
            while remaining > 0, index > 0 {
                index -= 1
                digits[index] = UInt8(ascii: "0") &+ UInt8(remaining % 10)
                remaining /= 10
            }
            append(contentsOf: UnsafeRawBufferPointer(rebasing: digits[index...]))
        }
    }

    @inlinable
    mutating func append(decimal value: Int) {
        if value < 0 {
            append(UInt8(ascii: "-"))
            append(decimal: UInt64(value.magnitude))
        } else {
            append(decimal: UInt64(value))
        }
    }

    /// Appends `value` as decimal, left-padded with zeros to `width` digits.
    @inlinable
    mutating func append(decimal value: UInt64, zeroPaddedTo width: Int) {
        var digits = 1
        var limit: UInt64 = 10
        while value >= limit, digits < 20 {
            digits += 1
            let (next, overflow) = limit.multipliedReportingOverflow(by: 10)
            if overflow { break }
            limit = next
        }
        if digits < width {
            for _ in 0..<(width - digits) { append(UInt8(ascii: "0")) }
        }
        append(decimal: value)
    }

    /// Appends `text` padded with spaces to `width` columns (ASCII-width approximation).
    mutating func append(padded text: some StringProtocol, width: Int) {
        let before = count
        append(contentsOf: text.utf8)
        let written = count - before
        if written < width {
            append(contentsOf: repeatElement(UInt8(ascii: " "), count: width - written))
        }
    }
}

/// RFC 3339 timestamps in UTC with microseconds, e.g. 2026-11-24T22:53:11.123456Z.
public enum RFC3339 {
    /// Civil date from days since 1970-01-01 (Howard Hinnant's days_from_civil inverse).
    static func civilDate(daysSinceEpoch days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let shifted = days + 719_468
        let era = (shifted >= 0 ? shifted : shifted - 146_096) / 146_097
        let dayOfEra = shifted - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        let month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    /// The date and time up to the seconds' dot: "2026-11-24T23:04:44.".
    public static func appendSecond(_ seconds: UInt64, to buffer: inout [UInt8]) {
        var full: [UInt8] = []
        append(EventTime(seconds: seconds, microseconds: 0), to: &full)
        buffer.append(contentsOf: full.dropLast(7))   // "000000Z"
    }

    public static func append(_ time: EventTime, to buffer: inout [UInt8], dateAndTime: Bool = true) {
        let seconds = Int64(clamping: time.seconds)
        let secondOfDay = seconds % 86_400
        if dateAndTime {
            let date = civilDate(daysSinceEpoch: seconds / 86_400)
            buffer.append(decimal: UInt64(max(0, date.year)), zeroPaddedTo: 4)
            buffer.append(UInt8(ascii: "-"))
            buffer.append(decimal: UInt64(date.month), zeroPaddedTo: 2)
            buffer.append(UInt8(ascii: "-"))
            buffer.append(decimal: UInt64(date.day), zeroPaddedTo: 2)
            buffer.append(UInt8(ascii: "T"))
        }
        buffer.append(decimal: UInt64(secondOfDay / 3600), zeroPaddedTo: 2)
        buffer.append(UInt8(ascii: ":"))
        buffer.append(decimal: UInt64(secondOfDay % 3600 / 60), zeroPaddedTo: 2)
        buffer.append(UInt8(ascii: ":"))
        buffer.append(decimal: UInt64(secondOfDay % 60), zeroPaddedTo: 2)
        buffer.append(UInt8(ascii: "."))
        buffer.append(decimal: min(time.microseconds, 999_999), zeroPaddedTo: 6)
        if dateAndTime { buffer.append(UInt8(ascii: "Z")) }
    }

    public static func string(_ time: EventTime) -> String {
        var buffer: [UInt8] = []
        append(time, to: &buffer)
        return String(decoding: buffer, as: UTF8.self)
    }
}
