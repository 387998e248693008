// The Glibc boundary of the traffic generator: sockets, addresses and the monotonic clock. Every libc call is
// wrapped once here, errno is read right after the call, and EINTR is retried in one place, so the mode files
// read as plain steps. A failed call is NetfilterSystem's `SystemError` (errno + the call), its text
// `Errno.describe`: the product's errno vocabulary. The calls themselves stay here: NetfilterSystem wraps what
// the product needs (netlink, inotify, namespaces), not TCP/UDP/ping/raw sockets, and this is a test tool.
import Glibc
import NetfilterSystem

/// The one error type of nfowner-traffic: a code tests can compare and a reason that names the cause and the fix.
struct TrafficError: Error, CustomStringConvertible {
    enum Code: Equatable, Sendable {
        case invalidAddress, invalidFlows, privileges, socket, connect, bind, send, receive, timeout, noReplies
    }
    let code: Code
    let reason: String
    /// The errno behind the failure, when a system call failed.
    let errno: Int32?

    init(_ code: Code, _ reason: String, errno: Int32? = nil) {
        self.code = code
        self.reason = reason
        self.errno = errno
    }

    /// ArgumentParser prints this after "Error: " on stderr and exits with status 1.
    var description: String { reason }
}

extension SystemError {
    /// The errno's text alone, e.g. "Connection refused": the mode files say what they attempted themselves.
    var text: String { Errno.describe(code) }
}

/// Errors a send may report without the run being broken: ECONNREFUSED (an ICMP port unreachable for an earlier
/// datagram), EPERM (an nftables/iptables drop in the output path), EHOSTUNREACH/ENETUNREACH (an ICMP error or a
/// `reject` rule), ENOBUFS (a full queue). They are counted in `errors=`; anything else aborts the run.
let softSendErrors: Set<Int32> = [ECONNREFUSED, EPERM, EHOSTUNREACH, ENETUNREACH, ENOBUFS]

/// Writes a line to stderr without stdio: the C global `stderr` is not usable from Swift 6 strict concurrency.
func printError(_ message: String) {
    var line = message + "\n"
    line.withUTF8 { bytes in
        var offset = 0
        while offset < bytes.count {
            let n = write(STDERR_FILENO, bytes.baseAddress.map { $0 + offset }, bytes.count - offset)
            if n < 0 && Glibc.errno == EINTR { continue }
            guard n > 0 else { return }
            offset += n
        }
    }
}

/// Prints one line on stdout and flushes it at once, so a test reading a pipe sees it before we exit or block.
func printLine(_ line: String) {
    print(line)
    fflush(nil)  // nil flushes every stream; the C global `stdout` is not usable from Swift 6 strict concurrency
}

// MARK: - Clock

/// CLOCK_MONOTONIC in nanoseconds: every deadline, pacing step and `elapsed_ns` uses it.
enum Monotonic {
    static func now() -> UInt64 {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return UInt64(ts.tv_sec) &* 1_000_000_000 &+ UInt64(ts.tv_nsec)
    }

    /// Sleeps until an absolute time. Returns at once when that time has passed, which is what lets a paced
    /// sender catch up after a slow step instead of drifting.
    static func sleep(until deadline: UInt64) {
        var ts = timespec(tv_sec: Int(deadline / 1_000_000_000), tv_nsec: Int(deadline % 1_000_000_000))
        // clock_nanosleep returns the error number itself rather than setting errno.
        while clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, nil) == EINTR {}
    }

    /// Seconds (validated finite and in range by the commands) to nanoseconds.
    static func nanoseconds(_ seconds: Double) -> UInt64 { UInt64((seconds * 1e9).rounded()) }
}

/// Largest value accepted for any seconds option (a day); keeps the nanosecond conversion far from overflow.
let maximumSeconds = 86_400.0

// MARK: - Addresses

/// An IPv4 or IPv6 socket address, parsed from a numeric literal (the family follows the text, via inet_pton).
struct SocketAddress: CustomStringConvertible {
    private var storage = sockaddr_storage()
    private(set) var length: socklen_t = 0

    /// Throws `.invalidAddress` when `text` is neither an IPv4 nor an IPv6 literal (names are not resolved).
    init(_ text: String, port: UInt16) throws(TrafficError) {
        var v4 = in_addr()
        var v6 = in6_addr()
        if inet_pton(AF_INET, text, &v4) == 1 {
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr = v4
            store(sin)
        } else if inet_pton(AF_INET6, text, &v6) == 1 {
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_addr = v6
            store(sin6)
        } else {
            throw TrafficError(.invalidAddress, "'\(text)' is not an IPv4 or IPv6 address literal")
        }
    }

    /// An IPv4 address given in host byte order (the form `FlowSequence` counts in).
    init(ipv4 address: UInt32, port: UInt16) {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        sin.sin_addr = in_addr(s_addr: address.bigEndian)
        store(sin)
    }

    /// Wraps what getsockname/recvfrom/accept filled in.
    fileprivate init(storage: sockaddr_storage, length: socklen_t) {
        self.storage = storage
        self.length = length
    }

    private mutating func store<T>(_ address: T) {
        length = socklen_t(MemoryLayout<T>.size)
        withUnsafeMutableBytes(of: &storage) { destination in
            withUnsafeBytes(of: address) { destination.copyMemory(from: $0) }
        }
    }

    /// AF_INET or AF_INET6.
    var family: Int32 { Int32(storage.ss_family) }
    var isIPv6: Bool { family == AF_INET6 }

    var port: UInt16 {
        withUnsafeBytes(of: storage) { raw in
            isIPv6 ? UInt16(bigEndian: raw.load(as: sockaddr_in6.self).sin6_port)
                   : UInt16(bigEndian: raw.load(as: sockaddr_in.self).sin_port)
        }
    }

    /// The IPv4 address in host byte order; nil for IPv6.
    var ipv4: UInt32? {
        guard family == AF_INET else { return nil }
        return withUnsafeBytes(of: storage) { UInt32(bigEndian: $0.load(as: sockaddr_in.self).sin_addr.s_addr) }
    }

    /// The same address with another port (0: let bind pick one).
    func with(port newPort: UInt16) -> SocketAddress {
        var copy = self
        withUnsafeMutableBytes(of: &copy.storage) { raw in
            if isIPv6 {
                var sin6 = raw.load(as: sockaddr_in6.self)
                sin6.sin6_port = newPort.bigEndian
                raw.storeBytes(of: sin6, as: sockaddr_in6.self)
            } else {
                var sin = raw.load(as: sockaddr_in.self)
                sin.sin_port = newPort.bigEndian
                raw.storeBytes(of: sin, as: sockaddr_in.self)
            }
        }
        return copy
    }

    /// The address without the port, e.g. "127.0.0.1" or "::1".
    var host: String {
        var text = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        withUnsafeBytes(of: storage) { raw in
            if isIPv6 {
                var address = raw.load(as: sockaddr_in6.self).sin6_addr
                _ = inet_ntop(AF_INET6, &address, &text, socklen_t(text.count))
            } else {
                var address = raw.load(as: sockaddr_in.self).sin_addr
                _ = inet_ntop(AF_INET, &address, &text, socklen_t(text.count))
            }
        }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// "127.0.0.1:40211" or "[::1]:40211": the form of `local=` and `peer=` in result lines.
    var description: String { isIPv6 ? "[\(host)]:\(port)" : "\(host):\(port)" }

    func withSockaddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) -> R) -> R {
        withUnsafePointer(to: storage) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, length) }
        }
    }
}

/// Calls `body` with a zeroed sockaddr_storage for the kernel to fill in, and wraps the result.
private func receiveAddress(_ body: (UnsafeMutablePointer<sockaddr>, UnsafeMutablePointer<socklen_t>) -> Int)
    -> (result: Int, address: SocketAddress) {
    var storage = sockaddr_storage()
    var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
    let result = withUnsafeMutablePointer(to: &storage) { pointer in
        pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, &length) }
    }
    return (result, SocketAddress(storage: storage, length: length))
}

// MARK: - Sockets

/// Socket types as Int32, since Glibc imports SOCK_* as an enum type.
enum SocketType {
    static let stream = Int32(SOCK_STREAM.rawValue)
    static let datagram = Int32(SOCK_DGRAM.rawValue)
    static let raw = Int32(SOCK_RAW.rawValue)
}

/// An owned socket descriptor, closed when released (or earlier with `close()`).
final class Socket {
    private var fd: Int32

    /// Throws `.socket` carrying the errno, so callers can explain EACCES/EPERM for their mode.
    init(family: Int32, type: Int32, protocol proto: Int32 = 0) throws(TrafficError) {
        fd = Glibc.socket(family, type | Int32(SOCK_CLOEXEC.rawValue), proto)
        guard fd >= 0 else {
            let code = Glibc.errno
            throw TrafficError(.socket, "socket(\(family == AF_INET6 ? "AF_INET6" : "AF_INET"), type \(type), "
                + "protocol \(proto)) failed: \(Errno.describe(code))", errno: code)
        }
    }

    private init(adopting fd: Int32) { self.fd = fd }

    deinit { close() }

    func close() {
        if fd >= 0 { _ = Glibc.close(fd) }
        fd = -1
    }

    func connect(_ address: SocketAddress) -> Result<Void, SystemError> {
        retryingEINTR("connect") { address.withSockaddr { Int(Glibc.connect(fd, $0, $1)) } }.map { _ in () }
    }

    func bind(_ address: SocketAddress) -> Result<Void, SystemError> {
        retryingEINTR("bind") { address.withSockaddr { Int(Glibc.bind(fd, $0, $1)) } }.map { _ in () }
    }

    func listen(backlog: Int32 = 128) -> Result<Void, SystemError> {
        retryingEINTR("listen") { Int(Glibc.listen(fd, backlog)) }.map { _ in () }
    }

    func setOption(level: Int32, name: Int32, value: Int32) -> Result<Void, SystemError> {
        var value = value
        return retryingEINTR("setsockopt") {
            Int(setsockopt(fd, level, name, &value, socklen_t(MemoryLayout<Int32>.size)))
        }.map { _ in () }
    }

    /// SO_LINGER on: close() returns only once the peer has acknowledged everything, FIN
    /// included (or after `seconds`).
    func setLinger(seconds: Int32) -> Result<Void, SystemError> {
        var value = linger(l_onoff: 1, l_linger: seconds)
        return retryingEINTR("setsockopt") {
            Int(setsockopt(fd, SOL_SOCKET, SO_LINGER, &value, socklen_t(MemoryLayout<linger>.size)))
        }.map { _ in () }
    }

    /// Bounds a blocking call (SO_SNDTIMEO bounds connect and send, SO_RCVTIMEO recv).
    func setTimeout(_ name: Int32, nanoseconds: UInt64) -> Result<Void, SystemError> {
        var tv = timeval(tv_sec: Int(nanoseconds / 1_000_000_000),
                         tv_usec: Int(nanoseconds % 1_000_000_000 / 1_000))
        return retryingEINTR("setsockopt") {
            Int(setsockopt(fd, SOL_SOCKET, name, &tv, socklen_t(MemoryLayout<timeval>.size)))
        }.map { _ in () }
    }

    /// Sends on a connected socket; MSG_NOSIGNAL turns a closed TCP peer into EPIPE instead of SIGPIPE.
    func send(_ bytes: ArraySlice<UInt8>) -> Result<Int, SystemError> {
        retryingEINTR("send") {
            bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
    }

    func send(_ bytes: [UInt8], to address: SocketAddress) -> Result<Int, SystemError> {
        retryingEINTR("sendto") {
            bytes.withUnsafeBytes { buffer in
                address.withSockaddr { Glibc.sendto(fd, buffer.baseAddress, buffer.count, Int32(MSG_NOSIGNAL), $0, $1) }
            }
        }
    }

    /// Receives one datagram (or stream chunk) into `buffer`; returns the byte count and the sender.
    func receive(into buffer: inout [UInt8]) -> Result<(count: Int, from: SocketAddress), SystemError> {
        while true {
            let attempt = buffer.withUnsafeMutableBytes { bytes in
                receiveAddress { Glibc.recvfrom(fd, bytes.baseAddress, bytes.count, 0, $0, $1) }
            }
            if attempt.result >= 0 { return .success((attempt.result, attempt.address)) }
            let code = Glibc.errno
            if code != EINTR { return .failure(SystemError(code: code, operation: "recvfrom")) }
        }
    }

    /// Accepts one connection; returns nil when `deadline` (monotonic ns) passes first.
    func accept(until deadline: UInt64) -> Result<(socket: Socket, peer: SocketAddress)?, SystemError> {
        while true {
            switch waitReadable(until: deadline) {
            case .failure(let error): return .failure(error)
            case .success(false): return .success(nil)
            case .success(true): break
            }
            let attempt = receiveAddress { Int(Glibc.accept(fd, $0, $1)) }
            if attempt.result >= 0 { return .success((Socket(adopting: Int32(attempt.result)), attempt.address)) }
            let code = Glibc.errno
            if code != EINTR { return .failure(SystemError(code: code, operation: "accept")) }
        }
    }

    /// Waits with poll until the socket is readable (true) or `deadline` (monotonic ns) passes (false).
    /// An error condition (POLLERR) counts as readable: the next receive reports it.
    func waitReadable(until deadline: UInt64) -> Result<Bool, SystemError> {
        while true {
            let now = Monotonic.now()
            guard now < deadline else { return .success(false) }
            // Round up so we never wake a hair early and spin on a zero timeout.
            let milliseconds = min((deadline - now + 999_999) / 1_000_000, UInt64(Int32.max))
            var descriptor = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&descriptor, 1, Int32(milliseconds))
            if ready > 0 { return .success(true) }
            if ready < 0 {
                let code = Glibc.errno
                if code == EINTR { continue }
                return .failure(SystemError(code: code, operation: "poll"))
            }
        }
    }

    /// getsockname: the local address:port, reported as `local=` so tests can match events to flows.
    func localAddress() -> SocketAddress? {
        let attempt = receiveAddress { Int(getsockname(fd, $0, $1)) }
        return attempt.result == 0 ? attempt.address : nil
    }

    func shutdownWrite() { _ = Glibc.shutdown(fd, Int32(SHUT_WR)) }

    /// Runs a call that returns -1 and sets errno on failure, retrying EINTR.
    private func retryingEINTR(_ operation: String, _ call: () -> Int) -> Result<Int, SystemError> {
        while true {
            let result = call()
            if result >= 0 { return .success(result) }
            let code = Glibc.errno
            if code != EINTR { return .failure(SystemError(code: code, operation: operation)) }
        }
    }
}
