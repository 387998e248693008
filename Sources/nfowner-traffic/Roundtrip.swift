// `roundtrip`: UDP request/response timing against `listen --udp --echo`. Each request carries its sequence
// number in its first 8 bytes (big-endian) so a late reply to an earlier request is never mistaken for the
// current one.
import ArgumentParser
import Glibc

struct Roundtrip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "roundtrip",
        abstract: "Measure UDP round trips against `listen --udp --echo`.",
        discussion: """
            Result: mode=roundtrip sent received bytes errors lost min_ns p50_ns p99_ns max_ns pid uid gid local \
            elapsed_ns (percentiles by nearest rank; 0 when nothing came back). Waits up to 1 s per reply. \
            Exits 1 after the result line when no reply came back at all.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Echo server IPv4 or IPv6 address literal.")
    var to: String

    @Option(help: "Echo server port.")
    var port: UInt16

    @Option(help: "Requests to send, one after another.")
    var count: Int = 100

    @Option(help: "Payload bytes per request (at least 8: the sequence number).")
    var size: Int = 64

    private static let replyTimeout: UInt64 = 1_000_000_000

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard (8...65_507).contains(size) else { throw ValidationError("--size must be 8…65507 bytes") }
    }

    func run() throws {
        let destination = try SocketAddress(to, port: port)
        try common.dropPrivileges()
        let start = Monotonic.now()
        let socket = try connectedUDPSocket(to: destination)
        var request = patternPayload(size: size)
        var reply = [UInt8](repeating: 0, count: 65_536)
        var samples: [UInt64] = []
        samples.reserveCapacity(count)
        var sent = 0
        var bytes = 0
        var errors = ErrorTally()

        for sequence in 0..<UInt64(count) {
            withUnsafeBytes(of: sequence.bigEndian) { request.replaceSubrange(0..<8, with: $0) }
            let sentAt = Monotonic.now()
            guard let n = try sendCountingSoftErrors(request, on: socket, to: destination, errors: &errors,
                                                     options: common) else { continue }
            sent += 1
            bytes += n
            if try awaitEcho(of: request, on: socket, into: &reply, until: sentAt + Self.replyTimeout,
                             errors: &errors) {
                samples.append(Monotonic.now() - sentAt)
            }
        }

        samples.sort()
        var result = ResultLine(mode: "roundtrip")
        result.add("sent", sent)
        result.add("received", samples.count)
        result.add("bytes", bytes)
        result.add("errors", errors.count)
        result.add("lost", sent - samples.count)
        result.add("min_ns", samples.first ?? 0)
        result.add("p50_ns", Self.percentile(0.50, of: samples))
        result.add("p99_ns", Self.percentile(0.99, of: samples))
        result.add("max_ns", samples.last ?? 0)
        result.emit(local: socket.localAddress(), startedAt: start)
        if samples.isEmpty {
            throw TrafficError(.noReplies, "no replies from \(destination) (is `nfowner-traffic listen --udp "
                + "--echo --port \(port)` running?)")
        }
    }

    /// Nearest-rank percentile of sorted samples; 0 when there are none.
    static func percentile(_ fraction: Double, of sorted: [UInt64]) -> UInt64 {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up))
        return sorted[min(max(rank, 1), sorted.count) - 1]
    }

    /// Waits for the reply equal to `request`; false on timeout or a counted error (e.g. ECONNREFUSED when
    /// nothing listens).
    private func awaitEcho(of request: [UInt8], on socket: Socket, into buffer: inout [UInt8], until deadline: UInt64,
                           errors: inout ErrorTally) throws(TrafficError) -> Bool {
        while true {
            switch socket.waitReadable(until: deadline) {
            case .success(false): return false
            case .success(true): break
            case .failure(let error):
                throw TrafficError(.receive, "poll failed: \(error.text)", errno: error.code)
            }
            switch socket.receive(into: &buffer) {
            case .success(let reply):
                if reply.count == request.count && buffer.prefix(reply.count).elementsEqual(request) { return true }
            case .failure(let error) where softSendErrors.contains(error.code):
                errors.record(error, "receive", common)
                return false
            case .failure(let error):
                throw TrafficError(.receive, "receive failed: \(error.text)", errno: error.code)
            }
        }
    }
}
