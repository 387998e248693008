// systemd names cgroups after units: slices group, services and scopes hold processes.
//   /system.slice/nginx.service
//   /user.slice/user-1000.slice/user@1000.service/app.slice/foo.scope
//   /machine.slice/libpod-<id>.scope, /system.slice/docker-<id>.scope
// A service may have sub-cgroups of its own (nginx.service/worker), which belong to it.

/// The systemd unit a cgroup belongs to.
public enum SystemdUnit {
    /// Unit types whose cgroups hold processes. Slices only group other units, so a packet is
    /// never "from" a slice in a useful sense.
    public static let processUnitSuffixes = [".service", ".scope"]

    /// The deepest path component that names a service or scope: "/system.slice/nginx.service" →
    /// "nginx.service", ".../user@1000.service/app.slice/foo.scope" → "foo.scope". Nil for the
    /// root and for paths made only of slices ("/user.slice").
    public static func name(forCgroupPath path: String) -> String? {
        CgroupPath.components(of: path).last(where: isUnitName)
    }

    /// True for a name such as "nginx.service", "session-3.scope" or "user@1000.service": a
    /// non-empty stem, a service or scope suffix, and no slash.
    public static func isUnitName(_ name: String) -> Bool {
        guard !name.contains("/") else { return false }
        return processUnitSuffixes.contains { suffix in
            name.hasSuffix(suffix) && name.count > suffix.count
        }
    }
}
