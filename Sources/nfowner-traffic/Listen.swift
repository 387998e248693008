// `listen`: a sink for the tests. TCP accepts --accept connections one after another and reads each until EOF;
// UDP receives (and with --echo sends back) until --timeout or --count datagrams. It always exits by itself at
// --timeout, so a failed test can never leave it running.
import ArgumentParser
import Glibc

enum ListenTransport: String, EnumerableFlag {
    case tcp, udp
}

struct Listen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "listen",
        abstract: "Listen on a port: a TCP or UDP sink (optionally a UDP echo server) for tests.",
        discussion: """
            Prints `ready port=P pid=N` (flushed) as soon as it listens, then at the end: mode=listen proto \
            received (connections or datagrams) bytes sent (echoed datagrams) errors peer (last peer) pid uid \
            gid local elapsed_ns. Exits 1 after the result line when TCP did not read --accept \
            connections to EOF before --timeout.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Port to listen on; 0 picks a free one (see the ready line).")
    var port: UInt16

    @Flag(help: "Transport.")
    var transport: ListenTransport = .tcp

    @Option(help: "Address to bind: 127.0.0.1, ::1, 0.0.0.0, or :: (IPv4 and IPv6).")
    var address: String = "::"

    @Option(help: "Seconds after which the listener ends, whatever happened.")
    var timeout: Double = 10

    @Option(help: "TCP: connections to accept (each read until EOF) before exiting.")
    var accept: Int = 1

    @Option(help: "UDP: exit after this many datagrams (default: receive until --timeout).")
    var count: Int?

    @Flag(help: "UDP: send every datagram back to its sender (the peer of `roundtrip`).")
    var echo = false

    @Option(help: ArgumentHelp(
        "TCP: close each connection with SO_LINGER for this many seconds.",
        discussion: "close() then returns only after the peer acknowledged the FIN, so that ACK reaches a "
            + "socket that still has its file (and uid): a test can rely on it."))
    var linger: Int32?

    func validate() throws {
        try validateSeconds(timeout, "timeout")
        guard accept >= 1 else { throw ValidationError("--accept must be at least 1") }
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        if echo && transport != .udp { throw ValidationError("--echo needs --udp") }
        if linger != nil && transport != .tcp { throw ValidationError("--linger needs --tcp") }
        if let linger, linger < 1 { throw ValidationError("--linger must be at least 1 second") }
    }

    func run() throws {
        let local = try SocketAddress(address, port: port)
        try common.dropPrivileges()
        let start = Monotonic.now()
        let deadline = start + Monotonic.nanoseconds(timeout)
        let socket = try Socket(family: local.family,
                                type: transport == .tcp ? SocketType.stream : SocketType.datagram)
        _ = socket.setOption(level: SOL_SOCKET, name: SO_REUSEADDR, value: 1)
        if local.isIPv6 {
            // `::` should take IPv4 too, whatever net.ipv6.bindv6only says.
            _ = socket.setOption(level: Int32(IPPROTO_IPV6), name: IPV6_V6ONLY, value: 0)
        }
        if case .failure(let error) = socket.bind(local) {
            throw TrafficError(.bind, "cannot listen on \(local): \(error.text)", errno: error.code)
        }
        if transport == .tcp, case .failure(let error) = socket.listen() {
            throw TrafficError(.bind, "listen on \(local) failed: \(error.text)", errno: error.code)
        }
        let bound = socket.localAddress()
        printLine("ready port=\(bound?.port ?? port) pid=\(getpid())")

        var result = ResultLine(mode: "listen")
        result.add("proto", transport.rawValue)
        let tally = transport == .tcp
            ? try acceptConnections(on: socket, until: deadline)
            : try receiveDatagrams(on: socket, until: deadline)
        result.add("received", tally.received)
        result.add("bytes", tally.bytes)
        result.add("sent", tally.sent)
        result.add("errors", tally.errors.count)
        result.add("peer", tally.peer.map(\.description) ?? "-")
        result.emit(local: bound, startedAt: start)
        if tally.timedOut {
            throw TrafficError(.timeout, "timed out after \(timeout) s: \(tally.received) of \(accept) "
                + "connection(s) on \(local) accepted, the last one not read to EOF or not at all")
        }
    }

    private struct Tally {
        var received = 0
        var bytes = 0
        var sent = 0
        var errors = ErrorTally()
        var peer: SocketAddress?
        /// TCP only: --timeout came before --accept connections were read to EOF.
        var timedOut = false
    }

    private func acceptConnections(on socket: Socket, until deadline: UInt64) throws(TrafficError) -> Tally {
        var tally = Tally()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while tally.received < accept {
            let accepted: (socket: Socket, peer: SocketAddress)
            switch socket.accept(until: deadline) {
            case .success(.some(let connection)): accepted = connection
            case .success(.none):
                tally.timedOut = true
                return tally
            case .failure(let error) where error.code == ECONNABORTED:
                tally.errors.record(error, "accept", common)
                continue
            case .failure(let error):
                throw TrafficError(.receive, "accept failed: \(error.text)", errno: error.code)
            }
            tally.received += 1
            tally.peer = accepted.peer
            reading: while true {
                switch accepted.socket.waitReadable(until: deadline) {
                case .success(true): break
                case .success(false):  // --timeout is a hard stop, even mid-connection
                    tally.timedOut = true
                    return tally
                case .failure(let error):
                    throw TrafficError(.receive, "poll failed: \(error.text)", errno: error.code)
                }
                switch accepted.socket.receive(into: &buffer) {
                case .success(let chunk) where chunk.count == 0: break reading  // EOF
                case .success(let chunk): tally.bytes += chunk.count
                case .failure(let error) where error.code == ECONNRESET:
                    tally.errors.record(error, "read from \(accepted.peer)", common)
                    break reading
                case .failure(let error):
                    throw TrafficError(.receive, "read from \(accepted.peer) failed: \(error.text)",
                                       errno: error.code)
                }
            }
            if let linger, case .failure(let error) = accepted.socket.setLinger(seconds: linger) {
                throw TrafficError(.receive, "SO_LINGER failed: \(error.text)", errno: error.code)
            }
            accepted.socket.close()
        }
        return tally
    }

    private func receiveDatagrams(on socket: Socket, until deadline: UInt64) throws(TrafficError) -> Tally {
        var tally = Tally()
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while tally.received < (count ?? Int.max) {
            switch socket.waitReadable(until: deadline) {
            case .success(true): break
            case .success(false): return tally
            case .failure(let error):
                throw TrafficError(.receive, "poll failed: \(error.text)", errno: error.code)
            }
            switch socket.receive(into: &buffer) {
            case .success(let datagram):
                tally.received += 1
                tally.bytes += datagram.count
                tally.peer = datagram.from
                guard echo else { continue }
                switch socket.send(Array(buffer.prefix(datagram.count)), to: datagram.from) {
                case .success: tally.sent += 1
                case .failure(let error) where softSendErrors.contains(error.code):
                    tally.errors.record(error, "echo to \(datagram.from)", common)
                case .failure(let error):
                    throw TrafficError(.send, "echo to \(datagram.from) failed: \(error.text)", errno: error.code)
                }
            case .failure(let error) where softSendErrors.contains(error.code):
                tally.errors.record(error, "receive", common)
            case .failure(let error):
                throw TrafficError(.receive, "receive failed: \(error.text)", errno: error.code)
            }
        }
        return tally
    }
}
