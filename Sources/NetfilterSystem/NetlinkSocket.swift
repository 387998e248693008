import CNetfilter
import Glibc

/// A netlink socket (AF_NETLINK, SOCK_RAW) owned by this value; closed by `close()`.
///
/// Blocking I/O: the receive loop runs on a thread of its own and waits in `poll`, so there is
/// no event-loop buffer logic between the kernel and the decoder (an adaptive read buffer once
/// truncated NFLOG batches silently).
public final class NetlinkSocket: @unchecked Sendable {
    /// NETLINK_NETFILTER: nfnetlink, which carries NFLOG and NFQUEUE.
    public static let netfilterProtocol: Int32 = NETLINK_NETFILTER

    public let descriptor: Int32
    public private(set) var portID: UInt32 = 0

    /// Opens and binds a netlink socket of `netlinkProtocol`; the kernel assigns the port id.
    /// `groups` is the multicast group bit mask to join at bind time (sockaddr_nl.nl_groups),
    /// e.g. CN_IDX_PROC for process events; 0 joins none.
    public init(protocol netlinkProtocol: Int32, groups: UInt32 = 0) throws(SystemError) {
        let fd = socket(AF_NETLINK, Int32(SOCK_RAW.rawValue) | Int32(SOCK_CLOEXEC.rawValue), netlinkProtocol)
        guard fd >= 0 else {
            throw SystemError(code: Errno.current, operation: "open netlink socket (protocol \(netlinkProtocol))")
        }
        descriptor = fd
        var address = sockaddr_nl()
        address.nl_family = sa_family_t(AF_NETLINK)
        address.nl_groups = groups
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
            }
        }
        guard bound == 0 else {
            let code = Errno.current
            Glibc.close(fd)
            throw SystemError(code: code, operation: "bind netlink socket")
        }
        var assigned = sockaddr_nl()
        var length = socklen_t(MemoryLayout<sockaddr_nl>.size)
        _ = withUnsafeMutablePointer(to: &assigned) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        portID = assigned.nl_pid
    }

    /// Sets the kernel receive buffer. With `force` (SO_RCVBUFFORCE, needs CAP_NET_ADMIN) the
    /// value may exceed net.core.rmem_max; without it the kernel caps it silently.
    /// Returns the size the kernel reports afterwards (it doubles the request for bookkeeping).
    @discardableResult
    public func setReceiveBufferSize(_ bytes: Int, force: Bool) throws(SystemError) -> Int {
        var value = Int32(clamping: bytes)
        let option = force ? SO_RCVBUFFORCE : SO_RCVBUF
        let result = setsockopt(descriptor, SOL_SOCKET, option, &value, socklen_t(MemoryLayout<Int32>.size))
        guard result == 0 else {
            throw SystemError(code: Errno.current, operation: "set netlink receive buffer to \(bytes) bytes")
        }
        return receiveBufferSize
    }

    /// The kernel receive buffer size in bytes, as getsockopt(SO_RCVBUF) reports it.
    public var receiveBufferSize: Int {
        var value: Int32 = 0
        var length = socklen_t(MemoryLayout<Int32>.size)
        guard getsockopt(descriptor, SOL_SOCKET, SO_RCVBUF, &value, &length) == 0 else { return 0 }
        return Int(value)
    }

    /// Sends one netlink message (or several concatenated) to the kernel.
    public func send(_ message: [UInt8]) throws(SystemError) {
        let result: Result<Void, SystemError> = message.withUnsafeBytes { bytes in
            Result { () throws(SystemError) in try send(bytes: bytes) }
        }
        try result.get()
    }

    /// Sends the message in `bytes` without copying it (the per-packet verdicts).
    public func send(bytes: UnsafeRawBufferPointer) throws(SystemError) {
        var kernel = sockaddr_nl()
        kernel.nl_family = sa_family_t(AF_NETLINK)
        let sent = try retryingInterrupts("send netlink message") {
            withUnsafePointer(to: &kernel) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(descriptor, bytes.baseAddress, bytes.count, 0, $0, socklen_t(MemoryLayout<sockaddr_nl>.size))
                }
            }
        }
        guard sent == bytes.count else {
            throw SystemError(code: EMSGSIZE, operation: "send netlink message (short write)")
        }
    }

    /// The outcome of one receive.
    public enum Received: Sendable, Equatable {
        /// A datagram of this many bytes is now at the start of the buffer.
        case bytes(Int)
        /// The datagram was larger than the buffer (MSG_TRUNC): its tail is lost.
        case truncated(received: Int, actual: Int)
        /// The kernel could not queue messages for us (ENOBUFS): some were dropped.
        case overrun
        /// Nothing to read (non-blocking receive only).
        case wouldBlock
    }

    /// What a look at the receive queue found (`peekQueue`).
    public enum QueueState: Sendable, Equatable {
        case empty
        case notEmpty
        /// The kernel had dropped messages (ENOBUFS). It reports that once, to whichever call
        /// asks first: the caller must pass it on to whoever counts the losses.
        case overrun
        /// The look failed otherwise: nothing is known.
        case unknown
    }

    /// Looks at the receive queue without taking anything from it (MSG_PEEK, zero bytes, never
    /// blocks). Safe from any thread while another one receives.
    public func peekQueue() -> QueueState {
        while true {
            let result = recv(descriptor, nil, 0, Int32(MSG_PEEK) | Int32(MSG_DONTWAIT))
            if result >= 0 { return .notEmpty }
            switch Errno.current {
            case EINTR: continue
            case EAGAIN: return .empty
            case ENOBUFS: return .overrun
            default: return .unknown
            }
        }
    }

    /// Receives one datagram into `buffer`. `nonBlocking` returns `.wouldBlock` instead of waiting.
    public func receive(into buffer: UnsafeMutableRawBufferPointer, nonBlocking: Bool = false) throws(SystemError) -> Received {
        let flags = Int32(MSG_TRUNC) | (nonBlocking ? Int32(MSG_DONTWAIT) : 0)
        while true {
            if let received = try receiveOnce(into: buffer, flags: flags) { return received }
        }
    }

    /// Blocks in recv(2) for the next datagram, at most the receive timeout
    /// (`setReceiveTimeout`). nil when the wait ended without one: the timeout passed, or a
    /// signal interrupted it (see `ThreadInterrupter`).
    public func receiveWaiting(into buffer: UnsafeMutableRawBufferPointer) throws(SystemError) -> Received? {
        switch try receiveOnce(into: buffer, flags: Int32(MSG_TRUNC)) {
        case nil, .wouldBlock?: return nil
        case let received?: return received
        }
    }

    /// How long a blocking receive waits before giving up (SO_RCVTIMEO); 0 waits forever.
    public func setReceiveTimeout(milliseconds: Int) throws(SystemError) {
        var value = timeval(tv_sec: milliseconds / 1000, tv_usec: (milliseconds % 1000) * 1000)
        guard setsockopt(descriptor, SOL_SOCKET, SO_RCVTIMEO, &value, socklen_t(MemoryLayout<timeval>.size)) == 0 else {
            throw SystemError(code: Errno.current, operation: "set the netlink receive timeout to \(milliseconds) ms")
        }
    }

    /// One recv(2); nil when a signal interrupted it.
    private func receiveOnce(into buffer: UnsafeMutableRawBufferPointer, flags: Int32) throws(SystemError) -> Received? {
        let result = recv(descriptor, buffer.baseAddress, buffer.count, flags)
        if result >= 0 {
            return result > buffer.count ? .truncated(received: buffer.count, actual: result) : .bytes(result)
        }
        switch Errno.current {
        case EINTR: return nil
        case ENOBUFS: return .overrun
        case EAGAIN: return .wouldBlock
        case let code: throw SystemError(code: code, operation: "receive from netlink socket")
        }
    }

    public func close() {
        Glibc.close(descriptor)
    }

    /// What `drainWaiting` could not hand on.
    public struct DrainLosses: Sendable, Equatable {
        /// Times the kernel reported dropped messages (ENOBUFS).
        public var overruns = 0
        /// Datagrams cut short (larger than the buffer), and a failed receive, which ends the drain.
        public var unreadable = 0
    }

    /// Receives every datagram waiting now (never blocks) into `buffer`, handing each one's
    /// bytes to `body` before the next receive overwrites them.
    public func drainWaiting(into buffer: UnsafeMutableRawBufferPointer,
                             _ body: (UnsafeRawBufferPointer) -> Void) -> DrainLosses {
        var losses = DrainLosses()
        while true {
            let received: Received
            do {
                received = try receive(into: buffer, nonBlocking: true)
            } catch {
                losses.unreadable += 1
                return losses
            }
            switch received {
            case .wouldBlock:
                return losses
            case .overrun:
                losses.overruns += 1
            case .truncated:
                losses.unreadable += 1
            case .bytes(let count):
                body(UnsafeRawBufferPointer(rebasing: buffer[0..<min(count, buffer.count)]))
            }
        }
    }
}
