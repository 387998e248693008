/// Sizes and rates as people read them: binary units (B, KiB, MiB, GiB, TiB), three
/// significant digits.
public enum HumanUnits {
    private static let units = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"]

    /// "0 B", "999 B", "1.00 KiB", "12.3 MiB", "512 GiB".
    public static func bytes(_ value: UInt64) -> String { scaled(Double(value)) }

    /// "0 B/s", "12.3 KiB/s".
    public static func rate(_ bytesPerSecond: Double) -> String { scaled(max(0, bytesPerSecond)) + "/s" }

    private static func scaled(_ value: Double) -> String {
        var value = value
        var unit = 0
        while value >= 1024, unit < units.count - 1 {
            value /= 1024
            unit += 1
        }
        if unit == 0 { return "\(Int(value.rounded(.down))) B" }
        let digits = value < 10 ? 2 : value < 100 ? 1 : 0
        return format(value, fractionDigits: digits) + " " + units[unit]
    }

    /// `value` with `fractionDigits` digits after the point (no Foundation formatter).
    static func format(_ value: Double, fractionDigits: Int) -> String {
        var scale = 1.0
        for _ in 0..<fractionDigits { scale *= 10 }
        let rounded = (value * scale).rounded()
        let whole = Int(rounded / scale)
        guard fractionDigits > 0 else { return String(whole) }
        let fraction = Int(rounded) - whole * Int(scale)
        let digits = String(fraction)
        return "\(whole)." + String(repeating: "0", count: max(0, fractionDigits - digits.count)) + digits
    }
}
