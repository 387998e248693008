// `ping`: ICMP/ICMPv6 echo requests from an unprivileged ping socket (socket(AF_INET, SOCK_DGRAM,
// IPPROTO_ICMP) / (AF_INET6, SOCK_DGRAM, IPPROTO_ICMPV6)), waiting up to 1 s for each reply.
//
// What a ping socket reads and writes is the ICMP message without the IP header:
//
//    0       8      16              32
//   +-------+------+----------------+
//   | type  | code |   checksum     |   type: 8 request / 0 reply (ICMP), 128 / 129 (ICMPv6)
//   +-------+------+----------------+
//   |  identifier  |   sequence     |   the kernel sets identifier (the socket's "port") and checksum
//   +--------------+----------------+
//   |  payload (--size bytes) …
import ArgumentParser
import Glibc

struct Ping: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ping",
        abstract: "Send ICMP/ICMPv6 echo requests from an unprivileged ping socket.",
        discussion: """
            Result: mode=ping sent bytes (ICMP header + payload) errors replies pid uid gid local elapsed_ns; the \
            port in `local` is the echo identifier. The sender's gid must be inside net.ipv4.ping_group_range \
            (it governs IPv6 too). Missing replies are reported in replies=, not as a failure.
            """
    )

    @OptionGroup var common: CommonOptions

    @Option(help: "Destination IPv4 or IPv6 address literal.")
    var to: String

    @Option(help: "Echo requests to send, one after another.")
    var count: Int = 1

    @Option(help: "Payload bytes after the 8-byte ICMP header.")
    var size: Int = 56

    /// How long to wait for each reply, in nanoseconds.
    private static let replyTimeout: UInt64 = 1_000_000_000
    /// ICMP echo request/reply types (ICMP_ECHO / ICMP_ECHOREPLY, ICMP6_ECHO_REQUEST / ICMP6_ECHO_REPLY).
    private static let echoRequestV4: UInt8 = 8, echoReplyV4: UInt8 = 0
    private static let echoRequestV6: UInt8 = 128, echoReplyV6: UInt8 = 129
    private static let headerLength = 8

    func validate() throws {
        guard count >= 1 else { throw ValidationError("--count must be at least 1") }
        guard (0...65_000).contains(size) else { throw ValidationError("--size must be 0…65000 bytes") }
    }

    func run() throws {
        let destination = try SocketAddress(to, port: 0)
        try common.dropPrivileges()
        let start = Monotonic.now()
        let v6 = destination.isIPv6
        let socket = try Self.openPingSocket(family: destination.family)
        // Connecting fixes the source address, so `local` names it, and the echo identifier gets assigned.
        if case .failure(let error) = socket.connect(destination) {
            throw TrafficError(.connect, "cannot connect ping socket to \(destination.host): \(error.text)",
                               errno: error.code)
        }

        var sent = 0
        var bytes = 0
        var replies = 0
        var errors = ErrorTally()
        let payload = patternPayload(size: size)
        for index in 1...count {
            let sequence = UInt16(truncatingIfNeeded: index)
            let request = [v6 ? Self.echoRequestV6 : Self.echoRequestV4, 0, 0, 0, 0, 0,
                           UInt8(sequence >> 8), UInt8(truncatingIfNeeded: sequence)] + payload
            guard let n = try sendCountingSoftErrors(request, on: socket, to: destination, errors: &errors,
                                                     options: common) else { continue }
            sent += 1
            bytes += n
            if try awaitReply(on: socket, type: v6 ? Self.echoReplyV6 : Self.echoReplyV4, sequence: sequence,
                              errors: &errors) {
                replies += 1
            }
        }

        var result = ResultLine(mode: "ping")
        result.add("sent", sent)
        result.add("bytes", bytes)
        result.add("errors", errors.count)
        result.add("replies", replies)
        result.emit(local: socket.localAddress(), startedAt: start)
    }

    /// Throws `.socket`, explaining EACCES: the gid is outside net.ipv4.ping_group_range.
    private static func openPingSocket(family: Int32) throws(TrafficError) -> Socket {
        do {
            return try Socket(family: family, type: SocketType.datagram,
                              protocol: Int32(family == AF_INET6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP))
        } catch {
            guard error.errno == EACCES else { throw error }
            throw TrafficError(.socket, "ping socket refused: net.ipv4.ping_group_range does not include gid "
                + "\(getgid()) (fix: sysctl -w net.ipv4.ping_group_range=\"0 2147483647\" in this namespace)",
                errno: EACCES)
        }
    }

    /// Waits up to 1 s for the echo reply with `sequence`, skipping late replies to earlier requests.
    /// Returns false on timeout or after counting an ICMP error the kernel reported on the socket.
    private func awaitReply(on socket: Socket, type: UInt8, sequence: UInt16,
                            errors: inout ErrorTally) throws(TrafficError) -> Bool {
        let deadline = Monotonic.now() + Self.replyTimeout
        var buffer = [UInt8](repeating: 0, count: 65_536)
        while true {
            switch socket.waitReadable(until: deadline) {
            case .success(false): return false
            case .success(true): break
            case .failure(let error):
                throw TrafficError(.receive, "poll on ping socket failed: \(error.text)", errno: error.code)
            }
            switch socket.receive(into: &buffer) {
            case .success(let received):
                // The kernel only hands a ping socket replies to its own identifier; check type and sequence.
                guard received.count >= Self.headerLength, buffer.count >= Self.headerLength else { continue }
                let replySequence = UInt16(buffer[6]) << 8 | UInt16(buffer[7])
                if buffer[0] == type && replySequence == sequence { return true }
            case .failure(let error) where softSendErrors.contains(error.code):
                errors.record(error, "echo reply", common)
                return false
            case .failure(let error):
                throw TrafficError(.receive, "receive on ping socket failed: \(error.text)", errno: error.code)
            }
        }
    }
}
