// The config file's model: what nfowner logs and how. Pure values with the embedded defaults; the
// command-line tool maps them onto `RulesetSpec` (rule side) and `NflogSettings` (listener side).
// Every field says its unit; the ranges are enforced by `ConfigLoader`, not by these initializers.

/// The effective configuration: the file's values over the embedded defaults.
public struct NfownerConfig: Sendable, Equatable {
    public var nflog: Nflog
    public var hooks: Hooks
    public var select: Selection
    public var cgroups: Discovery
    public var accounting: Accounting
    public var storage: Storage
    public var metrics: Metrics
    public var run: Run
    public var enforce: Enforce

    public init(nflog: Nflog = Nflog(), hooks: Hooks = Hooks(), select: Selection = Selection(),
                cgroups: Discovery = Discovery(), accounting: Accounting = Accounting(), storage: Storage = Storage(),
                metrics: Metrics = Metrics(), run: Run = Run(), enforce: Enforce = Enforce()) {
        self.enforce = enforce
        self.nflog = nflog
        self.hooks = hooks
        self.select = select
        self.cgroups = cgroups
        self.accounting = accounting
        self.storage = storage
        self.metrics = metrics
        self.run = run
    }

    /// `[accounting]`: how `nfowner run` totals traffic.
    public struct Accounting: Sendable, Equatable {
        public enum Mode: String, Sendable, Equatable, CaseIterable {
            /// Every packet is logged to nfowner and attributed: program, remote and protocol known.
            case packets
            /// The kernel counts bytes per direction, uid and classified cgroup in nft's own
            /// counters, which nfowner reads: exact at any rate, no program or remote.
            case kernel
        }

        /// Default `.packets`.
        public var mode: Mode = .packets
        /// Length of a time bucket in seconds, 1…86400. Default 60. A `kill -9` loses at most
        /// the bucket being filled.
        public var bucketSeconds: Int = 60
        /// Distinct remote endpoints kept per owner and direction in one bucket, 0…100000; the
        /// rest are added up under the remote "other". Default 100. Bounds memory and the
        /// database under a flood of distinct remotes; 0 keeps no remote at all.
        public var maxRemotes: Int = 100
        /// Rows (owner × remote) kept per bucket, 100…10000000; past it, new owners are added up
        /// under "other" too. Default 100000.
        public var maxRows: Int = 100_000
        /// Also account packets arriving for local sockets (the input hook). Default true:
        /// in and out are reported separately.
        public var input: Bool = true

        public init(mode: Mode = .packets, bucketSeconds: Int = 60, maxRemotes: Int = 100, maxRows: Int = 100_000,
                    input: Bool = true) {
            self.mode = mode
            self.bucketSeconds = bucketSeconds
            self.maxRemotes = maxRemotes
            self.maxRows = maxRows
            self.input = input
        }
    }

    /// `[storage]`: where `nfowner run` keeps its history (SQLite).
    public struct Storage: Sendable, Equatable {
        /// The database file; empty keeps no history. Default /var/lib/nfowner/nfowner.db
        /// (systemd's StateDirectory=nfowner).
        public var path: String = Storage.defaultPath
        /// Buckets older than this many days are deleted, 1…36500. Default 30.
        public var retentionDays: Int = 30
        /// The database's size bound in MiB, 1…1048576: past it the oldest buckets go first.
        /// Default 1024.
        public var maxMegabytes: Int = 1024

        public static let defaultPath = "/var/lib/nfowner/nfowner.db"

        public init(path: String = Storage.defaultPath, retentionDays: Int = 30, maxMegabytes: Int = 1024) {
            self.path = path
            self.retentionDays = retentionDays
            self.maxMegabytes = maxMegabytes
        }
    }

    /// `[metrics]`: the Prometheus endpoint of `nfowner run`.
    public struct Metrics: Sendable, Equatable {
        /// `address:port` served over HTTP at /metrics; empty turns it off. Default
        /// 127.0.0.1:9465 (this host only).
        public var listen: String = Metrics.defaultListen
        /// Label series with the remote address too. Default false: labels stay bounded by
        /// units, users and programs.
        public var remoteLabels: Bool = false

        public static let defaultListen = "127.0.0.1:9465"

        public init(listen: String = Metrics.defaultListen, remoteLabels: Bool = false) {
            self.listen = listen
            self.remoteLabels = remoteLabels
        }
    }

    /// `[run]`: the daemon's own settings.
    /// `[enforce]`: the policy `nfowner run` enforces besides accounting (docs/enforce.md).
    public struct Enforce: Sendable, Equatable {
        /// The policy file (absolute path); "" (the default): the daemon enforces nothing.
        public var policy: String = ""
        /// The NFQUEUE queue enforce mode's rules queue to. Default 10.
        public var queue: Int = 10
        /// How many queues, from `queue` on, new flows are spread over (by CPU), 1…16. Default 1.
        public var queues: Int = 1
        /// Where audit events go (JSON Lines, appended; absolute path); "" writes none.
        public var auditLog: String = ""

        public init(policy: String = "", queue: Int = 10, queues: Int = 1, auditLog: String = "") {
            self.policy = policy
            self.queue = queue
            self.queues = queues
            self.auditLog = auditLog
        }
    }

    public struct Run: Sendable, Equatable {
        /// Leave the ruleset in place when the daemon stops. Default false.
        public var keepRules: Bool = false

        public init(keepRules: Bool = false) {
            self.keepRules = keepRules
        }
    }

    /// `[nflog]`: where packets go and how they are batched.
    public struct Nflog: Sendable, Equatable {
        /// NFLOG groups, 1…8 unique values in 0…65535. The first is the group nfowner's rules log
        /// to; the monitor binds all of them (so it can also show another tool's logging).
        /// Default [5]: 0, 1 and 2 are what ulogd and IDS examples use.
        public var groups: [UInt16]
        /// Bytes of each packet copied to userspace, 1…65535. Default 128: IP header with options
        /// plus TCP header with options; the monitor never needs payload.
        public var snaplen: UInt32
        /// Packets the kernel batches per message (the rule's `queue-threshold`), 1…65535. Default 64,
        /// what the monitor asks of the group.
        public var queueThreshold: UInt16
        /// Longest a partial batch waits before it is sent, in 1/100 s, 1…6000. Default 10 (0.1 s).
        public var flushTimeout: UInt32
        /// Socket receive buffer in bytes (SO_RCVBUFFORCE), 64 KiB…1 GiB. Default 8 MiB, which
        /// measured zero loss at ≈190k packets/s.
        public var receiveBuffer: Int
        /// Under load, read the socket at most once per this many microseconds, taking every
        /// batch queued meanwhile, 0…100000 (0: wake for each batch). Default 2000 (2 ms): about
        /// half the CPU per packet at high rates, for at most 2 ms more delay.
        public var coalesceMicroseconds: UInt32
        /// Seconds the kernel remembers a flow whose first packet it delivered at once (queue
        /// threshold 1), 0…3600; 0 batches every packet. Default 2: short-lived senders are looked
        /// up while their socket exists, and a long flow comes at once again about when the
        /// monitor's cached owner expires (`--flow-lifetime`).
        public var newFlowSeconds: UInt32
        /// The NFLOG group each flow's first packet goes to, read on a socket of its own; nil:
        /// the first group after the first of `groups` that is not one of them (6 by default).
        /// Must not be one of `groups`.
        public var newFlowGroup: UInt16?
        /// Hold mode: each new TCP connection's SYN and each ping's echo request wait in an
        /// NFQUEUE queue (with bypass: never when no monitor listens) until their owner is
        /// looked up, so they are attributed exactly with their pid. Default false.
        public var holdNewFlows: Bool = false
        /// The NFQUEUE queue hold mode uses; nil: the number of the first of `groups` (5).
        public var holdQueue: UInt16?

        /// `holdQueue`, or its default.
        public var effectiveHoldQueue: UInt16 { holdQueue ?? groups.first ?? Nflog.defaultGroups[0] }

        /// `newFlowGroup`, or its default.
        public var effectiveNewFlowGroup: UInt16 {
            if let newFlowGroup { return newFlowGroup }
            var candidate = groups.first ?? Nflog.defaultGroups[0]
            repeat { candidate &+= 1 } while groups.contains(candidate)
            return candidate
        }

        public static let defaultGroups: [UInt16] = [5]
        public static let defaultSnaplen: UInt32 = 128
        public static let defaultQueueThreshold: UInt16 = 64
        public static let defaultFlushTimeout: UInt32 = 10
        public static let defaultReceiveBuffer = 8 << 20
        public static let defaultCoalesceMicroseconds: UInt32 = 2_000
        public static let defaultNewFlowSeconds: UInt32 = 2
        /// What `coalesce_us` and `--coalesce-us` accept: up to 0.1 s, the default flush timeout.
        public static let coalesceMicrosecondsRange: ClosedRange<UInt32> = 0...100_000

        public init(groups: [UInt16] = Nflog.defaultGroups, snaplen: UInt32 = Nflog.defaultSnaplen,
                    queueThreshold: UInt16 = Nflog.defaultQueueThreshold,
                    flushTimeout: UInt32 = Nflog.defaultFlushTimeout,
                    receiveBuffer: Int = Nflog.defaultReceiveBuffer,
                    coalesceMicroseconds: UInt32 = Nflog.defaultCoalesceMicroseconds,
                    newFlowSeconds: UInt32 = Nflog.defaultNewFlowSeconds, newFlowGroup: UInt16? = nil) {
            self.groups = groups
            self.snaplen = snaplen
            self.queueThreshold = queueThreshold
            self.flushTimeout = flushTimeout
            self.receiveBuffer = receiveBuffer
            self.coalesceMicroseconds = coalesceMicroseconds
            self.newFlowSeconds = newFlowSeconds
            self.newFlowGroup = newFlowGroup
        }
    }

    /// `[hooks]`: which directions are logged. Output is always logged.
    public struct Hooks: Sendable, Equatable {
        /// Also log packets arriving for local sockets (the input hook). Default false.
        public var input: Bool
        /// Interfaces whose packet sockets' (AF_PACKET) frames are logged too, at the device's
        /// egress hook. Default none.
        public var packetSockets: [String]

        public init(input: Bool = false, packetSockets: [String] = []) {
            self.input = input
            self.packetSockets = packetSockets
        }
    }

    /// `[select]`: narrows what is logged. Every empty list means "any"; a packet must match
    /// every non-empty list.
    public struct Selection: Sendable, Equatable {
        /// Owners by user name or uid.
        public var users: [Principal]
        /// Owners by group name or gid.
        public var groups: [Principal]
        /// Cgroups (paths or unit names) whose sockets are logged.
        public var cgroups: [CgroupSelector]

        public init(users: [Principal] = [], groups: [Principal] = [], cgroups: [CgroupSelector] = []) {
            self.users = users
            self.groups = groups
            self.cgroups = cgroups
        }

        /// True when nothing narrows the selection: every packet is logged.
        public var isEverything: Bool { users.isEmpty && groups.isEmpty && cgroups.isEmpty }
    }

    /// `[cgroups]`: which cgroups are classified automatically, so a packet's message names its cgroup.
    public struct Discovery: Sendable, Equatable {
        /// Depths below the cgroup2 root whose cgroups are classified, each 1…16, unique; empty
        /// turns discovery off. Default [1, 2, 3]: slices (1), services and user slices (2),
        /// session scopes and user services (3).
        public var levels: [Int]
        /// Track cgroups created and removed while nfowner runs. Default true.
        public var follow: Bool

        public static let defaultLevels = [1, 2, 3]

        public init(levels: [Int] = Discovery.defaultLevels, follow: Bool = true) {
            self.levels = levels
            self.follow = follow
        }
    }
}

/// A user or group as the config names it: a name to resolve, or a numeric id.
public enum Principal: Sendable, Hashable, CustomStringConvertible {
    case name(String)
    case id(UInt32)

    public var description: String {
        switch self {
        case .name(let name): name
        case .id(let id): String(id)
        }
    }
}

/// A cgroup the selection names: a path relative to the cgroup2 root, or a systemd unit name that
/// may sit anywhere in the tree. Only `init(_:)` (and the loader) create one, so the value always
/// passed validation: no `..`, no quotes, `;` or control characters.
public struct CgroupSelector: Sendable, Hashable, CustomStringConvertible {
    public enum Kind: Sendable, Hashable {
        /// A path relative to the cgroup2 root, e.g. "system.slice/nginx.service".
        case path
        /// A systemd unit name, e.g. "nginx.service", found wherever it is in the tree.
        case unit
    }

    public let kind: Kind
    /// For `.path`: normalized, without leading or trailing "/" ("system.slice/nginx.service").
    /// For `.unit`: the unit name.
    public let value: String

    /// Classifies and validates `text` as written in the config. Text containing "/" is a path
    /// (a leading "/" makes a single component a path too: "/machine"); other text must be a unit
    /// name with a suffix that owns a cgroup (.service, .scope, .slice, .socket, .mount, .swap).
    /// Throws `.invalidCgroup` with a reason that names the problem (no file or line).
    public init(_ text: String) throws(ConfigError) {
        switch CgroupSelector.classify(text) {
        case .success(let selector): self = selector
        case .failure(let reason): throw ConfigError(.invalidCgroup, reason.text)
        }
    }

    init(kind: Kind, value: String) {
        self.kind = kind
        self.value = value
    }

    /// How the selector is written in the config; parsing it gives back the same selector.
    public var description: String {
        switch kind {
        case .path: value.contains("/") ? value : "/" + value
        case .unit: value
        }
    }

    /// The cgroup path as /proc/PID/cgroup shows it ("/system.slice/nginx.service"); nil for units.
    public var absolutePath: String? { kind == .path ? "/" + value : nil }
}
