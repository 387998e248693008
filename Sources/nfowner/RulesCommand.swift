import ArgumentParser
import NetfilterSystem
import Rules

struct RulesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rules",
        abstract: "Show, install, remove or check nfowner's own rules.",
        discussion: """
            nftables (default): everything lives in one table, `table inet nfowner`; install replaces \
            it in one nft transaction and remove deletes it. iptables (--backend iptables): nfowner's \
            own chains (NFOWNER-OUT, NFOWNER-IN, NFOWNER-CLS) plus one jump from OUTPUT/INPUT. No \
            other table, chain or rule is ever touched.

            The ruleset comes from the config file (--config) and the options, which override it. \
            With cgroup discovery on (the default: levels 1-3 of the cgroup2 tree), each packet is \
            logged with the prefix "nfowner cg=<id>" of its deepest known cgroup.

            Examples:
              nfowner rules show                          # the nft script, changes nothing
              nfowner rules show --backend iptables       # iptables-restore input
              sudo nfowner rules install --user alice     # log only alice's packets
              sudo nfowner rules status
              sudo nfowner rules remove
            """,
        subcommands: [Show.self, Install.self, Remove.self, Status.self])

    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print what `rules install` would apply (changes nothing).")
        @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions
        @Option(help: "nft (a script for `nft -f`) or iptables (input for iptables-restore and ip6tables-restore).")
        var backend: Backend = .nft
        @Option(help: ArgumentHelp("With --backend iptables: only ipv4 (iptables-restore) or ipv6 (ip6tables-restore).",
                                   valueName: "ipv4|ipv6"))
        var family: IptablesFamily?

        func validate() throws {
            if family != nil && backend != .iptables { throw ValidationError("--family goes with --backend iptables") }
        }

        func run() throws {
            let plan = try ruleset.plan()
            plan.notes.forEach(note)
            do {
                switch backend {
                case .nft:
                    print(try NftScriptRenderer.install(plan.spec, installer: .rulesInstall), terminator: "")
                case .iptables:
                    let families = family.map { [$0] } ?? IptablesFamily.allCases
                    for (index, family) in families.enumerated() {
                        if index > 0 { print("# --- \(family.restoreCommand) input ---") }
                        print(try IptablesRenderer.render(spec: plan.spec, family: family), terminator: "")
                    }
                }
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }

    struct Install: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Install (or atomically replace) nfowner's rules.")
        @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions
        @Option(help: "nft or iptables.") var backend: Backend = .nft
        @OptionGroup var namespace: NamespaceOption

        func run() throws {
            let plan = try ruleset.plan()
            plan.notes.forEach(note)
            try enterNamespace(namespace)
            let spec = plan.spec
            if backend == .iptables, !spec.packetSocketInterfaces.isEmpty {
                throw UserFacingError("packet sockets (--packet-sockets, hooks.packet_sockets) need the nft backend: "
                                      + "iptables has no egress hook on a device; use --backend nft or leave them out")
            }
            do {
                switch backend {
                case .nft:
                    let vanished = try NftRunner().installSkippingVanished(spec, installer: .rulesInstall)
                    for cgroup in vanished { note("cgroup \(cgroup.hierarchyPath) vanished before installing; left out") }
                    note("installed table inet \(spec.tableName): logging \(hooks(spec)) to NFLOG group \(spec.group)"
                         + cgroupSummary(spec) + newFlowSummary(spec) + packetSocketSummary(spec))
                case .iptables:
                    try IptablesRunner().install(spec, families: IptablesFamily.allCases)
                    if spec.newFlowSeconds > 0 {
                        note("iptables has no per-flow memory in nfowner's chains: every packet is batched, "
                             + "so short-lived senders may be gone when looked up (the nft backend delivers "
                             + "each flow's first packet at once)")
                    }
                    note("installed iptables chains \(IptablesRenderer.chains(spec).joined(separator: ", ")) "
                         + "(IPv4 and IPv6): logging \(hooks(spec)) to NFLOG group \(spec.group)" + cgroupSummary(spec))
                }
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }

    struct Remove: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Delete nfowner's rules (nothing else): hold mode's, enforce mode's and kernel counting's included. Not an error when absent.")
        @Option(help: "nft or iptables.") var backend: Backend = .nft
        @OptionGroup var namespace: NamespaceOption

        func run() throws {
            try enterNamespace(namespace)
            let spec = RulesetSpec()
            do {
                switch backend {
                case .nft:
                    let removed = try NftRunner().remove(spec)
                    note(removed ? "removed table inet \(spec.tableName)" : "table inet \(spec.tableName) was not installed")
                    // A killed `run` in kernel counting mode leaves its counting table.
                    if try NftRunner().deleteTable(name: OwnerCounterSet.tableName) {
                        note("removed table inet \(OwnerCounterSet.tableName) (the daemon's kernel counters)")
                    }
                case .iptables:
                    let removed = try IptablesRunner().remove(families: IptablesFamily.allCases)
                    note(removed ? "removed nfowner's iptables chains" : "nfowner's iptables chains were not installed")
                }
                // Hold mode's rules (a killed monitor's hold nothing: they bypass, but they go too).
                for removed in try HoldRulesRunner().removeAll() { note("removed hold mode's \(removed)") }
                if try EnforceRulesRunner().remove() {
                    note("removed enforce mode's chains \(EnforceRules.chain), \(EnforceRules.queueChain) (a running "
                         + "`nfowner enforce` no longer decides anything)")
                }
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Installed? Current (same as these options would install)? Counters? Who reads the group?")
        @OptionGroup(title: "Ruleset") var ruleset: RulesetOptions
        @Option(help: "nft or iptables.") var backend: Backend = .nft
        @OptionGroup var namespace: NamespaceOption

        func run() throws {
            let plan = try ruleset.plan()
            try enterNamespace(namespace)
            do {
                switch backend {
                case .nft:
                    print(try NftRunner().status(plan.spec).description)
                case .iptables:
                    for status in try IptablesRunner().status(plan.spec, families: IptablesFamily.allCases) {
                        print(status.description)
                    }
                }
            } catch {
                throw UserFacingError(error.description)
            }
        }
    }
}

private func hooks(_ spec: RulesetSpec) -> String {
    spec.hooks.map { $0.rawValue.uppercased() }.joined(separator: " and ") + (spec.hooks.count > 1 ? " hooks" : " hook")
}

private func cgroupSummary(_ spec: RulesetSpec) -> String {
    guard spec.classifiesCgroups else { return "" }
    return "; \(spec.cgroups.count) cgroup(s) classified at level(s) \(spec.cgroupLevels.map(String.init).joined(separator: ","))"
}

private func newFlowSummary(_ spec: RulesetSpec) -> String {
    spec.newFlowSeconds > 0 ? "; each new flow's first packet at once" : ""
}

private func packetSocketSummary(_ spec: RulesetSpec) -> String {
    spec.packetSocketInterfaces.isEmpty ? ""
        : "; table netdev \(spec.tableName): packet sockets' frames on \(spec.packetSocketInterfaces.joined(separator: ", "))"
}
