// `raw`: datagrams of an arbitrary IP protocol (default 253, "for experimentation", RFC 3692) from a raw socket;
// the kernel builds the IPv4/IPv6 header, we supply only the payload. Needs root or CAP_NET_RAW.
import ArgumentParser
import Glibc

struct Raw: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "raw",
        abstract: "Send raw IP datagrams of a given protocol number (needs root or CAP_NET_RAW).",
        discussion: """
            Result: mode=raw sent bytes errors pid uid gid local elapsed_ns; the port in `local` is what the \
            kernel reports for a raw socket (the protocol number).
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Destination IPv4 or IPv6 address literal.")
    var to: String

    @Option(name: .customLong("protocol"), help: "IP protocol number (1…254; 255 would mean IP_HDRINCL).")
    var ipProtocol: Int32 = 253

    @Option(help: "Datagrams to send.")
    var count: Int = 1

    @Option(help: "Payload bytes per datagram.")
    var size: Int = 32

    func validate() throws {
        guard (1...254).contains(ipProtocol) else { throw ValidationError("--protocol must be 1…254") }
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard (0...65_000).contains(size) else { throw ValidationError("--size must be 0…65000 bytes") }
    }

    func run() throws {
        let destination = try SocketAddress(to, port: 0)
        try common.dropPrivileges()
        let start = Monotonic.now()
        let socket = try openRawSocket(family: destination.family)
        if case .failure(let error) = socket.connect(destination) {
            throw TrafficError(.connect, "cannot connect raw socket to \(destination.host): \(error.text)",
                               errno: error.code)
        }

        var sent = 0
        var bytes = 0
        var errors = ErrorTally()
        let payload = patternPayload(size: size)
        for _ in 0..<count {
            if let n = try sendCountingSoftErrors(payload, on: socket, to: destination, errors: &errors,
                                                  options: common) {
                sent += 1
                bytes += n
            }
        }

        var result = ResultLine(mode: "raw")
        result.add("sent", sent)
        result.add("bytes", bytes)
        result.add("errors", errors.count)
        result.emit(local: socket.localAddress(), startedAt: start)
    }

    /// Throws `.socket`, explaining EPERM: raw sockets need root or CAP_NET_RAW.
    private func openRawSocket(family: Int32) throws(TrafficError) -> Socket {
        do {
            return try Socket(family: family, type: SocketType.raw, protocol: ipProtocol)
        } catch {
            guard error.errno == EPERM else { throw error }
            throw TrafficError(.socket, "raw socket refused: needs root or CAP_NET_RAW (running as uid "
                + "\(getuid()); leave out --uid to run as root)", errno: EPERM)
        }
    }
}
