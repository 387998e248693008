// inotify: directory change notification through a file descriptor, so a watcher can share one
// poll(2) with netlink sockets. This file is the only caller of inotify_init1, inotify_add_watch,
// inotify_rm_watch and read(2) on an inotify descriptor.
//
// One read returns whole events, back to back (struct inotify_event, host byte order):
//
//   0      4      8        12     16
//   +------+------+--------+------+---------------------------+
//   | wd   | mask | cookie | len  | name[len] (NUL-padded)    |  next event at 16 + len
//   | i32  | u32  | u32    | u32  |  absent when len == 0     |
//   +------+------+--------+------+---------------------------+
//
// The kernel never splits an event across reads (EINVAL when the buffer is too small for the
// next one), but the parser still checks every length against the bytes received.
import CNetfilter
import Glibc

/// Event bits of an inotify watch or event (the IN_* constants of <sys/inotify.h>).
public struct InotifyMask: OptionSet, Sendable, Hashable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }

    /// A file or directory was created in the watched directory. IN_CREATE.
    public static let create = InotifyMask(rawValue: 0x0000_0100)
    /// A file or directory was removed from the watched directory. IN_DELETE.
    public static let delete = InotifyMask(rawValue: 0x0000_0200)
    /// The watched directory itself was removed. IN_DELETE_SELF.
    public static let deleteSelf = InotifyMask(rawValue: 0x0000_0400)
    /// The watched directory itself was moved. IN_MOVE_SELF.
    public static let moveSelf = InotifyMask(rawValue: 0x0000_0800)
    /// An entry was renamed away from the watched directory. IN_MOVED_FROM.
    public static let movedFrom = InotifyMask(rawValue: 0x0000_0040)
    /// An entry was renamed into the watched directory. IN_MOVED_TO.
    public static let movedTo = InotifyMask(rawValue: 0x0000_0080)
    /// The filesystem holding the watched object was unmounted. IN_UNMOUNT.
    public static let unmount = InotifyMask(rawValue: 0x0000_2000)
    /// Events were dropped because the queue was full (wd is -1). IN_Q_OVERFLOW.
    public static let queueOverflow = InotifyMask(rawValue: 0x0000_4000)
    /// The watch is gone (removed, or its object deleted or unmounted). IN_IGNORED.
    public static let ignored = InotifyMask(rawValue: 0x0000_8000)
    /// Watch only if the path is a directory (add-watch flag). IN_ONLYDIR.
    public static let onlyDirectory = InotifyMask(rawValue: 0x0100_0000)
    /// Do not follow a symbolic link at the path (add-watch flag). IN_DONT_FOLLOW.
    public static let dontFollow = InotifyMask(rawValue: 0x0200_0000)
    /// The event's subject is a directory. IN_ISDIR.
    public static let isDirectory = InotifyMask(rawValue: 0x4000_0000)
}

/// One inotify event, copied out of the read buffer.
public struct InotifyEvent: Sendable, Equatable {
    /// The watch descriptor the event belongs to; -1 for a queue overflow.
    public var watch: Int32
    public var mask: UInt32
    /// Pairs IN_MOVED_FROM with IN_MOVED_TO; 0 for other events.
    public var cookie: UInt32
    /// The entry's name inside the watched directory; empty for events about the watch itself.
    /// Bytes that are not UTF-8 are replaced (U+FFFD).
    public var name: String

    public init(watch: Int32, mask: UInt32, cookie: UInt32 = 0, name: String) {
        self.watch = watch
        self.mask = mask
        self.cookie = cookie
        self.name = name
    }

    public var events: InotifyMask { InotifyMask(rawValue: mask) }
    /// The kernel dropped events: whatever the consumer tracks must be re-read from scratch.
    public var isQueueOverflow: Bool { events.contains(.queueOverflow) }
}

/// An inotify instance: non-blocking and close-on-exec; closed by `close()`.
///
/// Not thread-safe: one owner adds watches and reads events.
public final class Inotify: @unchecked Sendable {
    /// The fixed part of struct inotify_event: wd, mask, cookie, len.
    public static let headerSize = 16
    /// Room for many events of the longest name (NAME_MAX 255 + NUL) per read.
    public static let readBufferSize = 64 * 1024

    public let descriptor: Int32
    private var buffer: [UInt8]

    public init() throws(SystemError) {
        // IN_NONBLOCK | IN_CLOEXEC (the same values as O_NONBLOCK | O_CLOEXEC).
        let fd = inotify_init1(Int32(O_NONBLOCK | O_CLOEXEC))
        guard fd >= 0 else {
            throw SystemError(code: Errno.current, operation: "create inotify instance (inotify_init1)")
        }
        descriptor = fd
        buffer = [UInt8](repeating: 0, count: Self.readBufferSize)
    }

    /// Watches `path` for `events`; returns the watch descriptor that events will carry.
    /// Watching the same inode again returns the same descriptor (its mask is replaced).
    /// Throws ENOENT/ENOTDIR when the path vanished, ENOSPC when fs.inotify.max_user_watches is reached.
    public func addWatch(path: String, events: InotifyMask) throws(SystemError) -> Int32 {
        try retryingInterrupts("watch \(path) (inotify_add_watch)") {
            inotify_add_watch(descriptor, path, events.rawValue)
        }
    }

    /// Stops a watch. EINVAL (the watch is already gone, e.g. its directory was removed) is not an error.
    public func removeWatch(_ watch: Int32) throws(SystemError) {
        let result = inotify_rm_watch(descriptor, watch)
        if result < 0 {
            let code = Errno.current
            if code != EINVAL { throw SystemError(code: code, operation: "remove inotify watch \(watch)") }
        }
    }

    /// Reads the events that are ready; empty when none are (never blocks).
    /// Malformed trailing bytes (impossible from a correct kernel) end the batch.
    public func readEvents() throws(SystemError) -> [InotifyEvent] {
        var events: [InotifyEvent] = []
        while true {
            let count: Int
            do {
                count = try retryingInterrupts("read inotify events") {
                    buffer.withUnsafeMutableBytes { read(descriptor, $0.baseAddress, $0.count) }
                }
            } catch where error.code == EAGAIN {
                return events
            }
            guard count > 0 else { return events }
            let batch = buffer.withUnsafeBytes { Self.parseEvents(UnsafeRawBufferPointer(rebasing: $0[0..<min(count, $0.count)])) }
            events.append(contentsOf: batch.events)
            // A short read means the queue is drained; don't spend another syscall to learn that.
            if count < buffer.count / 2 { return events }
        }
    }

    /// Decodes the events in `bytes`. Stops at the first event whose header or name does not fit
    /// (`complete` is then false); never reads outside `bytes`.
    public static func parseEvents(_ bytes: UnsafeRawBufferPointer) -> (events: [InotifyEvent], complete: Bool) {
        var events: [InotifyEvent] = []
        var offset = 0
        while offset < bytes.count {
            guard bytes.count - offset >= headerSize else { return (events, false) }
            let watch = Int32(bitPattern: bytes.loadUnaligned(fromByteOffset: offset, as: UInt32.self))
            let mask = bytes.loadUnaligned(fromByteOffset: offset + 4, as: UInt32.self)
            let cookie = bytes.loadUnaligned(fromByteOffset: offset + 8, as: UInt32.self)
            guard let nameLength = Int(exactly: bytes.loadUnaligned(fromByteOffset: offset + 12, as: UInt32.self)),
                  nameLength <= bytes.count - offset - headerSize else { return (events, false) }
            let nameStart = offset + headerSize
            let nameBytes = UnsafeRawBufferPointer(rebasing: bytes[nameStart..<(nameStart + nameLength)])
            let end = nameBytes.firstIndex(of: 0) ?? nameBytes.count
            let name = String(decoding: UnsafeRawBufferPointer(rebasing: nameBytes[0..<end]), as: UTF8.self)
            events.append(InotifyEvent(watch: watch, mask: mask, cookie: cookie, name: name))
            offset = nameStart + nameLength
        }
        return (events, true)
    }

    public func close() { Glibc.close(descriptor) }
}
