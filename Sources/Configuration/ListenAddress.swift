/// Where an HTTP endpoint listens, as the config writes it: `IPv4:PORT` or `[IPv6]:PORT`.
/// Numeric addresses only, so a listener never depends on name resolution at start-up.
public struct ListenAddress: Sendable, Equatable, CustomStringConvertible {
    /// The address as written, without brackets ("127.0.0.1", "::1").
    public let host: String
    public let port: UInt16
    public let isIPv6: Bool

    /// Nil unless `text` is a numeric IPv4 address or a bracketed IPv6 address, a colon and a
    /// port from 1 to 65535.
    public init?(_ text: String) {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        let portText = text[text.index(after: colon)...]
        guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy(\.isASCII), portText.allSatisfy(\.isNumber),
              let port = UInt16(portText), port > 0 else { return nil }
        if host.hasPrefix("[") {
            guard host.hasSuffix("]"), host.count > 2 else { return nil }
            host = String(host.dropFirst().dropLast())
            guard host.contains(":"), host.allSatisfy({ $0.isHexDigit || $0 == ":" || $0 == "." }) else { return nil }
            isIPv6 = true
        } else {
            let parts = host.split(separator: ".", omittingEmptySubsequences: false)
            guard parts.count == 4, parts.allSatisfy({ part in
                !part.isEmpty && part.count <= 3 && part.allSatisfy { $0.isASCII && $0.isNumber } && Int(part)! <= 255
            }) else { return nil }
            isIPv6 = false
        }
        self.host = host
        self.port = port
    }

    public var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }
}
