// Names an executable from its device and inode — all an exit record says of the program that
// exited (see `TaskExitSource`) — for a program whose /proc/PID/exe was gone before nfowner
// read it. Built lazily, only when such a program must be named: first from the executables
// the process table already knows (a program that runs often, like a shell loop's ping, was read
// in time before), then, at most once a minute, from the usual program directories.
import NetfilterSystem
import NetlinkWire
import Foundation  // directory listings

struct ExecutableIndex {
    /// Searched when no known executable matches: where programs that run briefly usually live.
    static let defaultDirectories = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]
    /// The directory scan is repeated at most this often (nanoseconds): a program installed
    /// since is found then, and a name that is nowhere costs one scan a minute.
    static let rescanInterval: UInt64 = 60_000_000_000
    /// Entries kept before the index starts over (a bound, never reached by real hosts).
    static let capacity = 65_536

    private let directories: [String]
    private let identify: (String) -> FileIdentity?
    private var paths: [FileIdentity: String] = [:]
    /// Paths already looked at, whatever they turned out to be.
    private var looked: Set<String> = []
    private var lastScan: UInt64?
    /// stat calls made (for tests and the curious).
    private(set) var lookups = 0

    init(directories: [String] = ExecutableIndex.defaultDirectories,
         identify: @escaping (String) -> FileIdentity? = { Directories.fileIdentity($0).map(FileIdentity.init) }) {
        self.directories = directories
        self.identify = identify
    }

    /// The path of the file `identity`, or nil when neither `known()` (paths the caller has seen
    /// programs run from, asked only when the index does not know the file) nor the program directories hold it. `now`: monotonic ns.
    mutating func path(of identity: FileIdentity, known: () -> [String], now: UInt64) -> String? {
        if let path = paths[identity] { return path }
        for path in known() where look(at: path) == identity { return path }
        if lastScan.map({ now &- $0 >= Self.rescanInterval }) ?? true { scanDirectories(now: now) }
        return paths[identity]
    }

    /// Records the files of `paths` (those of running programs: the names /proc gave them).
    mutating func record(_ paths: [String]) {
        for path in paths { _ = look(at: path) }
    }

    /// Records every file of the program directories (a few thousand stat calls, milliseconds):
    /// every file, not up to one wanted, so that the next miss within the minute, for another
    /// program, finds it recorded. The monitor runs it once at start, off the packet path.
    mutating func scanDirectories(now: UInt64) {
        lastScan = now
        for directory in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names.sorted() { _ = look(at: "\(directory)/\(name)") }
        }
    }

    /// The identity of `path`, recorded; nil for a path looked at before (already recorded) or
    /// unreadable.
    private mutating func look(at path: String) -> FileIdentity? {
        guard looked.insert(path).inserted else { return nil }
        if looked.count > Self.capacity {
            looked = [path]
            paths = [:]
        }
        lookups += 1
        guard let identity = identify(path) else { return nil }
        // The first name of a file stays (/usr/bin/ping over a /bin/ping that is the same file
        // through a merged /usr): it is the one the table read from /proc earlier.
        if paths[identity] == nil { paths[identity] = path }
        return identity
    }
}

extension FileIdentity {
    init(_ pair: (device: UInt64, inode: UInt64)) {
        self.init(device: pair.device, inode: pair.inode)
    }
}
