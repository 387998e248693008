import Testing
import NetfilterSystem
@testable import PacketSources

/// The moment a socket's queue was last seen empty, on a real netlink socket (NETLINK_ROUTE: no
/// privileges needed): a look at an empty queue records it, a look at a queue with a datagram
/// waiting records nothing and takes nothing, and the mark only moves forward.
@Suite struct EmptyQueueMarkTests {
    private static let routeProtocol: Int32 = 0  // NETLINK_ROUTE

    /// An RTM_GETLINK dump request: the kernel answers with a datagram per batch of links.
    private static let linkDump: [UInt8] = {
        var message: [UInt8] = []
        func append32(_ value: UInt32) { withUnsafeBytes(of: value) { message += $0 } }
        func append16(_ value: UInt16) { withUnsafeBytes(of: value) { message += $0 } }
        append32(32)        // nlmsg_len: header + struct ifinfomsg
        append16(18)        // RTM_GETLINK
        append16(0x301)     // NLM_F_REQUEST | NLM_F_DUMP
        append32(1)         // seq
        append32(0)         // pid: the kernel
        message += [UInt8](repeating: 0, count: 16)
        return message
    }()

    @Test func aLookAtAnEmptyQueueRecordsTheMomentBeforeIt() throws {
        let socket = try NetlinkSocket(protocol: Self.routeProtocol)
        defer { socket.close() }
        let mark = EmptyQueueMark(socket: socket)
        #expect(mark.latest == 0)
        let before = WallClock.monotonicNanoseconds()
        mark.look()
        let after = WallClock.monotonicNanoseconds()
        #expect(mark.latest >= before && mark.latest <= after)
        #expect(!mark.takeOverrun())
    }

    @Test func aLookAtAWaitingDatagramRecordsNothingAndTakesNothing() throws {
        let socket = try NetlinkSocket(protocol: Self.routeProtocol)
        defer { socket.close() }
        let mark = EmptyQueueMark(socket: socket)
        mark.look()
        let seenEmpty = mark.latest
        try socket.send(Self.linkDump)
        #expect(try waitReadable([socket.descriptor], timeoutMilliseconds: 2_000) == [socket.descriptor])
        #expect(socket.peekQueue() == .notEmpty)
        mark.look()
        #expect(mark.latest == seenEmpty)
        // The datagram is still there for the reader.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 64 << 10, alignment: 8)
        defer { buffer.deallocate() }
        guard case .bytes(let count) = try socket.receive(into: buffer, nonBlocking: true) else {
            Issue.record("the look took the datagram")
            return
        }
        #expect(count >= 16)
    }

    @Test func theMarkOnlyMovesForward() throws {
        let socket = try NetlinkSocket(protocol: Self.routeProtocol)
        defer { socket.close() }
        let mark = EmptyQueueMark(socket: socket)
        mark.recordEmpty(since: 5_000)
        mark.recordEmpty(since: 3_000)
        #expect(mark.latest == 5_000)
        mark.recordEmpty(since: 7_000)
        #expect(mark.latest == 7_000)
    }
}
