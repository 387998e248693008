import Testing
@testable import NetlinkWire

/// Builds a connector message the way the kernel does (cn_proc.c send_msg): nlmsghdr with
/// NLMSG_DONE, cn_msg idx/val 1/1, then struct proc_event.
private func eventMessage(what: UInt32, timestamp: UInt64 = 123_456_789_000, cpu: UInt32 = 3,
                          body: [UInt8], ack: UInt32 = 0) -> [UInt8] {
    var event = NetlinkMessageWriter(type: NetlinkMessageType.done, flags: [], sequence: 0)
    var data: [UInt8] = []
    func host<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value) { data.append(contentsOf: $0) } }
    host(what); host(cpu); host(timestamp)
    data += body
    event.appendHost(ProcConnector.index)
    event.appendHost(ProcConnector.value)
    event.appendHost(UInt32(610))  // the kernel's per-CPU counter
    event.appendHost(ack)
    event.appendHost(UInt16(data.count))
    event.appendHost(UInt16(0))
    var bytes = event.finish() + data
    let length = UInt32(bytes.count)
    withUnsafeBytes(of: length) { for (i, b) in $0.enumerated() { bytes[i] = b } }
    return bytes
}

private func words(_ values: [UInt32]) -> [UInt8] {
    values.flatMap { value in withUnsafeBytes(of: value) { Array($0) } }
}

private func decode(_ bytes: [UInt8]) -> [Result<ProcEvent, NetlinkWireError>] {
    // An exact-size allocation, so a read past the end would be a real out-of-bounds read.
    let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
    defer { storage.deallocate() }
    storage.copyBytes(from: bytes)
    var results: [Result<ProcEvent, NetlinkWireError>] = []
    ProcConnector.forEachEvent(in: UnsafeRawBufferPointer(rebasing: storage[0..<bytes.count])) { results.append($0) }
    return results
}

@Suite("Proc connector wire format")
struct ProcConnectorTests {
    static let cases: [(String, [UInt8], ProcEvent.Kind)] = [
        ("fork", eventMessage(what: ProcConnector.EventType.fork, body: words([100, 100, 200, 200])),
         .fork(parentPID: 100, parentTGID: 100, childPID: 200, childTGID: 200)),
        ("exec", eventMessage(what: ProcConnector.EventType.exec, body: words([200, 200])),
         .exec(pid: 200, tgid: 200)),
        ("uid", eventMessage(what: ProcConnector.EventType.uid, body: words([200, 200, 1000, 0])),
         .uid(pid: 200, tgid: 200, real: 1000, effective: 0)),
        ("gid", eventMessage(what: ProcConnector.EventType.gid, body: words([201, 200, 100, 101])),
         .gid(pid: 201, tgid: 200, real: 100, effective: 101)),
        ("comm", eventMessage(what: ProcConnector.EventType.comm,
                              body: words([200, 200]) + Array("a (b) c".utf8) + [UInt8](repeating: 0, count: 9)),
         .comm(pid: 200, tgid: 200, comm: "a (b) c")),
        ("exit", eventMessage(what: ProcConnector.EventType.exit, body: words([200, 200, 256, 17, 100, 100])),
         .exit(pid: 200, tgid: 200, exitCode: 256, exitSignal: 17, parentPID: 100, parentTGID: 100)),
        ("ack", eventMessage(what: ProcConnector.EventType.none, body: words([1]), ack: 78),
         .acknowledgement(error: 1, answering: 77)),
        ("ptrace", eventMessage(what: ProcConnector.EventType.ptrace, body: words([1, 1, 2, 2])),
         .other(what: ProcConnector.EventType.ptrace)),
    ]

    @Test("each kind decodes", arguments: 0..<cases.count)
    func decodesEachKind(_ index: Int) throws {
        let (_, bytes, kind) = Self.cases[index]
        let results = decode(bytes)
        #expect(results.count == 1)
        let event = try #require(try results.first?.get())
        #expect(event.kind == kind)
        #expect(event.timestamp == 123_456_789_000)
        #expect(event.cpu == 3)
    }

    @Test("every prefix of every kind is an error or nothing, never a crash", arguments: 0..<cases.count)
    func everyPrefix(_ index: Int) {
        let bytes = Self.cases[index].1
        for length in 0..<bytes.count {
            var prefix = Array(bytes[0..<length])
            // Also with nlmsg_len patched to the prefix (a consistent but short message).
            let results = decode(prefix)
            #expect(results.allSatisfy { if case .failure = $0 { true } else { false } }, "prefix \(length)")
            if length >= 4 {
                withUnsafeBytes(of: UInt32(length)) { for (i, b) in $0.enumerated() { prefix[i] = b } }
                let patched = decode(prefix)
                #expect(patched.allSatisfy { if case .failure = $0 { true } else { false } }, "patched prefix \(length)")
            }
        }
    }

    @Test("several messages in one buffer, other connectors skipped, comm of 16 bytes without NUL")
    func batch() throws {
        var other = eventMessage(what: ProcConnector.EventType.exec, body: words([5, 5]))
        other[16] = 9  // another connector index
        let fullComm = eventMessage(what: ProcConnector.EventType.comm,
                                    body: words([7, 7]) + Array("0123456789abcdef".utf8))
        let bytes = Self.cases[0].1 + other + fullComm + Self.cases[5].1
        let kinds = try decode(bytes).map { try $0.get().kind }
        #expect(kinds == [Self.cases[0].2, .comm(pid: 7, tgid: 7, comm: "0123456789abcdef"), Self.cases[5].2])
    }

    @Test("subscription bytes: nlmsghdr + cn_msg + PROC_CN_MCAST_LISTEN")
    func subscription() {
        let bytes = ProcConnector.subscription(.listen, tag: 5, sequence: 9, portID: 1234)
        var expected: [UInt8] = []
        func host<T: FixedWidthInteger>(_ value: T) { withUnsafeBytes(of: value) { expected.append(contentsOf: $0) } }
        host(UInt32(40)); host(UInt16(3)); host(UInt16(0)); host(UInt32(9)); host(UInt32(1234))
        host(UInt32(1)); host(UInt32(1)); host(UInt32(9)); host(UInt32(5)); host(UInt16(4)); host(UInt16(0))
        host(UInt32(1))
        #expect(bytes == expected)
    }
}
