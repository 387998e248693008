import Foundation

/// Which process holds an NFLOG group, for error messages and `rules status`.
///
/// The kernel lists bound groups in /proc/net/netfilter/nfnetlink_log by netlink port id; the
/// port id is mapped to a socket inode through /proc/net/netlink, and the inode to the processes
/// whose /proc/PID/fd links point at `socket:[INODE]`. All of it is per network namespace: read
/// it from a thread inside the namespace in question.
public enum NflogGroupHolders {
    /// The process holding `group`, or nil when the group is free or the holder cannot be found.
    public static func holder(of group: UInt16, procRoot: String = "/proc") -> NflogGroupHolder? {
        guard let instances = try? String(contentsOfFile: "\(procRoot)/net/netfilter/nfnetlink_log", encoding: .utf8),
              let instance = parseInstances(instances).first(where: { $0.group == group }) else { return nil }
        let sockets = (try? String(contentsOfFile: "\(procRoot)/net/netlink", encoding: .utf8)).map(parseNetlinkSockets) ?? []
        let inode = sockets.first { $0.protocolNumber == 12 && $0.portID == instance.portID }?.inode
        var holder = NflogGroupHolder(group: group, portID: instance.portID, pid: nil, command: nil)
        if let inode, let pid = processHolding(socketInode: inode, procRoot: procRoot) {
            holder.pid = pid
            holder.command = (try? String(contentsOfFile: "\(procRoot)/\(pid)/comm", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
        }
        return holder
    }

    /// One line of /proc/net/netfilter/nfnetlink_log:
    /// `group portid qlen copy_mode copy_range flush_timeout refcount`, all decimal.
    public struct Instance: Sendable, Equatable {
        public var group: UInt16
        public var portID: UInt32
        public var queued: UInt32
        public var copyMode: UInt8
        public var copyRange: UInt32
        public var flushTimeout: UInt32
    }

    public static func parseInstances(_ text: String) -> [Instance] {
        text.split(separator: "\n").compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, let group = UInt16(fields[0]), let port = UInt32(fields[1]),
                  let queued = UInt32(fields[2]), let mode = UInt8(fields[3]),
                  let range = UInt32(fields[4]), let timeout = UInt32(fields[5]) else { return nil }
            return Instance(group: group, portID: port, queued: queued, copyMode: mode,
                            copyRange: range, flushTimeout: timeout)
        }
    }

    /// One line of /proc/net/netlink: `sk Eth Pid Groups Rmem Wmem Dump Locks Drops Inode`.
    public struct NetlinkSocketEntry: Sendable, Equatable {
        public var protocolNumber: Int
        public var portID: UInt32
        public var drops: UInt64
        public var inode: UInt64
    }

    public static func parseNetlinkSockets(_ text: String) -> [NetlinkSocketEntry] {
        text.split(separator: "\n").dropFirst().compactMap { line in
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 10, let proto = Int(fields[1]), let port = UInt32(fields[2]),
                  let drops = UInt64(fields[8]), let inode = UInt64(fields[9]) else { return nil }
            return NetlinkSocketEntry(protocolNumber: proto, portID: port, drops: drops, inode: inode)
        }
    }

    /// The first process with a descriptor for socket `inode`. Processes that exit while we
    /// look are skipped: a vanished pid is normal.
    static func processHolding(socketInode inode: UInt64, procRoot: String) -> Int32? {
        let target = "socket:[\(inode)]"
        let files = FileManager.default
        guard let entries = try? files.contentsOfDirectory(atPath: procRoot) else { return nil }
        for entry in entries {
            guard let pid = Int32(entry) else { continue }
            let fdDirectory = "\(procRoot)/\(entry)/fd"
            guard let fds = try? files.contentsOfDirectory(atPath: fdDirectory) else { continue }
            for fd in fds where (try? files.destinationOfSymbolicLink(atPath: "\(fdDirectory)/\(fd)")) == target {
                return pid
            }
        }
        return nil
    }
}

public struct NflogGroupHolder: Sendable, Equatable, CustomStringConvertible {
    public var group: UInt16
    public var portID: UInt32
    public var pid: Int32?
    public var command: String?

    public var description: String {
        guard let pid else { return "netlink port \(portID)" }
        return "pid \(pid)" + (command.map { " \($0)" } ?? "")
    }
}
