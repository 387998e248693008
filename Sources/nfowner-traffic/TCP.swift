// `tcp`: connect, send --bytes, shutdown, close; --count times, one connection after another.
import ArgumentParser
import Glibc

struct TCP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tcp",
        abstract: "Open TCP connections and send bytes on each.",
        discussion: """
            Result: mode=tcp sent (connections that sent all bytes) bytes errors pid uid gid local (of the last \
            connection) elapsed_ns. A refused, dropped (EPERM), reset or timed-out connection is counted in \
            errors= and the next one is tried.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Destination IPv4 or IPv6 address literal.")
    var to: String

    @Option(help: "Destination port.")
    var port: UInt16

    @Option(help: "Payload bytes to send on each connection.")
    var bytes: Int = 100

    @Option(help: "Connections to open, one after another.")
    var count: Int = 1

    @Option(help: "Seconds a connect or send may block before it counts as an error.")
    var timeout: Double = 5

    /// Connect/send errors that are counted instead of aborting: the peer or a rule said no, or the SYN got
    /// no answer in time (SO_SNDTIMEO expiring on connect gives EINPROGRESS, on send EAGAIN).
    private static let softErrors: Set<Int32> = [
        ECONNREFUSED, ECONNRESET, EPIPE, EPERM, EHOSTUNREACH, ETIMEDOUT, EINPROGRESS, EAGAIN,
    ]

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard bytes >= 0 else { throw ValidationError("--bytes must be ≥ 0") }
        try validateSeconds(timeout, "timeout")
    }

    func run() throws {
        let destination = try SocketAddress(to, port: port)
        try common.dropPrivileges()
        let start = Monotonic.now()
        let payload = patternPayload(size: bytes)
        var local: SocketAddress?
        var completed = 0
        var bytesSent = 0
        var errors = ErrorTally()

        for _ in 0..<count {
            let socket = try Socket(family: destination.family, type: SocketType.stream)
            _ = socket.setTimeout(SO_SNDTIMEO, nanoseconds: Monotonic.nanoseconds(timeout))
            if case .failure(let error) = socket.connect(destination) {
                guard Self.softErrors.contains(error.code) else {
                    throw TrafficError(.connect, "cannot connect to \(destination): \(error.text)", errno: error.code)
                }
                // SO_SNDTIMEO expiring on a blocking connect reports EINPROGRESS; say what it means.
                let late = error.code == EINPROGRESS ? " got no answer within \(timeout) s" : ""
                errors.record(error, "connect to \(destination)\(late)", common)
                continue
            }
            local = socket.localAddress()
            var offset = 0
            sending: while offset < payload.count {
                switch socket.send(payload[offset...]) {
                case .success(let n):
                    offset += n
                case .failure(let error) where Self.softErrors.contains(error.code):
                    errors.record(error, "send to \(destination)", common)
                    break sending
                case .failure(let error):
                    throw TrafficError(.send, "send to \(destination) failed: \(error.text)", errno: error.code)
                }
            }
            bytesSent += offset
            if offset == payload.count { completed += 1 }
            socket.shutdownWrite()
            socket.close()
        }

        var result = ResultLine(mode: "tcp")
        result.add("sent", completed)
        result.add("bytes", bytesSent)
        result.add("errors", errors.count)
        result.emit(local: local, startedAt: start)
    }
}
