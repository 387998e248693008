/// Installs and removes hold mode's rules (`HoldRules`), choosing nft's `queue` statement when
/// the kernel has it and iptables' NFQUEUE target otherwise.
public struct HoldRulesRunner: Sendable {
    public let nft: NftRunner
    public let iptables: IptablesRunner

    public init(netns: String? = nil) {
        nft = NftRunner(netns: netns)
        iptables = IptablesRunner(netns: netns)
    }

    /// Which way this kernel can queue: nft when `nft --check` accepts a `queue` statement,
    /// else iptables; `why` says what the probe found (for the start-up line).
    public func probe() -> (backend: HoldBackend, why: String) {
        do {
            try nft.check(script: HoldRules.nftProbeScript)
            return (.nft, "nft has the queue statement")
        } catch {
            return (.iptables, "nft's queue statement is missing in this kernel (CONFIG_NFT_QUEUE), so iptables NFQUEUE")
        }
    }

    /// Installs the hold rules with `backend`, replacing an earlier copy for the same queue (a
    /// killed monitor's).
    public func install(_ spec: HoldSpec, backend: HoldBackend) throws(RulesError) {
        switch backend {
        case .nft:
            try nft.apply(script: HoldRules.nftScript(spec))
        case .iptables:
            for family in IptablesFamily.allCases {
                try requireAcceptPolicy(family)
                let text = HoldRules.iptablesRestore(spec, family: family)
                try iptables.check(iptables.run(family.restoreCommand, ["--noflush"], input: text),
                                   "load the hold chain \(spec.chainName) (\(family.command), table raw)")
                if try !iptables.hasJump(family, "OUTPUT", spec.chainName, table: "raw") {
                    try iptables.check(iptables.run(family.command, ["-t", "raw", "-A", "OUTPUT", "-j", spec.chainName]),
                                       "add the jump OUTPUT -> \(spec.chainName) (\(family.command), table raw)")
                }
            }
        }
    }

    /// An accept verdict ends the walk through raw's OUTPUT: that is what its end does only
    /// when the policy is ACCEPT. With another policy, holding would let packets through that
    /// the chain drops: refuse.
    private func requireAcceptPolicy(_ family: IptablesFamily) throws(RulesError) {
        let listing = try iptables.run(family.command, ["-t", "raw", "-S", "OUTPUT"])
        try iptables.check(listing, "read \(family.command)'s raw OUTPUT chain")
        let policy = listing.stdout.split(separator: "\n").first { $0.hasPrefix("-P OUTPUT ") }
        guard let policy, policy.hasSuffix(" ACCEPT") else {
            throw RulesError(.invalidSpec, "cannot hold new flows: \(family.command)'s raw OUTPUT chain has "
                             + "\"\(policy ?? "no policy")\"; hold mode needs policy ACCEPT there (an accepted "
                             + "held packet would skip that policy); run without --hold-new-flows")
        }
    }

    /// Removes the hold rules for `spec`'s queue, both kinds (idempotent). Returns whether
    /// anything was there.
    @discardableResult
    public func remove(_ spec: HoldSpec) throws(RulesError) -> Bool {
        var removed = try nft.deleteTable(name: spec.tableName)
        for family in IptablesFamily.allCases {
            removed = try removeChain(family, spec.chainName) || removed
        }
        return removed
    }

    /// Removes every queue's hold rules (`rules remove`): nft tables `nfowner_hold_*`, raw
    /// chains `NFOWNER-HOLD-*`. Returns what it removed, for the report.
    public func removeAll() throws(RulesError) -> [String] {
        var removed: [String] = []
        let tables = try nft.runNft(["list", "tables", "inet"])
        if tables.status == 0 {
            for line in tables.stdout.split(separator: "\n") {
                let name = line.split(separator: " ").last.map(String.init) ?? ""
                guard name.hasPrefix("nfowner_hold_"), try nft.deleteTable(name: name) else { continue }
                removed.append("table inet \(name)")
            }
        }
        for family in IptablesFamily.allCases {
            let listing = try iptables.run(family.command, ["-t", "raw", "-S"])
            guard listing.status == 0 else { continue }
            let chains = listing.stdout.split(separator: "\n").compactMap { line -> String? in
                guard line.hasPrefix("-N \(HoldRules.chainPrefix)") else { return nil }
                return String(line.dropFirst(3))
            }
            for chain in chains where try removeChain(family, chain) {
                removed.append("\(family.command) raw chain \(chain)")
            }
        }
        return removed
    }

    private func removeChain(_ family: IptablesFamily, _ chain: String) throws(RulesError) -> Bool {
        guard try iptables.run(family.command, ["-t", "raw", "-S", chain]).status == 0 else { return false }
        for _ in 0..<16 where try iptables.hasJump(family, "OUTPUT", chain, table: "raw") {
            try iptables.check(iptables.run(family.command, ["-t", "raw", "-D", "OUTPUT", "-j", chain]),
                               "delete the jump OUTPUT -> \(chain) (\(family.command), table raw)")
        }
        try iptables.check(iptables.run(family.command, ["-t", "raw", "-F", chain]), "flush \(chain)")
        try iptables.check(iptables.run(family.command, ["-t", "raw", "-X", chain]), "delete \(chain)")
        return true
    }
}
