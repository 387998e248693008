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
    /// The directory scan is repeated at most this often (nanoseconds): a program installed or
    /// upgraded since is found then, and a name that is nowhere costs one scan a minute.
    static let rescanInterval: UInt64 = 60_000_000_000
    /// Entries kept before the index starts over (a bound, never reached by real hosts).
    static let capacity = 65_536

    private let directories: [String]
    /// stat(2), following links: for the paths /proc gave (already resolved).
    private let identify: (String) -> FileIdentity?
    /// lstat(2) of regular files only: for the directory scan, so that a link's name (python3 →
    /// python3.11, apropos → whatis) never stands for the file /proc would have named.
    private let identifyRegular: (String) -> FileIdentity?
    private var paths: [FileIdentity: String] = [:]
    /// Paths already looked at, whatever they turned out to be (until the next scan).
    private var looked: Set<String> = []
    private var lastScan: UInt64?
    /// stat calls made (for tests and the curious).
    private(set) var lookups = 0

    init(directories: [String] = ExecutableIndex.defaultDirectories,
         identify: @escaping (String) -> FileIdentity? = { Directories.fileIdentity($0).map(FileIdentity.init) },
         identifyRegular: @escaping (String) -> FileIdentity? = { Directories.regularFileIdentity($0).map(FileIdentity.init) }) {
        self.directories = directories
        self.identify = identify
        self.identifyRegular = identifyRegular
    }

    /// The path of the file `identity`, or nil when neither `known()` (paths the caller has seen
    /// programs run from, asked only when the index does not know the file) nor the program
    /// directories hold it. `now`: monotonic ns. A remembered path is checked again before it is
    /// given: a file replaced since (an upgrade) frees its inode, which another file may get.
    mutating func path(of identity: FileIdentity, known: () -> [String], now: UInt64) -> String? {
        if let path = paths[identity] {
            lookups += 1
            if identify(path) == identity { return path }
            paths[identity] = nil
            looked.remove(path)
        }
        for path in known() where look(at: path, identify) == identity { return path }
        if lastScan.map({ now &- $0 >= Self.rescanInterval }) ?? true { scanDirectories(now: now) }
        return paths[identity]
    }

    /// Records the files of `paths` (those of running programs: the names /proc gave them).
    mutating func record(_ paths: [String]) {
        for path in paths { _ = look(at: path, identify) }
    }

    /// Records every regular file of the program directories (a few thousand lstat calls,
    /// milliseconds): every file, not up to one wanted, so that the next miss within the minute,
    /// for another program, finds it recorded; each looked at again, so that an upgraded one is
    /// found under its new inode. The monitor runs it once at start, off the packet path.
    mutating func scanDirectories(now: UInt64) {
        lastScan = now
        // The first name of a file in the scan stays: /usr/bin/ping, not the /bin/ping that a
        // merged /usr gives the same file, scanned later (and not what /proc says).
        var named: Set<FileIdentity> = []
        for directory in directories {
            guard let names = try? FileManager.default.contentsOfDirectory(atPath: directory) else { continue }
            for name in names.sorted() {
                let path = "\(directory)/\(name)"
                looked.remove(path)
                guard let identity = look(at: path, identifyRegular, recording: false) else { continue }
                if named.insert(identity).inserted { paths[identity] = path }
            }
        }
    }

    /// The identity of `path`, recorded unless `recording` is false; nil for a path looked at
    /// before (already recorded) or unreadable. A recorded name replaces the file's earlier one:
    /// /proc's name, or after an upgrade the path whose inode this now is.
    private mutating func look(at path: String, _ identify: (String) -> FileIdentity?,
                               recording: Bool = true) -> FileIdentity? {
        guard looked.insert(path).inserted else { return nil }
        if looked.count > Self.capacity {
            looked = [path]
            paths = [:]
        }
        lookups += 1
        guard let identity = identify(path) else { return nil }
        if recording { paths[identity] = path }
        return identity
    }
}

extension FileIdentity {
    init(_ pair: (device: UInt64, inode: UInt64)) {
        self.init(device: pair.device, inode: pair.inode)
    }
}
