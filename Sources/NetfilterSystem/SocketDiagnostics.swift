import CNetfilter
import Glibc

/// One persistent NETLINK_SOCK_DIAG socket for request/reply lookups (sock_diag).
///
/// This is only the transport: it sends a request that the caller encoded and hands the reply
/// datagram to the caller's decoder (NetlinkWire's `InetDiagDecoder`), because the system layer
/// does not depend on the wire codecs. Not thread-safe: one exchange at a time; the kernel
/// answers in the network namespace of the thread that OPENED the socket.
public final class SockDiagSocket: @unchecked Sendable {
    /// The netlink protocol. The kernel constant is NETLINK_SOCK_DIAG.
    public static let netlinkProtocol: Int32 = 4

    private let socket: NetlinkSocket
    private let buffer: UnsafeMutableRawBufferPointer
    private var nextSequence: UInt32 = 1

    /// Opens the socket. `replyTimeoutMilliseconds` bounds each wait for a reply so a lost
    /// answer cannot hang the caller (the kernel answers a lookup synchronously, in
    /// microseconds; the timeout is only a safety net).
    public init(replyTimeoutMilliseconds: Int = 1000) throws(SystemError) {
        socket = try NetlinkSocket(protocol: Self.netlinkProtocol)
        var timeout = timeval(tv_sec: replyTimeoutMilliseconds / 1000,
                              tv_usec: (replyTimeoutMilliseconds % 1000) * 1000)
        let set = setsockopt(socket.descriptor, SOL_SOCKET, SO_RCVTIMEO, &timeout,
                             socklen_t(MemoryLayout<timeval>.size))
        guard set == 0 else {
            let code = Errno.current
            socket.close()
            throw SystemError(code: code, operation: "set sock_diag reply timeout")
        }
        // A lookup reply is ~130 bytes; 8 KiB leaves room for any attribute a newer kernel adds.
        buffer = UnsafeMutableRawBufferPointer.allocateForKernelCopies(byteCount: 8192)
    }

    deinit {
        socket.close()
        buffer.deallocate()
    }

    /// A fresh nlmsg_seq for the next request.
    public func takeSequence() -> UInt32 {
        defer { nextSequence &+= 1 }
        return nextSequence
    }

    /// Sends `request` (one whole netlink message) to the kernel.
    public func send(_ request: [UInt8]) throws(SystemError) {
        try socket.send(request)
    }

    /// Receives one reply datagram and passes it to `body`; the bytes are valid only inside
    /// `body`. Throws ETIMEDOUT when no reply came within the timeout, ENOBUFS when the kernel
    /// dropped replies, EMSGSIZE when the reply did not fit the buffer.
    public func receive<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) throws -> Result {
        switch try socket.receive(into: buffer) {
        case .bytes(let count):
            return try body(UnsafeRawBufferPointer(rebasing: buffer[0..<count]))
        case .truncated(_, let actual):
            throw SystemError(code: EMSGSIZE, operation: "receive sock_diag reply of \(actual) bytes")
        case .overrun:
            throw SystemError(code: ENOBUFS, operation: "receive sock_diag reply")
        case .wouldBlock:
            // SO_RCVTIMEO expiry is reported as EAGAIN.
            throw SystemError(code: ETIMEDOUT, operation: "wait for sock_diag reply")
        }
    }
}
