import Testing
@testable import NetlinkWire

private let familyID: UInt16 = 0x1f

private func host<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }

private func attribute(_ type: UInt16, _ value: [UInt8]) -> [UInt8] {
    var bytes = host(UInt16(4 + value.count)) + host(type) + value
    while bytes.count % 4 != 0 { bytes.append(0) }
    return bytes
}

/// A struct taskstats as the kernel fills it for an exit (tsacct.c bacct_add_tsk): `size` bytes
/// (416 for version 13), the named fields set, the rest zero.
private func taskstats(version: UInt16 = 13, size: Int = 416, pid: UInt32, tgid: UInt32, comm: String,
                       device: UInt64 = 0x803, inode: UInt64 = 1_312_345) -> [UInt8] {
    var stats = [UInt8](repeating: 0, count: size)
    func put(_ bytes: [UInt8], at offset: Int) {
        for (index, byte) in bytes.enumerated() where offset + index < size { stats[offset + index] = byte }
    }
    put(host(version), at: 0)
    put(Array(comm.utf8.prefix(31)), at: 80)
    put(host(pid), at: 128)
    put(host(UInt32(1)), at: 132)  // ac_ppid: init
    put(host(tgid), at: 368)
    put(host(device), at: 384)
    put(host(inode), at: 392)
    return stats
}

/// An exit notification (taskstats.c taskstats_exit → mk_reply): genlmsghdr cmd NEW, then
/// AGGR_PID { PID, NULL padding, STATS }, optionally AGGR_TGID.
private func exitMessage(_ stats: [UInt8], pid: UInt32, withGroup: Bool = false, type: UInt16 = familyID,
                         command: UInt8 = 2) -> [UInt8] {
    var writer = NetlinkMessageWriter(type: type, flags: [], sequence: 0)
    writer.appendHost(command)
    writer.appendHost(UInt8(1))
    writer.appendHost(UInt16(0))
    var bytes = writer.finish()
    let aggregate = attribute(1, host(pid)) + attribute(6, []) + attribute(3, stats)
    // The kernel nests without NLA_F_NESTED (nla_nest_start_noflag).
    bytes += attribute(4, aggregate)
    if withGroup { bytes += attribute(5, attribute(2, host(pid)) + attribute(3, stats)) }
    let length = UInt32(bytes.count)
    for (index, byte) in host(length).enumerated() { bytes[index] = byte }
    return bytes
}

private func decode(_ bytes: [UInt8]) -> [Result<TaskExit, NetlinkWireError>] {
    // An exact-size allocation, so a read past the end would be a real out-of-bounds read.
    let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: max(bytes.count, 1), alignment: 8)
    defer { storage.deallocate() }
    storage.copyBytes(from: bytes)
    var results: [Result<TaskExit, NetlinkWireError>] = []
    Taskstats.forEachExit(in: UnsafeRawBufferPointer(rebasing: storage[0..<bytes.count]), familyID: familyID) {
        results.append($0)
    }
    return results
}

@Suite("Taskstats wire format")
struct TaskstatsTests {
    @Test func familyRequestAsksTheControllerByName() {
        let bytes = Taskstats.familyRequest(sequence: 7, portID: 99)
        #expect(bytes.count == 16 + 4 + 4 + 12)  // "TASKSTATS\0" padded to 12
        #expect(Array(bytes[4..<6]) == host(UInt16(16)))  // GENL_ID_CTRL
        #expect(Array(bytes[6..<8]) == host(UInt16(1)))  // NLM_F_REQUEST
        #expect(bytes[16] == 3)  // CTRL_CMD_GETFAMILY
        #expect(Array(bytes[20..<24]) == host(UInt16(14)) + host(UInt16(2)))  // nla_len 4 + 10, FAMILY_NAME
        #expect(Array(bytes[24..<34]) == Array("TASKSTATS\0".utf8))
    }

    @Test func registrationNamesTheCPUsAndAsksForAnAcknowledgement() {
        let bytes = Taskstats.registration(familyID: familyID, cpuList: "0-1", sequence: 2)
        #expect(Array(bytes[4..<6]) == host(familyID))
        #expect(Array(bytes[6..<8]) == host(UInt16(0x5)))  // REQUEST | ACK
        #expect(bytes[16] == 1)  // TASKSTATS_CMD_GET
        #expect(Array(bytes[20..<24]) == host(UInt16(8)) + host(UInt16(3)))  // REGISTER_CPUMASK "0-1\0"
        #expect(Array(bytes[24..<28]) == Array("0-1\0".utf8))
        let stop = Taskstats.deregistration(familyID: familyID, cpuList: "0-1", sequence: 3)
        #expect(Array(stop[20..<24]) == host(UInt16(8)) + host(UInt16(4)))  // DEREGISTER_CPUMASK
        #expect(Array(stop[24..<28]) == Array("0-1\0".utf8))
    }

    @Test func repliesGiveTheFamilyIDAndErrors() throws {
        var writer = NetlinkMessageWriter(type: 16, flags: [], sequence: 1)
        writer.appendHost(UInt8(1)); writer.appendHost(UInt8(2)); writer.appendHost(UInt16(0))
        var family = writer.finish() + attribute(2, Array("TASKSTATS\0".utf8)) + attribute(1, host(familyID))
        for (index, byte) in host(UInt32(family.count)).enumerated() { family[index] = byte }
        var error = NetlinkMessageWriter(type: NetlinkMessageType.error, flags: [], sequence: 2)
        error.appendHost(Int32(-1))  // EPERM
        error.appendHost(UInt32(16)); error.appendHost(UInt32(0)); error.appendHost(UInt32(0)); error.appendHost(UInt32(0))
        let bytes = family + error.finish()
        let replies = try bytes.withUnsafeBytes { try Taskstats.replies(in: $0) }
        #expect(replies == [.family(id: familyID), .error(errno: 1, sequence: 2)])

        var empty = NetlinkMessageWriter(type: 16, flags: [], sequence: 1)
        empty.appendHost(UInt32(0x0201))
        let withoutID = empty.finish()
        #expect(throws: NetlinkWireError.self) { try withoutID.withUnsafeBytes { try Taskstats.replies(in: $0) } }
    }

    @Test func anExitRecordNamesTheProgram() throws {
        let message = exitMessage(taskstats(pid: 4242, tgid: 4242, comm: "ping"), pid: 4242, withGroup: true)
        let results = decode(message + exitMessage(taskstats(pid: 4243, tgid: 4242, comm: "worker"), pid: 4243))
        #expect(results.count == 2)
        let first = try results[0].get(), second = try results[1].get()
        #expect(first == TaskExit(threadID: 4242, processID: 4242, comm: "ping",
                                  executable: FileIdentity(device: 0x803, inode: 1_312_345), parentID: 1))
        #expect(second.threadID == 4243 && second.processID == 4242 && second.comm == "worker")
    }

    @Test func kernelThreadsAndOldKernelsHaveNoExecutable() throws {
        let kernelThread = try #require(decode(exitMessage(taskstats(pid: 9, tgid: 9, comm: "kworker/0:1", device: 0, inode: 0),
                                                           pid: 9)).first).get()
        #expect(kernelThread.executable == nil && kernelThread.comm == "kworker/0:1")
        // Version 11 ended before ac_tgid: the thread, parent and comm only, from a 368-byte struct.
        let old = try #require(decode(exitMessage(taskstats(version: 11, size: 368, pid: 7, tgid: 7, comm: "sh"),
                                                  pid: 7)).first).get()
        #expect(old == TaskExit(threadID: 7, processID: nil, comm: "sh", executable: nil, parentID: 1))
    }

    @Test func otherMessagesAreSkippedAndShortStructsRejected() {
        #expect(decode(exitMessage(taskstats(pid: 1, tgid: 1, comm: "x"), pid: 1, type: 0x20)).isEmpty)
        #expect(decode(exitMessage(taskstats(pid: 1, tgid: 1, comm: "x"), pid: 1, command: 1)).isEmpty)
        // Version 13 claimed, 360 bytes given: the executable's fields are missing.
        let short = decode(exitMessage(taskstats(version: 13, size: 360, pid: 1, tgid: 1, comm: "x"), pid: 1))
        guard case .failure(let error)? = short.first else {
            Issue.record("a short struct taskstats decoded: \(short)")
            return
        }
        #expect(error.code == .truncatedMessage)
        let tiny = decode(exitMessage([1, 0, 0, 0], pid: 1))
        guard case .failure(let tinyError)? = tiny.first else {
            Issue.record("a 4-byte struct taskstats decoded: \(tiny)")
            return
        }
        #expect(tinyError.code == .truncatedMessage)
    }

    /// Every prefix and every single-byte change of a real-shaped record: decoding never traps
    /// and never reads outside the buffer (exact-size allocations; run under ASan to see).
    @Test func truncationsAndMutationsNeverTrap() {
        let message = exitMessage(taskstats(pid: 4242, tgid: 4242, comm: "ping"), pid: 4242, withGroup: true)
        var decoded = 0, rejected = 0
        for length in 0..<message.count {
            for result in decode(Array(message.prefix(length))) {
                if case .success = result { decoded += 1 } else { rejected += 1 }
            }
        }
        for index in message.indices where index % 3 == 0 {
            for value: UInt8 in [0, 1, 0x7f, 0xff] {
                var mutated = message
                mutated[index] = value
                for result in decode(mutated) {
                    if case .success = result { decoded += 1 } else { rejected += 1 }
                }
            }
        }
        #expect(decoded > 0 && rejected > 0)
    }
}
