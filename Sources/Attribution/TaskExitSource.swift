// Exit records (taskstats): what program each task ran when it exited, sent by the kernel before
// the task's /proc/PID/exe stops answering. The process table takes from them the exe and comm
// of a program whose exec it read too late (see `ProcessTable.recordExits`).
//
// Not thread-safe: drained under the same lock as the process events (`OwnerResolution`).
import NetfilterSystem
import NetlinkWire
import Foundation  // errno names, the CPU list file

public final class TaskExitSource {
    /// The socket to poll for readability.
    public var descriptor: Int32 { socket.descriptor }
    /// Times the kernel dropped records because our buffer was full (ENOBUFS): some exits of that
    /// moment are not known, which costs only names that were missed anyway.
    public private(set) var overruns = 0
    /// Records that could not be decoded (counted, skipped).
    public private(set) var malformed = 0

    private let socket: NetlinkSocket
    private let familyID: UInt16
    private let cpuList: String
    private var buffer: UnsafeMutableRawBufferPointer

    /// Why exit records are unavailable, in one line for the user.
    public struct Unavailable: Error, CustomStringConvertible {
        public var description: String
    }

    /// Opens a generic netlink socket, finds the taskstats family and registers for every
    /// possible CPU, waiting up to `timeoutMilliseconds` for each answer. Must run in the initial
    /// network namespace (the family answers only there), like the proc connector.
    public init(receiveBufferBytes: Int = 4 << 20, timeoutMilliseconds: Int32 = 1000,
                cpuListFile: String = "/sys/devices/system/cpu/possible") throws(Unavailable) {
        let opened: NetlinkSocket
        do {
            opened = try NetlinkSocket(protocol: Taskstats.netlinkProtocol)
        } catch {
            throw Self.unavailable("open a generic netlink socket: \(Errno.describe(error.code))")
        }
        buffer = .allocateForKernelCopies(byteCount: 64 * 1024)
        do throws(Unavailable) {
            // Every exit on the machine, threads included, is a record of ~450 bytes: a burst of
            // short-lived threads fills the default buffer (~200 KiB) quickly.
            _ = try? opened.setReceiveBufferSize(receiveBufferBytes, force: true)
            guard case .family(let id)? = try Self.ask(opened, Taskstats.familyRequest(sequence: 1, portID: opened.portID),
                                                      buffer: buffer, timeoutMilliseconds: timeoutMilliseconds) else {
                throw Self.unavailable("no taskstats family: the kernel lacks CONFIG_TASKSTATS, or this is not the initial network namespace")
            }
            let cpus = Self.cpuList(cpuListFile)
            let registration = Taskstats.registration(familyID: id, cpuList: cpus, sequence: 2, portID: opened.portID)
            switch try Self.ask(opened, registration, buffer: buffer, timeoutMilliseconds: timeoutMilliseconds) {
            case .error(errno: 0, _)?:
                break
            case .error(let code, _)?:
                let cause = switch code {
                case EPERM, EACCES: "needs CAP_NET_ADMIN (run as root)"
                case EINVAL: "refused outside the initial user and pid namespaces, or for CPUs that cannot exist"
                default: Errno.describe(code)
                }
                throw Self.unavailable("register for exit records of CPUs \(cpus): \(cause)")
            default:
                // It may have registered all the same: undo it, so the kernel does not keep
                // sending to a socket nobody reads until a send fails.
                _ = try? opened.send(Taskstats.deregistration(familyID: id, cpuList: cpus, sequence: 3, portID: opened.portID))
                throw Self.unavailable("the kernel did not answer the exit-record registration")
            }
            familyID = id
            cpuList = cpus
        } catch {
            opened.close()
            buffer.deallocate()
            throw error
        }
        socket = opened
    }

    deinit {
        _ = try? socket.send(Taskstats.deregistration(familyID: familyID, cpuList: cpuList, sequence: 3,
                                                       portID: socket.portID))
        socket.close()
        buffer.deallocate()
    }

    /// Every record waiting now (never blocks): exits of processes (thread-group leaders, or
    /// any thread when the kernel does not say the group), in the order the kernel sent them.
    public func read() -> [TaskExit] {
        var exits: [TaskExit] = []
        var undecodable = 0
        let losses = socket.drainWaiting(into: buffer) { bytes in
            Taskstats.forEachExit(in: bytes, familyID: familyID) { result in
                switch result {
                case .success(let exit):
                    // A thread's exit says nothing a process's does not: same program.
                    if exit.processID == nil || exit.processID == exit.threadID { exits.append(exit) }
                case .failure:
                    undecodable += 1
                }
            }
        }
        malformed += undecodable + losses.unreadable
        overruns += losses.overruns
        return exits
    }

    /// Sends `request` and returns the first reply to it, or nil when none came in time.
    private static func ask(_ socket: NetlinkSocket, _ request: [UInt8], buffer: UnsafeMutableRawBufferPointer,
                            timeoutMilliseconds: Int32) throws(Unavailable) -> Taskstats.Reply? {
        do {
            try socket.send(request)
        } catch {
            throw unavailable("ask the generic netlink controller: \(Errno.describe(error.code))")
        }
        let deadline = WallClock.monotonicNanoseconds() + UInt64(max(0, timeoutMilliseconds)) * 1_000_000
        while waitReadable(socket.descriptor, until: deadline) {
            guard case .bytes(let count)? = try? socket.receive(into: buffer, nonBlocking: true),
                  let bytes = UnsafeRawBufferPointer(buffer).subrange(at: 0, count: count) else { continue }
            do {
                if let reply = try Taskstats.replies(in: bytes).first { return reply }
            } catch {
                throw unavailable("a malformed answer from the kernel (\(error.reason))")
            }
        }
        return nil
    }

    /// The kernel's list of possible CPUs ("0-1"); registering for CPUs that come online later
    /// needs them in the list, and the kernel refuses CPUs that cannot exist.
    static func cpuList(_ file: String) -> String {
        let text = (try? String(contentsOfFile: file, encoding: .utf8))?
            .trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        if !text.isEmpty, text.allSatisfy({ $0.isNumber || $0 == "-" || $0 == "," }) { return text }
        let count = max(1, ProcessInfo.processInfo.processorCount)
        return count == 1 ? "0" : "0-\(count - 1)"
    }

    private static func unavailable(_ what: String) -> Unavailable {
        Unavailable(description: "exit records unavailable (\(what)): a program that exits before nfowner reads its exec is named by its pid only")
    }
}
