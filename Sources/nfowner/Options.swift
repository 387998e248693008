import ArgumentParser
import NetfilterSystem
import Rules

/// `--netns NAME`: run inside a network namespace made by `ip netns add`.
struct NamespaceOption: ParsableArguments {
    @Option(name: .customLong("netns"), help: ArgumentHelp(
        "Run inside the network namespace /run/netns/<name> (as listed by `ip netns list`).",
        valueName: "name"))
    var name: String?
}

/// What nfowner's nftables table logs: which group, how much of each packet, whose packets.
struct RulesetOptions: ParsableArguments {
    @Option(name: .customLong("group"), help: ArgumentHelp(
        "NFLOG group the rules log to and the monitor reads (0-65535).", valueName: "n"))
    var group: UInt16 = RulesetSpec.defaultGroup

    @Option(help: ArgumentHelp(
        "Bytes of each packet to copy to userspace: enough for IP and transport headers.", valueName: "bytes"))
    var snaplen: UInt32 = RulesetSpec.defaultSnaplen

    @Option(name: .customLong("queue-threshold"), help: ArgumentHelp(
        "Packets the kernel batches per message to userspace (fewer wakeups under load).", valueName: "packets"))
    var queueThreshold: UInt16 = RulesetSpec.defaultQueueThreshold

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

    /// The spec these options describe; resolves user and group names.
    func spec() throws -> RulesetSpec {
        var uids = self.uids
        for name in users {
            guard let uid = AccountDatabase.uid(ofUser: name) else {
                throw ValidationError("no user named '\(name)' on this system (see `getent passwd`); use --uid for a number")
            }
            uids.append(uid)
        }
        var gids: [UInt32] = []
        for group in groups {
            if let gid = UInt32(group) {
                gids.append(gid)
            } else if let gid = AccountDatabase.gid(ofGroup: group) {
                gids.append(gid)
            } else {
                throw ValidationError("no group named '\(group)' on this system (see `getent group`)")
            }
        }
        let spec = RulesetSpec(group: group, snaplen: snaplen, queueThreshold: queueThreshold,
                               uids: Array(Set(uids)).sorted(), gids: Array(Set(gids)).sorted())
        do {
            try spec.validate()
        } catch {
            throw ValidationError(error.reason)
        }
        return spec
    }
}

/// An error already phrased for the user: printed as is, exit status 1.
struct UserFacingError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}
