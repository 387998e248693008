// Exit records from the kernel's taskstats interface (generic netlink family "TASKSTATS").
// All fields host order.
//
// Why nfowner listens: the kernel sends a task's record from do_exit() before it releases the
// task's memory map — before /proc/PID/exe stops answering — so a program that exits before its
// exec event was read still leaves its name (ac_comm) and its executable's device and inode
// (ac_exe_dev, ac_exe_inode: /proc/PID/exe's file; the device is its superblock's, which is what
// stat(2) reports except on file systems that give each subvolume a device of its own, such as
// btrfs, where the two never match and no path is found).
//
// Every message is a netlink message carrying a genlmsghdr and attributes:
//
//   0          16             20
//   +----------+--------------+----------------------------------------------+
//   | nlmsghdr | cmd u8 | ver u8 | reserved u16 | attributes …                  |
//   +----------+--------------+----------------------------------------------+
//
// 1. Family lookup (to the controller, nlmsg_type GENL_ID_CTRL = 16): cmd CTRL_CMD_GETFAMILY,
//    attribute CTRL_ATTR_FAMILY_NAME "TASKSTATS\0"; the answer (cmd CTRL_CMD_NEWFAMILY) carries
//    CTRL_ATTR_FAMILY_ID (u16), the nlmsg_type of every taskstats message.
// 2. Registration (nlmsg_type = the family id): cmd TASKSTATS_CMD_GET, attribute
//    TASKSTATS_CMD_ATTR_REGISTER_CPUMASK with a CPU list ("0-1\0"); needs CAP_NET_ADMIN and the
//    initial user and pid namespaces (EINVAL elsewhere); the family exists only in the initial
//    network namespace (ENOENT elsewhere). Answered with NLMSG_ERROR (0 = ACK).
// 3. Exit records (from the kernel, one per exiting task on a registered CPU): cmd
//    TASKSTATS_CMD_NEW, attribute TASKSTATS_TYPE_AGGR_PID (nested: TASKSTATS_TYPE_PID u32, then
//    TASKSTATS_TYPE_STATS: struct taskstats), and for the last task of a group that had more than
//    one thread also TASKSTATS_TYPE_AGGR_TGID (the group's summed delays; no name, not read here).
//    A padding attribute (TASKSTATS_TYPE_NULL) may precede the struct. The kernel does not set
//    NLA_F_NESTED on the nests; either way is read.
//
// struct taskstats is versioned and only grows at its end; the fields read here:
//
//   offset  0  version u16          offset 128  ac_pid u32 (the thread), 132 ac_ppid u32
//   offset 80  ac_comm[32]          offset 368  ac_tgid u32 (v12+; the process)
//   offset 384 ac_exe_dev u64 (v12+) offset 392 ac_exe_inode u64 (v12+; both 0 for kernel threads)

import BinaryParsing

/// Constants and codec of generic netlink's controller and of the taskstats family.
public enum Taskstats {
    /// The netlink protocol of generic netlink. The kernel constant is NETLINK_GENERIC.
    public static let netlinkProtocol: Int32 = 16
    /// The family's name, as the controller knows it. TASKSTATS_GENL_NAME.
    public static let familyName = "TASKSTATS"
    /// Size of struct genlmsghdr.
    public static let genericHeaderSize = 4
    /// The first struct taskstats version with ac_tgid and ac_exe_dev/ac_exe_inode.
    public static let executableVersion: UInt16 = 12

    enum Controller {
        /// nlmsg_type of the controller. GENL_ID_CTRL.
        static let type: UInt16 = 16
        /// CTRL_CMD_GETFAMILY
        static let getFamily: UInt8 = 3
        /// CTRL_ATTR_FAMILY_ID (u16)
        static let familyIDAttribute: UInt16 = 1
        /// CTRL_ATTR_FAMILY_NAME (NUL-terminated string)
        static let familyNameAttribute: UInt16 = 2
    }

    enum Command {
        /// TASKSTATS_CMD_GET: the registration.
        static let get: UInt8 = 1
        /// TASKSTATS_CMD_NEW: an exit record.
        static let new: UInt8 = 2
    }

    enum Attribute {
        /// TASKSTATS_CMD_ATTR_REGISTER_CPUMASK
        static let registerCPUMask: UInt16 = 3
        /// TASKSTATS_CMD_ATTR_DEREGISTER_CPUMASK
        static let deregisterCPUMask: UInt16 = 4
        /// TASKSTATS_TYPE_PID
        static let pid: UInt16 = 1
        /// TASKSTATS_TYPE_STATS
        static let stats: UInt16 = 3
        /// TASKSTATS_TYPE_AGGR_PID
        static let aggregatePID: UInt16 = 4
    }

    enum StatsOffset {
        static let comm = 80
        static let commLength = 32
        static let pid = 128
        static let ppid = 132
        static let tgid = 368
        static let exeDevice = 384
        static let exeInode = 392
    }

    /// Asks the controller for the family's id (its answer: `Reply.family` from `replies(in:)`).
    public static func familyRequest(sequence: UInt32, portID: UInt32 = 0) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: Controller.type, flags: [.request], sequence: sequence, portID: portID)
        appendGenericHeader(&writer, command: Controller.getFamily, version: 1)
        writer.appendAttribute(type: Controller.familyNameAttribute, Array(familyName.utf8) + [0])
        return writer.finish()
    }

    /// Starts exit records for the CPUs of `cpuList` (the kernel's list syntax: "0-3,6") to the
    /// sending socket. Asks for an acknowledgement.
    public static func registration(familyID: UInt16, cpuList: String, sequence: UInt32, portID: UInt32 = 0) -> [UInt8] {
        cpuMaskRequest(Attribute.registerCPUMask, familyID: familyID, cpuList: cpuList, sequence: sequence, portID: portID)
    }

    /// Stops them (the kernel would drop a closed socket's registration only when a send to it
    /// fails).
    public static func deregistration(familyID: UInt16, cpuList: String, sequence: UInt32, portID: UInt32 = 0) -> [UInt8] {
        cpuMaskRequest(Attribute.deregisterCPUMask, familyID: familyID, cpuList: cpuList, sequence: sequence, portID: portID)
    }

    private static func cpuMaskRequest(_ attribute: UInt16, familyID: UInt16, cpuList: String, sequence: UInt32,
                                       portID: UInt32) -> [UInt8] {
        var writer = NetlinkMessageWriter(type: familyID, flags: [.request, .ack], sequence: sequence, portID: portID)
        appendGenericHeader(&writer, command: Command.get, version: 1)
        writer.appendAttribute(type: attribute, Array(cpuList.utf8) + [0])
        return writer.finish()
    }

    private static func appendGenericHeader(_ writer: inout NetlinkMessageWriter, command: UInt8, version: UInt8) {
        writer.appendHost(command)
        writer.appendHost(version)
        writer.appendHost(UInt16(0))
    }

    /// What a reply to a request holds.
    public enum Reply: Sendable, Equatable {
        /// The controller's answer to `familyRequest`.
        case family(id: UInt16)
        /// NLMSG_ERROR: 0 is an acknowledgement, else a positive errno (ENOENT: no such family).
        case error(errno: Int32, sequence: UInt32)
    }

    /// The replies in one receive buffer, in order; messages of other types are skipped.
    /// Throws on a malformed message (framing, a short header, a family answer without an id).
    public static func replies(in buffer: UnsafeRawBufferPointer) throws(NetlinkWireError) -> [Reply] {
        var found: [Reply] = []
        var messages = MessageCursor(buffer: buffer)
        while case let next? = messages.next() {
            let message: MessageCursor.Message
            switch next {
            case .failure(let error): throw error
            case .success(let found): message = found
            }
            switch message.header.type {
            case NetlinkMessageType.error:
                guard let errno = message.errorNumber else {
                    throw NetlinkWireError(.invalidErrorCode, "NLMSG_ERROR without a valid error code", offset: message.offset)
                }
                found.append(.error(errno: errno, sequence: message.header.sequence))
            case Controller.type:
                let area = try attributes(of: message)
                var cursor = AttributeCursor(area: area, baseOffset: message.offset + attributesStart)
                var id: UInt16?
                while let attribute = try cursor.next() {
                    if attribute.type == Controller.familyIDAttribute { id = attribute.value.hostUInt16(at: 0) }
                }
                guard let id else {
                    throw NetlinkWireError(.missingAttribute, "the controller's answer has no family id", offset: message.offset)
                }
                found.append(.family(id: id))
            default:
                continue
            }
        }
        return found
    }

    private static let attributesStart = NetlinkMessageHeader.size + genericHeaderSize

    private static func attributes(of message: MessageCursor.Message) throws(NetlinkWireError) -> UnsafeRawBufferPointer {
        guard let area = message.bytes.suffix(from: attributesStart) else {
            throw NetlinkWireError(.truncatedMessage,
                                   "generic netlink message of \(message.bytes.count) bytes has no genlmsghdr",
                                   offset: message.offset)
        }
        return area
    }

    /// Calls `body` with each exit record of family `familyID` in one receive buffer, or with the
    /// error of a record that could not be decoded. Never traps; after a bad nlmsg_len the rest of
    /// the buffer is unreadable and dropped. Messages of other types and commands are skipped.
    public static func forEachExit(in buffer: UnsafeRawBufferPointer, familyID: UInt16,
                                   _ body: (Result<TaskExit, NetlinkWireError>) -> Void) {
        var messages = MessageCursor(buffer: buffer)
        while case let next? = messages.next() {
            let message: MessageCursor.Message
            switch next {
            case .failure(let error):
                body(.failure(error))
                return
            case .success(let found):
                message = found
            }
            guard message.header.type == familyID,
                  message.bytes.byte(at: NetlinkMessageHeader.size) == Command.new else { continue }
            do throws(NetlinkWireError) {
                if let exit = try decodeExit(message) { body(.success(exit)) }
            } catch {
                body(.failure(error))
            }
        }
    }

    /// The AGGR_PID part of one TASKSTATS_CMD_NEW message; nil when it has none.
    private static func decodeExit(_ message: MessageCursor.Message) throws(NetlinkWireError) -> TaskExit? {
        var cursor = AttributeCursor(area: try attributes(of: message), baseOffset: message.offset + attributesStart)
        while let outer = try cursor.next() {
            guard outer.type == Attribute.aggregatePID else { continue }
            var inner = AttributeCursor(area: outer.value, baseOffset: outer.offset + NetlinkAttribute.headerSize)
            var stats: AttributeCursor.Attribute?
            while let attribute = try inner.next() {
                if attribute.type == Attribute.stats { stats = attribute }
            }
            guard let stats else {
                throw NetlinkWireError(.missingAttribute, "an exit record without its struct taskstats", offset: outer.offset)
            }
            return try decodeStats(stats.value, offset: stats.offset)
        }
        return nil
    }

    /// Decodes the fields of a struct taskstats that name a task. Throws `.truncatedMessage`
    /// when the struct is shorter than its own version says it is (or than its oldest layout).
    static func decodeStats(_ stats: UnsafeRawBufferPointer, offset: Int) throws(NetlinkWireError) -> TaskExit {
        guard let version = stats.hostUInt16(at: 0), let thread = stats.hostUInt32(at: StatsOffset.pid),
              let parent = stats.hostUInt32(at: StatsOffset.ppid),
              let commBytes = stats.subrange(at: StatsOffset.comm, count: StatsOffset.commLength)
        else {
            throw NetlinkWireError(.truncatedMessage, "struct taskstats of \(stats.count) bytes lacks its pid and comm",
                                   offset: offset)
        }
        let comm = String(decoding: commBytes.prefix { $0 != 0 }, as: UTF8.self)
        // 0: the kernel could not say (the task was no longer attached to its parent).
        let parentID = parent == 0 ? nil : Int32(bitPattern: parent)
        guard version >= executableVersion else {
            return TaskExit(threadID: Int32(bitPattern: thread), processID: nil, comm: comm, executable: nil,
                            parentID: parentID)
        }
        guard let process = stats.hostUInt32(at: StatsOffset.tgid), let device = stats.hostUInt64(at: StatsOffset.exeDevice),
              let inode = stats.hostUInt64(at: StatsOffset.exeInode)
        else {
            throw NetlinkWireError(.truncatedMessage,
                                   "struct taskstats version \(version) of \(stats.count) bytes lacks its tgid and executable",
                                   offset: offset)
        }
        let executable = device == 0 && inode == 0 ? nil : FileIdentity(device: device, inode: inode)
        return TaskExit(threadID: Int32(bitPattern: thread), processID: Int32(bitPattern: process), comm: comm,
                        executable: executable, parentID: parentID)
    }
}

/// A file as stat(2) names it: st_dev and st_ino.
public struct FileIdentity: Sendable, Hashable {
    public var device: UInt64
    public var inode: UInt64

    public init(device: UInt64, inode: UInt64) {
        self.device = device
        self.inode = inode
    }
}

/// One task's exit record: which program it ran when it exited.
public struct TaskExit: Sendable, Equatable {
    /// The task (thread) id. For a single-threaded process, its pid.
    public var threadID: Int32
    /// The process (thread group) id; nil from kernels older than struct taskstats version 12.
    public var processID: Int32?
    /// The task's comm at exit (a thread's own name for a thread).
    public var comm: String
    /// /proc/PID/exe's file at exit; nil for kernel threads and old kernels.
    public var executable: FileIdentity?
    /// The parent process at exit (ac_ppid); nil when the kernel gave none.
    public var parentID: Int32?

    public init(threadID: Int32, processID: Int32?, comm: String, executable: FileIdentity?, parentID: Int32? = nil) {
        self.threadID = threadID
        self.processID = processID
        self.comm = comm
        self.executable = executable
        self.parentID = parentID
    }
}
