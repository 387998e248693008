// `burst-exit`: the short-lived process case. One UDP datagram, the result line, and _exit right away: the
// socket is not closed first and no cleanup runs, so the process is gone while the packet may still be on its
// way through the stack (nfowner must still attribute it; NFLOG reads the owner synchronously at send time).
import ArgumentParser
import Glibc

struct BurstExit: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "burst-exit",
        abstract: "Send exactly one UDP datagram and exit immediately.",
        discussion: "Result: mode=burst-exit sent bytes errors pid uid gid local elapsed_ns."
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Destination IPv4 or IPv6 address literal.")
    var to: String

    @Option(help: "Destination port.")
    var port: UInt16

    @Option(help: "Payload bytes.")
    var size: Int = 64

    @Option(name: .customLong("send-at"),
            help: "CLOCK_MONOTONIC time (ns) to send at: the socket is opened first, then the tool sleeps until then (at once when it has passed), so processes started one after another send together.")
    var sendAt: UInt64?

    func validate() throws {
        guard (0...65_507).contains(size) else { throw ValidationError("--size must be 0…65507 bytes") }
    }

    func run() throws {
        let destination = try SocketAddress(to, port: port)
        try common.dropPrivileges()
        let start = Monotonic.now()
        let socket = try connectedUDPSocket(to: destination)
        if let sendAt { Monotonic.sleep(until: sendAt) }
        var errors = ErrorTally()
        let n = try sendCountingSoftErrors(patternPayload(size: size), on: socket, to: destination,
                                           errors: &errors, options: common)
        var result = ResultLine(mode: "burst-exit")
        result.add("sent", n == nil ? 0 : 1)
        result.add("bytes", n ?? 0)
        result.add("errors", errors.count)
        result.emit(local: socket.localAddress(), startedAt: start)  // flushes stdout before _exit
        _exit(0)
    }
}
