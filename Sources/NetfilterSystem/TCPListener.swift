import CNetfilter
import Glibc

/// A listening TCP socket on a numeric address, for the daemon's HTTP endpoint. Blocking I/O on
/// a thread of its own: `accept` waits in poll together with a wakeup that ends it.
///
/// The socket is created by the calling thread, so in the calling thread's network namespace:
/// a daemon that entered a namespace listens inside it.
public final class TCPListener: @unchecked Sendable {
    public let descriptor: Int32
    /// The port bound (the one asked for, or the kernel's pick for 0).
    public let port: UInt16

    /// Binds `host` (numeric IPv4, or IPv6 when `ipv6`) and `port`, and listens.
    public init(host: String, port: UInt16, ipv6: Bool, backlog: Int32 = 16) throws(SystemError) {
        let family = ipv6 ? AF_INET6 : AF_INET
        let fd = socket(family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(code: Errno.current, operation: "open TCP socket") }
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        let bound: Int32
        var parsed = false
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            parsed = inet_pton(AF_INET6, host, &address.sin6_addr) == 1
            bound = parsed ? Self.bind(fd, address) : -1
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            parsed = inet_pton(AF_INET, host, &address.sin_addr) == 1
            bound = parsed ? Self.bind(fd, address) : -1
        }
        guard parsed else {
            Glibc.close(fd)
            throw SystemError(code: EINVAL, operation: "parse listen address \(host)")
        }
        guard bound == 0 else {
            let code = Errno.current
            Glibc.close(fd)
            throw SystemError(code: code, operation: "bind TCP \(ipv6 ? "[\(host)]" : host):\(port)")
        }
        guard listen(fd, backlog) == 0 else {
            let code = Errno.current
            Glibc.close(fd)
            throw SystemError(code: code, operation: "listen on TCP port \(port)")
        }
        var storage = sockaddr_storage()
        var length = socklen_t(MemoryLayout<sockaddr_storage>.size)
        let named = withUnsafeMutablePointer(to: &storage) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        var actual = port
        if named == 0 {
            actual = withUnsafePointer(to: &storage) { pointer in
                ipv6 ? pointer.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin6_port) }
                     : pointer.withMemoryRebound(to: sockaddr_in.self, capacity: 1) { UInt16(bigEndian: $0.pointee.sin_port) }
            }
        }
        descriptor = fd
        self.port = actual
    }

    /// bind(2) with a sockaddr_in or sockaddr_in6.
    private static func bind<Address>(_ fd: Int32, _ address: Address) -> Int32 {
        withUnsafePointer(to: address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.bind(fd, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
    }

    /// The next connection, or nil once `stop` is signalled.
    public func accept(until stop: WakeupEvent) throws(SystemError) -> TCPConnection? {
        while true {
            let ready = try waitReadable([descriptor, stop.descriptor], timeoutMilliseconds: -1)
            if ready.contains(stop.descriptor) { return nil }
            let fd = Glibc.accept(descriptor, nil, nil)
            if fd >= 0 {
                // accept4 is not in Glibc's Swift overlay: close-on-exec is set right after.
                _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
                return TCPConnection(descriptor: fd)
            }
            let code = Errno.current
            // A client that gave up between poll and accept, or a signal: try again.
            if code == EINTR || code == EAGAIN || code == ECONNABORTED || code == EPROTO { continue }
            throw SystemError(code: code, operation: "accept a TCP connection")
        }
    }

    public func close() { Glibc.close(descriptor) }
}

/// A TCP connection, accepted or made; closed by `close()`.
public final class TCPConnection: @unchecked Sendable {
    public let descriptor: Int32

    init(descriptor: Int32) { self.descriptor = descriptor }

    /// Connects to numeric `host` (IPv4, or IPv6 when `ipv6`) and `port` from the calling
    /// thread's network namespace, waiting at most `timeoutMilliseconds` (which then bounds
    /// every read and write too).
    public static func connect(host: String, port: UInt16, ipv6: Bool, timeoutMilliseconds: Int) throws(SystemError) -> TCPConnection {
        let fd = socket(ipv6 ? AF_INET6 : AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SystemError(code: Errno.current, operation: "open TCP socket") }
        let connection = TCPConnection(descriptor: fd)
        // SO_SNDTIMEO bounds connect(2) as well on Linux.
        connection.setTimeouts(milliseconds: timeoutMilliseconds)
        var parsed = false
        var result: Int32 = -1
        if ipv6 {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            address.sin6_port = port.bigEndian
            parsed = inet_pton(AF_INET6, host, &address.sin6_addr) == 1
            if parsed { result = Self.connect(fd, address) }
        } else {
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = port.bigEndian
            parsed = inet_pton(AF_INET, host, &address.sin_addr) == 1
            if parsed { result = Self.connect(fd, address) }
        }
        guard parsed else {
            connection.close()
            throw SystemError(code: EINVAL, operation: "parse address \(host)")
        }
        guard result == 0 else {
            let code = Errno.current
            connection.close()
            throw SystemError(code: code == EINPROGRESS ? ETIMEDOUT : code,
                              operation: "connect to \(ipv6 ? "[\(host)]" : host):\(port)")
        }
        return connection
    }

    private static func connect<Address>(_ fd: Int32, _ address: Address) -> Int32 {
        withUnsafePointer(to: address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<Address>.size))
            }
        }
    }

    /// Bounds every read and write, so a client that stalls cannot hold the endpoint.
    public func setTimeouts(milliseconds: Int) {
        var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(descriptor, SOL_SOCKET, SO_SNDTIMEO, &value, socklen_t(MemoryLayout<timeval>.size))
    }

    /// Reads what is available (at most `maximum` bytes); empty at the end of the stream.
    public func read(maximum: Int) throws(SystemError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: maximum)
        while true {
            let count = buffer.withUnsafeMutableBytes { Glibc.recv(descriptor, $0.baseAddress, maximum, 0) }
            if count >= 0 { return Array(buffer.prefix(count)) }
            let code = Errno.current
            if code == EINTR { continue }
            throw SystemError(code: code, operation: "read from a TCP peer")
        }
    }

    /// Writes all of `bytes` (MSG_NOSIGNAL: a client that left is an error, not a SIGPIPE).
    public func write(_ bytes: [UInt8]) throws(SystemError) {
        var offset = 0
        while offset < bytes.count {
            let count = bytes.withUnsafeBytes {
                Glibc.send(descriptor, $0.baseAddress! + offset, bytes.count - offset, Int32(MSG_NOSIGNAL))
            }
            if count < 0 {
                let code = Errno.current
                if code == EINTR { continue }
                throw SystemError(code: code, operation: "write to a TCP peer")
            }
            offset += count
        }
    }

    public func close() { Glibc.close(descriptor) }
}
