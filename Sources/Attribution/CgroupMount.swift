// Where the cgroup2 hierarchy is mounted, and how its paths are spelled for each consumer.
//
// A /proc/self/mountinfo line (proc(5)); fields are separated by single spaces, and spaces,
// tabs, newlines and backslashes inside fields are written as octal escapes (\040 \011 \012 \134):
//
//   41 31 0:38 / /sys/fs/cgroup/unified rw,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate
//   (1)(2) (3) (4)  (5) mount point      (6) options (7)... (8) (9) type (10) source (11) super options
//
// (7) is zero or more optional fields, ended by the "-" separator (8); the filesystem type follows it.
import Foundation

/// The cgroup2 mount. Three spellings of one cgroup matter:
/// - the hierarchy path, as in /proc/PID/cgroup and in nfowner's output: "/system.slice/nginx.service";
/// - the nft path: nft resolves `socket cgroupv2 … "P"` as stat("/sys/fs/cgroup/" + P), whatever
///   the mount point is;
/// - the iptables path: `-m cgroup --path P` is resolved by the kernel from the cgroup2 root.
public struct CgroupMount: Sendable, Equatable {
    /// The directory nft prefixes to every `socket cgroupv2` path (hard-coded in nft).
    public static let nftBase = "/sys/fs/cgroup"

    /// Absolute mount point, without a trailing slash, e.g. "/sys/fs/cgroup/unified".
    public var mountPoint: String
    /// Field 4: the hierarchy directory mounted there; "/" except for bind mounts of a subtree or
    /// mounts made inside a cgroup namespace.
    public var root: String

    public init(mountPoint: String, root: String = "/") {
        var trimmed = mountPoint
        while trimmed.count > 1, trimmed.hasSuffix("/") { trimmed.removeLast() }
        self.mountPoint = trimmed
        self.root = root
    }

    /// The cgroup2 mount described by `mountinfo` (the text of /proc/self/mountinfo), or nil when
    /// there is none. With several, the one nft can reach most simply wins: /sys/fs/cgroup, then
    /// /sys/fs/cgroup/unified (hybrid systemd layout), then the first listed.
    public static func parse(mountinfo: String) -> CgroupMount? {
        var found: [CgroupMount] = []
        for line in mountinfo.split(separator: "\n", omittingEmptySubsequences: true) {
            let fields = line.split(separator: " ", omittingEmptySubsequences: false)
            // Fields 1–6, the separator and at least the filesystem type.
            guard fields.count >= 8,
                  let separator = fields[6...].firstIndex(of: "-"),
                  separator + 1 < fields.count,
                  fields[separator + 1] == "cgroup2" else { continue }
            found.append(CgroupMount(mountPoint: unescape(fields[4]), root: unescape(fields[3])))
        }
        return found.first { $0.mountPoint == nftBase }
            ?? found.first { $0.mountPoint == nftBase + "/unified" }
            ?? found.first
    }

    /// The cgroup2 mount of this process, from /proc/self/mountinfo (or `mountinfoPath`).
    /// Throws `.noCgroup2Mount` when there is none, `.unreadable` when the file cannot be read.
    public static func current(mountinfoPath: String = "/proc/self/mountinfo") throws(CgroupError) -> CgroupMount {
        let text: String
        do {
            text = try String(contentsOfFile: mountinfoPath, encoding: .utf8)
        } catch {
            throw CgroupError(.unreadable, "cannot read \(mountinfoPath): \(error.localizedDescription)")
        }
        guard let mount = parse(mountinfo: text) else {
            throw CgroupError(.noCgroup2Mount,
                              "no cgroup2 filesystem is mounted (looked in \(mountinfoPath)); cgroup classification needs cgroup v2")
        }
        return mount
    }

    /// The directory of a cgroup in this process's view of the filesystem.
    public func directory(forHierarchyPath path: String) -> String {
        let components = CgroupPath.components(of: path)
        guard !components.isEmpty else { return mountPoint }
        return (mountPoint == "/" ? "" : mountPoint) + "/" + components.joined(separator: "/")
    }

    /// The path to write in `socket cgroupv2 level N "…"`: relative to /sys/fs/cgroup, because
    /// that is what nft prepends. Mount at /sys/fs/cgroup → "system.slice/x"; at
    /// /sys/fs/cgroup/unified → "unified/system.slice/x"; elsewhere, e.g. /tmp/cg →
    /// "../../../tmp/cg/system.slice/x" (stat follows the dot-dots, nft accepts it). The root
    /// cgroup on a /sys/fs/cgroup mount is ".". "", "." and ".." components are dropped, so the
    /// result never leaves the cgroup2 mount; validate user text with `CgroupPath.normalized` first.
    public func nftPath(forHierarchyPath path: String) -> String {
        let components = CgroupPath.components(of: path)
        let base = Self.nftBase
        if mountPoint == base {
            return components.isEmpty ? "." : components.joined(separator: "/")
        }
        if mountPoint.hasPrefix(base + "/") {
            let below = String(mountPoint.dropFirst(base.count + 1))
            return ([below] + components).joined(separator: "/")
        }
        // Climb from /sys/fs/cgroup to "/", then down to the mount point.
        let up = Array(repeating: "..", count: CgroupPath.components(of: base).count)
        return (up + CgroupPath.components(of: mountPoint) + components).joined(separator: "/")
    }

    /// The path to give `iptables -m cgroup --path`: relative to the cgroup2 root whatever the
    /// mount point ("system.slice/x"); the root cgroup is "/".
    public func iptablesPath(forHierarchyPath path: String) -> String {
        let components = CgroupPath.components(of: path)
        return components.isEmpty ? "/" : components.joined(separator: "/")
    }

    /// Decodes mountinfo's octal escapes (\040 → space). A backslash not followed by three octal
    /// digits is kept as it is.
    static func unescape(_ field: Substring) -> String {
        let bytes = Array(field.utf8)
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if bytes[index] == UInt8(ascii: "\\"), index + 3 < bytes.count,
               let value = octal(bytes[(index + 1)...(index + 3)]) {
                out.append(value)
                index += 4
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return String(decoding: out, as: UTF8.self)
    }

    private static func octal(_ digits: ArraySlice<UInt8>) -> UInt8? {
        var value = 0
        for digit in digits {
            guard digit >= UInt8(ascii: "0"), digit <= UInt8(ascii: "7") else { return nil }
            value = value * 8 + Int(digit - UInt8(ascii: "0"))
        }
        return UInt8(exactly: value)
    }
}

/// Hierarchy paths ("/system.slice/nginx.service"; the root is "/").
public enum CgroupPath {
    /// Whether `path` is `ancestor` or lies below it ("/a/b" is below "/a", "/ab" is not).
    public static func isSame(_ path: String, orBelow ancestor: String) -> Bool {
        ancestor == "/" || path == ancestor || path.hasPrefix(ancestor + "/")
    }

    /// The path's names, without empty, "." or ".." components.
    public static func components(of path: String) -> [String] {
        path.split(separator: "/").map(String.init).filter { $0 != "." && $0 != ".." }
    }

    /// Depth in the hierarchy: "/" is 0, "/system.slice" is 1 (nft's `level`).
    public static func level(of path: String) -> Int { components(of: path).count }

    /// The canonical form of a user-written path ("system.slice/x/", "/system.slice//x" →
    /// "/system.slice/x"). Throws `.invalidPath` for ".", "..", NUL or newline, which could
    /// point outside the intended cgroup or break the text it is written into.
    public static func normalized(_ text: String) throws(CgroupError) -> String {
        let names = text.split(separator: "/").map(String.init)
        for name in names where name == "." || name == ".." || name.contains("\0") || name.contains("\n") {
            throw CgroupError(.invalidPath,
                              "cgroup path '\(text)' has a component '\(name)' that is not allowed; write it relative to the cgroup2 root, like /system.slice/nginx.service")
        }
        return "/" + names.joined(separator: "/")
    }

    /// `child` appended to `parent`.
    public static func joined(_ parent: String, _ child: String) -> String {
        parent == "/" ? "/" + child : parent + "/" + child
    }

    /// The last component, or "/" for the root.
    public static func baseName(of path: String) -> String {
        components(of: path).last ?? "/"
    }
}
