// Process events from the kernel connector (NETLINK_CONNECTOR, cn_proc). All fields host order.
//
// Every message, both directions, is a netlink message carrying one struct cn_msg:
//
//   0        16        20        24        28        32      34      36
//   +--------+---------+---------+---------+---------+-------+-------+------------------+
//   |nlmsghdr| idx u32 | val u32 | seq u32 | ack u32 |len u16|flg u16| data (len bytes) |
//   +--------+---------+---------+---------+---------+-------+-------+------------------+
//             `-- struct cb_id --'                              nlmsg_type = NLMSG_DONE
//
// Subscription (to the kernel): idx = CN_IDX_PROC, val = CN_VAL_PROC, data = u32
// proc_cn_mcast_op (PROC_CN_MCAST_LISTEN = 1). The socket must also be bound to multicast
// group CN_IDX_PROC (nl_groups = 1).
//
// Events (from the kernel): data = struct proc_event
//
//   0          4         8                16
//   +----------+---------+----------------+------------------------------------------+
//   | what u32 | cpu u32 | timestamp_ns   | event_data (union, by `what`)            |
//   |          |         | u64, CLOCK_    |                                          |
//   |          |         | MONOTONIC      |                                          |
//   +----------+---------+----------------+------------------------------------------+
//   fork:  parent_pid | parent_tgid | child_pid | child_tgid                (4 × i32)
//   exec:  pid | tgid                                                      (2 × i32)
//   uid/gid: pid | tgid | real id u32 | effective id u32
//   comm:  pid | tgid | comm[16] (NUL-padded)
//   exit:  pid | tgid | exit_code u32 | exit_signal u32 | parent_pid | parent_tgid
//   none (the ack of a subscription): err u32
//
// "pid" is the kernel's task id (a thread id); "tgid" is what userspace calls the process id.

import BinaryParsing

/// Constants and codec of the proc connector.
public enum ProcConnector {
    /// The netlink protocol of the connector. The kernel constant is NETLINK_CONNECTOR.
    public static let netlinkProtocol: Int32 = 11
    /// The connector index of process events, also its multicast group. CN_IDX_PROC.
    public static let index: UInt32 = 1
    /// The connector value of process events. CN_VAL_PROC.
    public static let value: UInt32 = 1
    /// Size of struct cn_msg without data.
    public static let cnMsgSize = 20
    /// Size of struct proc_event's fixed part (what, cpu, timestamp_ns).
    public static let eventHeaderSize = 16

    /// The subscription operation. The kernel type is enum proc_cn_mcast_op.
    public enum MulticastOperation: UInt32, Sendable {
        /// PROC_CN_MCAST_LISTEN
        case listen = 1
        /// PROC_CN_MCAST_IGNORE
        case ignore = 2
    }

    /// The message that starts (or stops) the event feed for this socket.
    /// Needs CAP_NET_ADMIN in the initial user namespace; the kernel answers with an
    /// acknowledgement event whose cn_msg.ack is `tag` + 1 (its cn_msg.seq is the kernel's own
    /// counter, so the tag is the only way to recognise the answer to this request).
    public static func subscription(_ operation: MulticastOperation = .listen, tag: UInt32 = 0,
                                    sequence: UInt32 = 0, portID: UInt32 = 0) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: NetlinkMessageType.done, flags: [], sequence: sequence,
                                          portID: portID)
        writer.appendHost(index)
        writer.appendHost(value)
        writer.appendHost(sequence)  // cn_msg.seq
        writer.appendHost(tag)  // cn_msg.ack
        writer.appendHost(UInt16(4))  // cn_msg.len: one u32 follows
        writer.appendHost(UInt16(0))  // cn_msg.flags
        writer.appendHost(operation.rawValue)
        return writer.finish()
    }

    /// Calls `body` with each message found in one recv() buffer: an event, or an error for a
    /// message that could not be decoded. Messages of other connector indexes are skipped.
    /// Never traps; after a bad nlmsg_len the rest of the buffer is unreadable and dropped.
    public static func forEachEvent(in buffer: UnsafeRawBufferPointer,
                                    _ body: (Result<ProcEvent, NetlinkWireError>) -> Void) {
        var messages = MessageCursor(buffer: buffer)
        while case let next? = messages.next() {
            guard case .success(let message) = next else {
                if case .failure(let error) = next { body(.failure(error)) }
                return
            }
            guard message.header.type == NetlinkMessageType.done else { continue }
            do {
                if let event = try decodeMessage(message.bytes, offset: message.offset) { body(.success(event)) }
            } catch {
                body(.failure(error))
            }
        }
    }

    /// Decodes one netlink message (from its nlmsghdr, exactly nlmsg_len long) holding a cn_msg.
    /// Returns nil for a message of another connector (idx/val not CN_IDX_PROC/CN_VAL_PROC).
    /// Throws `.truncatedMessage` when cn_msg or the event it announces is cut short.
    public static func decodeMessage(_ message: UnsafeRawBufferPointer,
                                     offset: Int = 0) throws(NetlinkWireError) -> ProcEvent? {
        let base = NetlinkMessageHeader.size
        guard let idx = message.hostUInt32(at: base), let val = message.hostUInt32(at: base + 4),
              let dataLength = message.hostUInt16(at: base + 16)
        else {
            throw NetlinkWireError(.truncatedMessage,
                                   "connector message of \(message.count) bytes has no complete cn_msg",
                                   offset: offset)
        }
        guard idx == index, val == value else { return nil }
        guard let data = message.subrange(at: base + cnMsgSize, count: Int(dataLength)) else {
            throw NetlinkWireError(.truncatedMessage,
                                   "cn_msg announces \(dataLength) bytes of data; \(message.count - base - cnMsgSize) present",
                                   offset: offset)
        }
        var event = try decodeEvent(data, offset: offset + base + cnMsgSize)
        if case .acknowledgement(let error, _) = event.kind, let ack = message.hostUInt32(at: base + 12) {
            event.kind = .acknowledgement(error: error, answering: ack &- 1)
        }
        return event
    }

    /// Decodes a struct proc_event (`data` is cn_msg's data). Throws `.truncatedMessage` when
    /// the fixed part or the union member that `what` selects is cut short.
    public static func decodeEvent(_ data: UnsafeRawBufferPointer,
                                   offset: Int = 0) throws(NetlinkWireError) -> ProcEvent {
        guard let what = data.hostUInt32(at: 0), let cpu = data.hostUInt32(at: 4),
              let timestamp = data.hostUInt64(at: 8)
        else {
            throw NetlinkWireError(.truncatedMessage,
                                   "proc_event of \(data.count) bytes is shorter than its \(eventHeaderSize)-byte header",
                                   offset: offset)
        }
        let u = eventHeaderSize
        func field(_ index: Int) throws(NetlinkWireError) -> UInt32 {
            guard let value = data.hostUInt32(at: u + 4 * index) else {
                throw NetlinkWireError(.truncatedMessage,
                                       "proc_event 0x\(String(what, radix: 16)) of \(data.count) bytes lacks field \(index) of its body",
                                       offset: offset)
            }
            return value
        }
        func pid(_ index: Int) throws(NetlinkWireError) -> Int32 { Int32(bitPattern: try field(index)) }

        let kind: ProcEvent.Kind
        switch what {
        case EventType.none:
            kind = .acknowledgement(error: try field(0), answering: 0)
        case EventType.fork:
            kind = .fork(parentPID: try pid(0), parentTGID: try pid(1), childPID: try pid(2), childTGID: try pid(3))
        case EventType.exec:
            kind = .exec(pid: try pid(0), tgid: try pid(1))
        case EventType.uid:
            kind = .uid(pid: try pid(0), tgid: try pid(1), real: try field(2), effective: try field(3))
        case EventType.gid:
            kind = .gid(pid: try pid(0), tgid: try pid(1), real: try field(2), effective: try field(3))
        case EventType.comm:
            let p = try pid(0), t = try pid(1)
            guard let raw = data.subrange(at: u + 8, count: 16) else {
                throw NetlinkWireError(.truncatedMessage,
                                       "comm event of \(data.count) bytes lacks its 16-byte name", offset: offset)
            }
            let name = raw.prefix { $0 != 0 }
            kind = .comm(pid: p, tgid: t, comm: String(decoding: name, as: UTF8.self))
        case EventType.exit:
            kind = .exit(pid: try pid(0), tgid: try pid(1), exitCode: try field(2), exitSignal: try field(3),
                         parentPID: try pid(4), parentTGID: try pid(5))
        default:
            // sid, ptrace, coredump and future kinds: not needed to know who a process is.
            kind = .other(what: what)
        }
        return ProcEvent(cpu: cpu, timestamp: timestamp, kind: kind)
    }

    /// Values of proc_event.what. The kernel type is enum what (PROC_EVENT_*).
    public enum EventType {
        /// PROC_EVENT_NONE: the acknowledgement of a subscription.
        public static let none: UInt32 = 0
        /// PROC_EVENT_FORK
        public static let fork: UInt32 = 0x1
        /// PROC_EVENT_EXEC
        public static let exec: UInt32 = 0x2
        /// PROC_EVENT_UID
        public static let uid: UInt32 = 0x4
        /// PROC_EVENT_GID
        public static let gid: UInt32 = 0x40
        /// PROC_EVENT_SID
        public static let sid: UInt32 = 0x80
        /// PROC_EVENT_PTRACE
        public static let ptrace: UInt32 = 0x100
        /// PROC_EVENT_COMM
        public static let comm: UInt32 = 0x200
        /// PROC_EVENT_COREDUMP
        public static let coredump: UInt32 = 0x4000_0000
        /// PROC_EVENT_EXIT
        public static let exit: UInt32 = 0x8000_0000
    }
}

/// One decoded struct proc_event.
public struct ProcEvent: Sendable, Equatable {
    /// The CPU that reported it.
    public var cpu: UInt32
    /// When it happened: nanoseconds of CLOCK_MONOTONIC (ktime_get_ns), the same clock as
    /// `WallClock.monotonicNanoseconds()`.
    public var timestamp: UInt64
    public var kind: Kind

    public init(cpu: UInt32 = 0, timestamp: UInt64, kind: Kind) {
        self.cpu = cpu
        self.timestamp = timestamp
        self.kind = kind
    }

    /// The union member selected by `what`. `pid` is a task (thread) id, `tgid` the process id.
    public enum Kind: Sendable, Equatable {
        /// PROC_EVENT_NONE: the kernel's answer to a subscription; `error` 0 means success
        /// (otherwise an errno). It goes to every listener: `answering` (cn_msg.ack − 1, the
        /// request's tag; 0 from `decodeEvent`) tells whose subscription it answers.
        case acknowledgement(error: UInt32, answering: UInt32)
        /// A new task: a process when childPID == childTGID, otherwise a thread of childTGID.
        case fork(parentPID: Int32, parentTGID: Int32, childPID: Int32, childTGID: Int32)
        case exec(pid: Int32, tgid: Int32)
        /// setuid & co.: the new real and effective user ids.
        case uid(pid: Int32, tgid: Int32, real: UInt32, effective: UInt32)
        /// setgid & co.: the new real and effective group ids.
        case gid(pid: Int32, tgid: Int32, real: UInt32, effective: UInt32)
        /// The task's name changed (prctl PR_SET_NAME, or writing /proc/PID/comm).
        case comm(pid: Int32, tgid: Int32, comm: String)
        /// A task ended: the process ended when pid == tgid.
        case exit(pid: Int32, tgid: Int32, exitCode: UInt32, exitSignal: UInt32, parentPID: Int32, parentTGID: Int32)
        /// A kind not decoded further (sid, ptrace, coredump, newer ones).
        case other(what: UInt32)
    }

    /// True for the exit of a process's leader task (pid == tgid), the event that ends a process
    /// for the process table.
    public var isProcessExit: Bool {
        if case .exit(let pid, let tgid, _, _, _, _) = kind { return pid == tgid }
        return false
    }
}

extension UnsafeRawBufferPointer {
    /// A host-order UInt64 at `offset`, from two bounds-checked UInt32 reads; nil when it does
    /// not fit. (proc_event.timestamp_ns: 8-byte aligned in the struct, not in the buffer.)
    fileprivate func hostUInt64(at offset: Int) -> UInt64? {
        guard contains(offset: offset, count: 8),
              let first = hostUInt32(at: offset), let second = hostUInt32(at: offset + 4)
        else { return nil }
        #if _endian(big)
        return UInt64(first) << 32 | UInt64(second)
        #else
        return UInt64(second) << 32 | UInt64(first)
        #endif
    }
}
