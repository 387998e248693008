// `udp`: datagrams from one socket, from a new socket per datagram (the bench's short-lived sockets), or from one
// socket to N destinations (distinct flows), as fast as possible or paced at --rate (Pacer.swift), bounded by
// --count and/or --duration.
import ArgumentParser
import Glibc

struct UDP: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "udp",
        abstract: "Send UDP datagrams.",
        discussion: """
            Result: mode=udp sent bytes errors [flows] [slipped_ns] pid uid gid local elapsed_ns. The socket is \
            connected (with --flows: bound), so `local` is the exact source address:port. \
            ECONNREFUSED/EPERM/EHOSTUNREACH/ENETUNREACH/ENOBUFS on send are counted in errors= and do not abort.
            With --rate, datagram i is due at start + i/rate: the sender sleeps until shortly before a datagram \
            that is more than 200 µs away and spins on the clock for nearer ones, so the rate is met from 1/s \
            up to the generator's maximum. After a stall it sends everything due at once, but at most 50 ms \
            worth: a longer stall pushes the schedule back, by the total in slipped_ns (0 when it kept up).
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Destination IPv4 or IPv6 address literal (with --flows above 1: the first of the 127.x.y.z destinations).")
    var to: String

    @Option(help: "Destination port.")
    var port: UInt16

    @Option(help: "Datagrams to send (default: 1, or unbounded when --duration is given).")
    var count: Int?

    @Option(help: "Payload bytes per datagram.")
    var size: Int = 64

    @Option(help: ArgumentHelp(
        "Offer exactly this many datagrams per second (absolute schedule; sleeps, then spins for the last 200 µs; catches up at most 50 ms after a stall).",
        valueName: "datagrams/s"))
    var rate: Double?

    @Flag(name: .customLong("max"), help: "Send as fast as possible (the default without --rate).")
    var asFastAsPossible = false

    @Option(help: "Stop after this many seconds, even if --count is not reached.")
    var duration: Double?

    @Flag(help: "Open, connect and close a new socket for every datagram (many short-lived sockets).")
    var socketPerDatagram = false

    @Option(help: ArgumentHelp(
        "Spread the datagrams over this many flows, so a monitor sees N distinct 5-tuples: one bound socket sends datagram i to --to plus (i mod N), counting up inside 127.0.0.0/8. Above 1 needs an IPv4 loopback --to.",
        valueName: "N"))
    var flows: Int?

    func validate() throws {
        if let count, count < 1 { throw ValidationError("--count must be at least 1") }
        guard (0...65_507).contains(size) else { throw ValidationError("--size must be 0…65507 bytes") }
        if rate != nil && asFastAsPossible { throw ValidationError("--rate and --max exclude each other") }
        if let rate, !(rate.isFinite && rate > 0 && rate <= Pacer.maximumRate) {
            throw ValidationError("--rate must be > 0 and at most \(Int(Pacer.maximumRate)) datagrams/s")
        }
        try validateSeconds(duration, "duration")
        if let flows {
            if socketPerDatagram {
                throw ValidationError("--flows and --socket-per-datagram exclude each other (--flows sends from one socket)")
            }
            do {
                _ = try FlowSequence(count: flows, destination: SocketAddress(to, port: port))
            } catch {
                throw ValidationError(error.reason)
            }
        }
    }

    func run() throws {
        let destination = try SocketAddress(to, port: port)
        let sequence = try flows.map { count throws(TrafficError) in
            try FlowSequence(count: count, destination: destination)
        }
        try common.dropPrivileges()
        let start = Monotonic.now()
        let payload = patternPayload(size: size)
        let limit = count ?? (duration == nil ? 1 : Int.max)
        let end = duration.map { start + Monotonic.nanoseconds($0) }
        var pacer = rate.map { Pacer(rate: $0, start: start) }

        let shared: Socket? = if sequence != nil {
            try boundUDPSocket(sendingTo: destination)
        } else if socketPerDatagram {
            nil
        } else {
            try connectedUDPSocket(to: destination)
        }
        var local = shared?.localAddress()
        var sent = 0
        var bytes = 0
        var errors = ErrorTally()
        var index = 0
        while index < limit {
            var burst = 1
            if var schedule = pacer {
                // Paced runs end by the schedule, not the clock: every datagram due before the end goes out,
                // even if a stall makes it late, so --duration D sends rate × D unless the schedule slipped.
                if let end, schedule.due(index) >= end {
                    // Last datagram sent: the run still lasts --duration, so sent/elapsed_ns is the rate.
                    Monotonic.sleep(until: end)
                    break
                }
                let step = schedule.step(next: index, now: Monotonic.now())
                pacer = schedule
                guard case .send(let due) = step else {
                    Pacer.wait(step)
                    continue
                }
                burst = min(due, limit - index)
                // A sender that slipped past the end owes nothing more (never a negative burst).
                if let end { burst = max(0, min(burst, schedule.dueBefore(end) - index)) }
            } else if let end, Monotonic.now() >= end {
                break
            }

            for _ in 0..<burst {
                let n: Int?
                if let sequence, let shared {
                    let target = sequence.address(ofFlow: index).map { SocketAddress(ipv4: $0, port: port) }
                        ?? destination
                    n = try sendCountingSoftErrors(payload, on: shared, to: target, connected: false,
                                                   errors: &errors, options: common)
                } else {
                    let socket = try shared ?? connectedUDPSocket(to: destination)
                    if socketPerDatagram { local = socket.localAddress() }
                    n = try sendCountingSoftErrors(payload, on: socket, to: destination, errors: &errors,
                                                   options: common)
                    if socketPerDatagram { socket.close() }
                }
                index += 1
                if let n {
                    sent += 1
                    bytes += n
                }
            }
        }

        var result = ResultLine(mode: "udp")
        result.add("sent", sent)
        result.add("bytes", bytes)
        result.add("errors", errors.count)
        if let sequence { result.add("flows", sequence.count) }
        if let pacer { result.add("slipped_ns", pacer.slipped) }
        result.emit(local: local, startedAt: start)
    }
}

/// An unconnected UDP socket for --flows, bound to the source address the kernel would pick for
/// `destination` (found by connecting a throwaway socket) with a port of its choosing, so every flow shares
/// one exact source address:port and `local` reports it.
/// Throws `.socket`/`.connect`/`.bind` with a reason.
func boundUDPSocket(sendingTo destination: SocketAddress) throws(TrafficError) -> Socket {
    let probe = try connectedUDPSocket(to: destination)
    guard let source = probe.localAddress() else {
        throw TrafficError(.bind, "cannot learn the source address for \(destination): getsockname failed")
    }
    probe.close()
    let socket = try Socket(family: destination.family, type: SocketType.datagram)
    if case .failure(let error) = socket.bind(source.with(port: 0)) {
        throw TrafficError(.bind, "cannot bind UDP socket to \(source.host): \(error.text)", errno: error.code)
    }
    return socket
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

/// Sends one datagram (with `connected: false`, by sendto to `destination`); returns the bytes sent, or nil after counting a soft error (see `softSendErrors`).
/// ECONNREFUSED on a connected socket is the ICMP port-unreachable of an *earlier* datagram, and the kernel
/// did not send this one; it is counted and the send is retried once, so each step still puts one datagram on
/// the wire (tests sending to a closed port get every packet they asked for).
/// Throws `.send` on any other error.
func sendCountingSoftErrors(_ payload: [UInt8], on socket: Socket, to destination: SocketAddress,
                            connected: Bool = true,
                            errors: inout ErrorTally, options: CommonOptions) throws(TrafficError) -> Int? {
    var retried = false
    while true {
        switch connected ? socket.send(payload[...]) : socket.send(payload, to: destination) {
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
