// `udp`: datagrams from one socket, or from a new socket per datagram (the bench's short-lived sockets), as
// fast as possible or paced at --rate, bounded by --count and/or --duration.
import ArgumentParser
import Glibc

struct UDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp",
        abstract: "Send UDP datagrams.",
        discussion: """
            Result: mode=udp sent bytes errors pid uid gid local elapsed_ns. The socket is connected, so `local` \
            is the exact source address:port. ECONNREFUSED/EPERM/EHOSTUNREACH/ENETUNREACH/ENOBUFS on send are \
            counted in errors= and do not abort.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Destination IPv4 or IPv6 address literal.")
    var to: String

    @Option(help: "Destination port.")
    var port: UInt16

    @Option(help: "Datagrams to send (default: 1, or unbounded when --duration is given).")
    var count: Int?

    @Option(help: "Payload bytes per datagram.")
    var size: Int = 64

    @Option(help: "Pace at this many datagrams per second (sleeps; catches up after a slow step).")
    var rate: Double?

    @Flag(name: .customLong("max"), help: "Send as fast as possible (the default without --rate).")
    var asFastAsPossible = false

    @Option(help: "Stop after this many seconds, even if --count is not reached.")
    var duration: Double?

    @Flag(help: "Open, connect and close a new socket for every datagram.")
    var socketPerDatagram = false

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        guard (0...65_507).contains(size) else { throw ValidationError("--size must be 0…65507 bytes") }
        if rate != nil && asFastAsPossible { throw ValidationError("--rate and --max exclude each other") }
        if let rate, !(rate.isFinite && rate > 0) { throw ValidationError("--rate must be > 0 datagrams/s") }
        try validateSeconds(duration, "duration")
    }

    func run() throws {
        let destination = try SocketAddress(to, port: port)
        try common.dropPrivileges()
        let start = Monotonic.now()
        let payload = patternPayload(size: size)
        let limit = count ?? (duration == nil ? 1 : Int.max)
        let end = duration.map { start + Monotonic.nanoseconds($0) }
        let interval = rate.map { 1e9 / $0 }  // ns between datagrams

        let shared = socketPerDatagram ? nil : try connectedUDPSocket(to: destination)
        var local = shared?.localAddress()
        var sent = 0
        var bytes = 0
        var errors = ErrorTally()
        var index = 0
        while index < limit {
            if let interval {
                // Absolute schedule from the start: a late step is followed by immediate sends (catch-up).
                let due = start + UInt64(Double(index) * interval)
                if let end, due >= end { break }
                Monotonic.sleep(until: due)
            }
            if let end, Monotonic.now() >= end { break }
            index += 1

            let socket = try shared ?? connectedUDPSocket(to: destination)
            if socketPerDatagram { local = socket.localAddress() }
            if let n = try sendCountingSoftErrors(payload, on: socket, to: destination, errors: &errors,
                                                  options: common) {
                sent += 1
                bytes += n
            }
            if socketPerDatagram { socket.close() }
        }

        var result = ResultLine(mode: "udp")
        result.add("sent", sent)
        result.add("bytes", bytes)
        result.add("errors", errors.count)
        result.emit(local: local, startedAt: start)
    }
}

/// A UDP socket connected to `destination`. Connecting fixes the local address:port at once (so `local=` is
/// exact) and makes the kernel report ICMP errors on later sends.
/// Throws `.socket`/`.connect` with a reason (e.g. no route: lo is down in this namespace).
func connectedUDPSocket(to destination: SocketAddress) throws(TrafficError) -> Socket {
    let socket = try Socket(family: destination.family, type: SocketType.datagram)
    if case .failure(let error) = socket.connect(destination) {
        throw TrafficError(.connect, "cannot connect UDP socket to \(destination): \(error.text)"
            + (error.code == ENETUNREACH ? " (no route to it: is lo or the interface up in this namespace?)" : ""), errno: error.code)
    }
    return socket
}

/// Sends one datagram; returns the bytes sent, or nil after counting a soft error (see `softSendErrors`).
/// ECONNREFUSED on a connected socket is the ICMP port-unreachable of an *earlier* datagram, and the kernel
/// did not send this one; it is counted and the send is retried once, so each step still puts one datagram on
/// the wire (tests sending to a closed port get every packet they asked for).
/// Throws `.send` on any other error.
func sendCountingSoftErrors(_ payload: [UInt8], on socket: Socket, to destination: SocketAddress,
                            errors: inout ErrorTally, options: CommonOptions) throws(TrafficError) -> Int? {
    var retried = false
    while true {
        switch socket.send(payload[...]) {
        case .success(let n):
            return n
        case .failure(let error) where error.code == ECONNREFUSED && !retried:
            errors.record(error, "send to \(destination)", options)
            retried = true
        case .failure(let error) where softSendErrors.contains(error.code):
            errors.record(error, "send to \(destination)", options)
            return nil
        case .failure(let error):
            throw TrafficError(.send, "send to \(destination) failed: \(error.text)", errno: error.code)
        }
    }
}
