import Configuration
import NetfilterSystem

/// Where a daemon's metrics are: `http://HOST:PORT[/PATH]` (the scheme may be left out; the
/// path defaults to /metrics). HOST is a numeric IPv4 address, a bracketed IPv6 address or
/// `localhost` (127.0.0.1): the endpoint listens on numeric addresses only, and reading it never
/// waits on name resolution.
public struct MetricsURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: UInt16
    public var isIPv6: Bool
    public var path: String

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
    }

    public init(_ text: String) throws(ParseError) {
        var rest = Substring(text)
        if rest.lowercased().hasPrefix("https://") {
            throw ParseError(description: "\(text): the metrics endpoint speaks plain HTTP; use http://")
        }
        if rest.lowercased().hasPrefix("http://") { rest = rest.dropFirst("http://".count) }
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/metrics" : String(rest[slash...])
        guard path.allSatisfy({ $0.isASCII && !$0.isWhitespace && $0 != "\r" && $0 != "\n" }) else {
            throw ParseError(description: "\(text): the path may hold no spaces or non-ASCII characters")
        }
        let usage = "\(text): give http://ADDRESS:PORT, e.g. http://127.0.0.1:9465 (the daemon's [metrics] listen)"
        // The authority is what [metrics] listen accepts, with `localhost` for 127.0.0.1.
        let written = authority.hasPrefix("localhost:") ? "127.0.0.1" + authority.dropFirst("localhost".count) : authority
        guard let address = ListenAddress(String(written)) else { throw ParseError(description: usage) }
        host = address.host
        port = address.port
        isIPv6 = address.isIPv6
    }

    public var description: String { "http://\(isIPv6 ? "[\(host)]" : host):\(port)\(path)" }
}

/// A response to one GET: its status and body. Parsed from untrusted bytes with bounds checks.
public struct HTTPReply: Sendable, Equatable {
    public var status: Int
    public var body: [UInt8]

    public struct ParseError: Error, Sendable, Equatable, CustomStringConvertible {
        public var description: String
        static func malformed(_ reason: String) -> ParseError { ParseError(description: reason) }
    }

    /// `bytes` is the whole reply, up to the server's close: a status line, headers, a blank
    /// line and the body (as long as Content-Length says, else up to the close).
    public static func parse(_ bytes: [UInt8]) throws(ParseError) -> HTTPReply {
        let separator: [UInt8] = [13, 10, 13, 10]
        var headEnd: Int?
        if bytes.count >= 4 {
            for index in 0...(bytes.count - 4) where bytes[index] == 13 && Array(bytes[index..<index + 4]) == separator {
                headEnd = index
                break
            }
        }
        guard let headEnd else { throw .malformed("no end of the response head") }
        let lines = String(decoding: bytes[..<headEnd], as: UTF8.self).split(separator: "\r\n", omittingEmptySubsequences: false)
        let statusWords = lines.first?.split(separator: " ", maxSplits: 2) ?? []
        guard statusWords.count >= 2, statusWords[0].hasPrefix("HTTP/1."), let status = Int(statusWords[1]),
              (100...599).contains(status) else { throw .malformed("not an HTTP status line: \(lines.first ?? "")") }
        var body = Array(bytes[(headEnd + 4)...])
        for line in lines.dropFirst() {
            guard let colon = line.firstIndex(of: ":") else { throw .malformed("header line without a colon: \(line)") }
            let name = line[..<colon].lowercased()
            let value = line[line.index(after: colon)...].trimmingSpaces()
            if name == "transfer-encoding" && value.lowercased() != "identity" {
                throw .malformed("transfer encoding \(value) is not supported")
            }
            if name == "content-length" {
                guard let length = Int(value), length >= 0 else { throw .malformed("bad Content-Length: \(value)") }
                guard length <= body.count else { throw .malformed("the body ends after \(body.count) of \(length) bytes") }
                body = Array(body.prefix(length))
            }
        }
        return HTTPReply(status: status, body: body)
    }
}

extension Substring {
    fileprivate func trimmingSpaces() -> String {
        String(drop { $0 == " " || $0 == "\t" }.reversed().drop { $0 == " " || $0 == "\t" }.reversed())
    }
}

/// Reads a daemon's `/metrics` (one GET per call, a fresh connection each time), bounded in
/// time and size.
public enum MetricsClient {
    public static let maximumReplyBytes = 64 << 20

    public struct ScrapeError: Error, Sendable, CustomStringConvertible {
        /// What went wrong ("cannot read http://…: connect to …: Connection refused").
        public var reason: String
        /// What to check, when there is an obvious suspect.
        public var hint: String?
        public var description: String { hint.map { "\(reason); \($0)" } ?? reason }

        init(description: String) { reason = description }
        init(reason: String, hint: String) {
            self.reason = reason
            self.hint = hint
        }
    }

    /// The body of a 200 reply to `GET url.path`.
    public static func fetch(_ url: MetricsURL, timeoutMilliseconds: Int = 3000) throws(ScrapeError) -> [UInt8] {
        let hint = "is `nfowner run` running with [metrics] listen = \"\(url.isIPv6 ? "[\(url.host)]" : url.host):\(url.port)\"?"
        let connection: TCPConnection
        do {
            connection = try .connect(host: url.host, port: url.port, ipv6: url.isIPv6, timeoutMilliseconds: timeoutMilliseconds)
        } catch {
            throw ScrapeError(reason: "cannot read \(url): \(error)", hint: hint)
        }
        defer { connection.close() }
        let request = "GET \(url.path) HTTP/1.1\r\nHost: \(url.isIPv6 ? "[\(url.host)]" : url.host):\(url.port)\r\n"
            + "User-Agent: nfowner-top\r\nAccept: text/plain\r\nConnection: close\r\n\r\n"
        var received: [UInt8] = []
        do {
            try connection.write(Array(request.utf8))
            while received.count <= maximumReplyBytes {
                let chunk = try connection.read(maximum: 65536)
                if chunk.isEmpty { break }
                received += chunk
            }
        } catch {
            throw ScrapeError(description: "cannot read \(url): \(error)")
        }
        guard received.count <= maximumReplyBytes else {
            throw ScrapeError(description: "cannot read \(url): the reply is over \(maximumReplyBytes >> 20) MiB")
        }
        let reply: HTTPReply
        do { reply = try HTTPReply.parse(received) } catch {
            throw ScrapeError(description: "cannot read \(url): not an HTTP reply (\(error))")
        }
        guard reply.status == 200 else {
            throw ScrapeError(description: "cannot read \(url): the server answered \(reply.status)"
                              + (reply.status == 404 ? " (not found: the path is /metrics)" : ""))
        }
        return reply.body
    }
}
