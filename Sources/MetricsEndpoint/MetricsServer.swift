import NetfilterSystem

/// Serves `GET /metrics` over HTTP/1.1 on a thread of its own, one request per connection, each
/// bounded in time and size so a slow or hostile client cannot hold it.
public final class MetricsServer: @unchecked Sendable {
    private let listener: TCPListener
    private let stopEvent: WakeupEvent
    private let render: @Sendable () -> [UInt8]
    private var thread: DedicatedThread?
    /// The port listened on (the kernel's pick when 0 was asked).
    public var port: UInt16 { listener.port }

    /// Binds on the calling thread (so in its network namespace); serves once `start` is called.
    public init(host: String, port: UInt16, ipv6: Bool, render: @escaping @Sendable () -> [UInt8]) throws(SystemError) {
        listener = try TCPListener(host: host, port: port, ipv6: ipv6)
        do { stopEvent = try WakeupEvent() } catch {
            listener.close()
            throw error
        }
        self.render = render
    }

    public func start() throws(SystemError) {
        thread = try DedicatedThread(name: "nfowner-metrics") { [self] in serve() }
    }

    /// Stops serving and closes the socket (waits for a request being answered).
    public func stop() {
        stopEvent.signal()
        thread?.join()
        thread = nil
        listener.close()
        stopEvent.close()
    }

    private func serve() {
        while true {
            guard let connection = try? listener.accept(until: stopEvent) else { return }
            answer(connection)
            connection.close()
        }
    }

    private func answer(_ connection: TCPConnection) {
        connection.setTimeouts(milliseconds: 2000)
        var received: [UInt8] = []
        var head: HTTPRequestHead?
        while head == nil {
            guard let chunk = try? connection.read(maximum: HTTPRequestHead.maximumBytes - received.count),
                  !chunk.isEmpty else { return }
            received += chunk
            switch HTTPRequestHead.parse(received) {
            case .complete(let parsed): head = parsed
            case .incomplete: continue
            case .malformed:
                try? connection.write(HTTPResponse(status: 400, reason: "Bad Request",
                                                   body: Array("malformed request\n".utf8)).encoded())
                return
            }
        }
        guard let head else { return }
        try? connection.write(response(to: head).encoded(includeBody: head.method != "HEAD"))
    }

    func response(to head: HTTPRequestHead) -> HTTPResponse {
        guard head.method == "GET" || head.method == "HEAD" else {
            var refused = HTTPResponse(status: 405, reason: "Method Not Allowed", body: Array("use GET\n".utf8))
            refused.allow = "GET, HEAD"
            return refused
        }
        switch head.path {
        case "/metrics":
            return HTTPResponse(status: 200, reason: "OK", contentType: "text/plain; version=0.0.4; charset=utf-8",
                                body: render())
        case "/":
            return HTTPResponse(status: 200, reason: "OK",
                                body: Array("nfowner: Prometheus metrics at /metrics\n".utf8))
        default:
            return HTTPResponse(status: 404, reason: "Not Found", body: Array("not found; try /metrics\n".utf8))
        }
    }
}
