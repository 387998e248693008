import ArgumentParser
import Configuration
import NetfilterSystem
import Attribution
import Rules
import Setup

/// `--netns NAME`: run inside a network namespace made by `ip netns add`.
struct NamespaceOption: ParsableArguments {
    @Option(name: .customLong("netns"), help: ArgumentHelp(
        "Run inside the network namespace /run/netns/<name> (as listed by `ip netns list`).",
        valueName: "name"))
    var name: String?
}

/// The config file and the command-line options that override it; together they decide the
/// ruleset (group, snaplen, selectors, hooks, cgroups) and the NFLOG settings.
struct RulesetOptions: ParsableArguments {
    @Option(name: .customLong("config"), help: ArgumentHelp(
        "Configuration file (TOML). Default: \(ConfigLoader.defaultPath) when it exists, else the built-in defaults (`nfowner config show`).",
        valueName: "file"))
    var configPath: String?

    @Option(name: .customLong("group"), help: ArgumentHelp(
        "NFLOG group the rules log to and the monitor reads (0-65535). Default: 5.", valueName: "n"))
    var group: UInt16?

    @Option(help: ArgumentHelp(
        "Bytes of each packet to copy to userspace: enough for IP and transport headers. Default: 128.",
        valueName: "bytes"))
    var snaplen: UInt32?

    @Option(name: .customLong("queue-threshold"), help: ArgumentHelp(
        "Packets the kernel batches per message to userspace (fewer receives per packet under load). Default: 64.",
        valueName: "packets"))
    var queueThreshold: UInt16?

    @Option(name: .customLong("new-flow-seconds"), help: ArgumentHelp(
        "Deliver each flow's first packet at once, so a sender that exits right after sending is "
            + "looked up while its socket exists; later packets of the flow are batched for this many "
            + "seconds (0-3600; 0 batches everything; nftables backend only). Default: 2.",
        valueName: "seconds"))
    var newFlowSeconds: UInt32?

    @Option(name: .customLong("uid"), help: ArgumentHelp(
        "Only log packets whose socket owner has this uid (repeatable: any of them).", valueName: "uid"))
    var uids: [UInt32] = []

    @Option(name: .customLong("user"), help: ArgumentHelp(
        "Only log packets of this user, by name (repeatable; combines with --uid).", valueName: "name"))
    var users: [String] = []

    @Option(name: .customLong("gid"), help: ArgumentHelp(
        "Only log packets whose socket owner has this gid or group name (repeatable). "
            + "With --uid/--user as well, a packet must match both.", valueName: "gid|name"))
    var groups: [String] = []

    @Flag(name: .customLong("input"), help: "Also log packets arriving for local sockets (the input hook).")
    var input = false

    @Flag(name: .customLong("no-cgroups"), help: "Do not classify packets by cgroup (uid/gid only).")
    var noCgroups = false

    @Option(name: .customLong("packet-sockets"), parsing: .upToNextOption, help: ArgumentHelp(
        "Also log the frames packet sockets (AF_PACKET: DHCP clients, packet generators) send on "
            + "these interfaces, which bypass the IP hooks; each is named with its program "
            + "(a netdev egress chain per interface; nftables backend only).", valueName: "iface"))
    var packetSockets: [String] = []

    func loadConfig() throws -> NfownerConfig {
        do { return try ConfigLoader.load(path: configPath) } catch { throw UserFacingError(error.description) }
    }

    /// Loads the config, applies the overrides and discovers cgroups.
    func plan(follow: Bool = false, hold: HoldOptions? = nil) throws -> Plan {
        let config = try loadConfig()
        var overrides = Overrides()
        overrides.holdNewFlows = hold?.holdNewFlows
        overrides.holdQueue = hold?.holdQueue
        overrides.group = group
        overrides.snaplen = snaplen
        overrides.queueThreshold = queueThreshold
        overrides.newFlowSeconds = newFlowSeconds
        overrides.uids = uids
        overrides.userNames = users
        overrides.groups = groups
        overrides.input = input ? true : nil
        overrides.noCgroups = noCgroups
        overrides.packetSockets = packetSockets
        return try makePlan(config: config, overrides: overrides, follow: follow)
    }
}

/// The config and overrides as a plan: cgroups discovered, the ruleset validated.
func makePlan(config: NfownerConfig, overrides: Overrides, follow: Bool) throws -> Plan {
    let mount = try? CgroupMount.current()
    let deepest = max(config.cgroups.levels.max() ?? 1, 1)
    let tree = mount.flatMap { try? CgroupTree(mountPoint: $0.mountPoint, maxLevel: max(deepest, CgroupTree.defaultMaxLevel)) }
    do {
        var plan = try Planner.plan(config: config, overrides: overrides, cgroupMount: mount, tree: tree)
        try plan.spec.validate()
        if !follow { plan.follow = false }
        return plan
    } catch let error as RulesError {
        throw ValidationError(error.reason)
    } catch {
        throw UserFacingError(String(describing: error))
    }
}

/// Hold mode (`monitor`): see `HoldRules`.
struct HoldOptions: ParsableArguments {
    @Flag(name: .customLong("hold-new-flows"), inversion: .prefixedNo, help: ArgumentHelp(
        "Hold each new TCP connection's SYN and each ping's echo request in an NFQUEUE queue until its owner is "
            + "looked up, so they name their process exactly (pid included), even when it exits at once. Fails "
            + "open: with no monitor listening, held packets pass at once. Costs each held packet one round trip "
            + "to the monitor (about 0.1 ms; bench/hold.sh). Default: nflog.hold_new_flows (false)."))
    var holdNewFlows: Bool?

    @Option(name: .customLong("hold-queue"), help: ArgumentHelp(
        "NFQUEUE queue number hold mode reads (0-65535; must be free). Default: nflog.hold_queue, else the NFLOG group's number.",
        valueName: "n"))
    var holdQueue: UInt16?
}

/// Which firewall front end manages nfowner's rules.
enum Backend: String, ExpressibleByArgument, CaseIterable {
    /// `table inet nfowner`, cgroups classified through verdict maps (O(1) per packet).
    case nft
    /// nfowner's own iptables chains (nf_tables backend), one `-m cgroup` rule per cgroup.
    case iptables
}

/// An error already phrased for the user: printed as is, exit status 1.
struct UserFacingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

func enterNamespace(_ option: NamespaceOption) throws {
    guard let name = option.name else { return }
    do { try NetworkNamespace.enter(named: name) } catch { throw UserFacingError(error.description) }
}

/// A status line for the person at the terminal, on stderr so stdout stays machine-readable.
func note(_ text: String) {
    try? OutputDescriptor.standardError.write("nfowner: \(text)\n")
}

extension IptablesFamily: ExpressibleByArgument {}
