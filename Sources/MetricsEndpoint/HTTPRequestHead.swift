/// The start of an HTTP/1.x request, as far as a metrics endpoint needs it: method and path.
/// Untrusted bytes: bounded, checked, never trapping.
public struct HTTPRequestHead: Sendable, Equatable {
    public var method: String
    /// The request target without its query string ("/metrics").
    public var path: String

    /// The longest request head read; Prometheus sends a few hundred bytes.
    public static let maximumBytes = 8192

    public enum ParseResult: Sendable, Equatable {
        case complete(HTTPRequestHead)
        /// No blank line yet: read more (unless `maximumBytes` are in).
        case incomplete
        /// Not an HTTP/1.x request line.
        case malformed
    }

    /// Parses `bytes` once they hold the whole head (up to the blank line).
    public static func parse(_ bytes: [UInt8]) -> ParseResult {
        guard let end = headEnd(bytes) else {
            return bytes.count >= maximumBytes ? .malformed : .incomplete
        }
        let lineEnd = bytes[..<end].firstIndex { $0 == UInt8(ascii: "\r") || $0 == UInt8(ascii: "\n") } ?? end
        let parts = bytes[..<lineEnd].split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        guard parts.count == 3,
              parts[0].count <= 16, parts[0].allSatisfy({ (0x41...0x5A).contains($0) }),
              !parts[1].isEmpty, parts[1].count <= 2048, parts[1].allSatisfy({ $0 > 0x20 && $0 < 0x7F }),
              parts[2].starts(with: Array("HTTP/1.".utf8)), parts[2].count == 8 else { return .malformed }
        let target = parts[1]
        let path = target.firstIndex(of: UInt8(ascii: "?")).map { target[..<$0] } ?? target[...]
        return .complete(HTTPRequestHead(method: String(decoding: parts[0], as: UTF8.self),
                                         path: String(decoding: path, as: UTF8.self)))
    }

    /// The index of the "\r\n\r\n" (or bare "\n\n") that ends the head.
    private static func headEnd(_ bytes: [UInt8]) -> Int? {
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\n") {
                if index + 1 < bytes.count, bytes[index + 1] == UInt8(ascii: "\n") { return index }
                if index + 2 < bytes.count, bytes[index + 1] == UInt8(ascii: "\r"), bytes[index + 2] == UInt8(ascii: "\n") {
                    return index > 0 && bytes[index - 1] == UInt8(ascii: "\r") ? index - 1 : index
                }
            }
            index += 1
        }
        return nil
    }
}

/// A response to write back: status, content type, body.
public struct HTTPResponse: Sendable, Equatable {
    public var status: Int
    public var reason: String
    public var contentType: String
    public var body: [UInt8]
    public var allow: String? = nil

    public init(status: Int, reason: String, contentType: String = "text/plain; charset=utf-8", body: [UInt8]) {
        self.status = status
        self.reason = reason
        self.contentType = contentType
        self.body = body
    }

    /// The response's bytes: one request per connection (`Connection: close`).
    public func encoded(includeBody: Bool = true) -> [UInt8] {
        var head = "HTTP/1.1 \(status) \(reason)\r\nContent-Type: \(contentType)\r\nContent-Length: \(body.count)\r\n"
        if let allow { head += "Allow: \(allow)\r\n" }
        head += "Connection: close\r\n\r\n"
        return Array(head.utf8) + (includeBody ? body : [])
    }
}
