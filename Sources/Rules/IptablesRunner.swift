// Runs iptables / ip6tables (optionally in a named network namespace through nsenter) to install,
// remove and inspect nfowner's chains. Only ever names the chains in IptablesRenderer.allChains
// and the jumps to them: other chains' rules are never flushed, replaced or reordered (the restore
// runs with --noflush and declares only our chains; jumps are added with -A after -C says absent
// and deleted with -D by exact specification).

import Foundation

/// A counter of one rule in nfowner's iptables chains.
public struct IptablesRuleCounter: Sendable, Equatable {
    public var family: IptablesFamily
    public var chain: String
    /// The rule as iptables-save prints it, after `-A CHAIN `.
    public var rule: String
    public var packets: UInt64
    public var bytes: UInt64
}

/// What `IptablesRunner.status` found for one family.
public struct IptablesStatus: Sendable, Equatable {
    public var family: IptablesFamily
    /// Our chains that exist.
    public var chains: [String]
    /// Built-in chains that jump to ours ("OUTPUT", "INPUT").
    public var jumps: [String]
    public var counters: [IptablesRuleCounter]
    /// Every chain and jump of the spec is there.
    public var installed: Bool
}

public struct IptablesRunner: Sendable {
    /// Network namespace name (a file in /run/netns), or nil for the caller's own namespace.
    public let netns: String?

    public init(netns: String? = nil) {
        self.netns = netns
    }

    /// Creates or empties and fills nfowner's chains for `spec`, adds the jumps that are absent,
    /// and deletes nfowner's chains (and their jumps) that `spec` no longer uses.
    public func install(_ spec: RulesetSpec, families: [IptablesFamily] = IptablesFamily.allCases) throws(RulesError) {
        for family in families {
            let text = try IptablesRenderer.render(spec: spec, family: family)
            try check(run(family.restoreCommand, ["--noflush"], input: text), "load nfowner's \(family.command) chains")
            for hook in spec.hooks {
                let (builtin, chain) = IptablesRenderer.entry(hook)
                if try !hasJump(family, builtin, chain) {
                    try check(run(family.command, ["-t", "filter", "-A", builtin, "-j", chain]), "add the jump \(builtin) -> \(chain)")
                }
            }
            let wanted = Set(IptablesRenderer.chains(spec))
            try removeChains(family, IptablesRenderer.allChains.filter { !wanted.contains($0) })
        }
    }

    /// Deletes the jumps to nfowner's chains and the chains. Returns whether anything was there.
    @discardableResult
    public func remove(families: [IptablesFamily] = IptablesFamily.allCases) throws(RulesError) -> Bool {
        var removed = false
        for family in families {
            removed = try removeChains(family, IptablesRenderer.allChains) || removed
        }
        return removed
    }

    /// Our chains, jumps and rule counters per family (from `iptables-save -c -t filter`).
    public func status(_ spec: RulesetSpec, families: [IptablesFamily] = IptablesFamily.allCases) throws(RulesError) -> [IptablesStatus] {
        var result: [IptablesStatus] = []
        for family in families {
            let save = try run(family.saveCommand, ["-c", "-t", "filter"])
            try check(save, "read the \(family.command) rules")
            let parsed = Self.parseSave(save.stdout, family: family)
            let wantedJumps = spec.hooks.map { IptablesRenderer.entry($0) }
            let installed = IptablesRenderer.chains(spec).allSatisfy(parsed.chains.contains)
                && wantedJumps.allSatisfy { parsed.jumps.contains($0.builtin) }
            result.append(IptablesStatus(family: family, chains: parsed.chains, jumps: parsed.jumps,
                                         counters: parsed.counters, installed: installed))
        }
        return result
    }

    /// Our chains, the built-in chains jumping to them, and our rules' counters in an
    /// `iptables-save -c` listing. Lines it does not understand are skipped.
    static func parseSave(_ text: String, family: IptablesFamily) -> (chains: [String], jumps: [String], counters: [IptablesRuleCounter]) {
        let ours = Set(IptablesRenderer.allChains)
        var chains: [String] = []
        var jumps: [String] = []
        var counters: [IptablesRuleCounter] = []
        for line in text.split(separator: "\n") {
            if line.hasPrefix(":") {
                let name = String(line.dropFirst().prefix { $0 != " " })
                if ours.contains(name) { chains.append(name) }
                continue
            }
            // "[12:345] -A CHAIN rest"
            guard line.hasPrefix("["), let close = line.firstIndex(of: "]") else { continue }
            let numbers = line[line.index(after: line.startIndex)..<close].split(separator: ":")
            let words = line[line.index(after: close)...].split(separator: " ", maxSplits: 2)
            guard numbers.count == 2, let packets = UInt64(numbers[0]), let bytes = UInt64(numbers[1]),
                  words.count >= 2, words[0] == "-A" else { continue }
            let chain = String(words[1])
            let rule = words.count > 2 ? String(words[2]) : ""
            if ours.contains(chain) {
                counters.append(IptablesRuleCounter(family: family, chain: chain, rule: rule, packets: packets, bytes: bytes))
            } else if ours.contains(where: { rule == "-j \($0)" }) {
                jumps.append(chain)
            }
        }
        return (chains, jumps, counters)
    }

    // MARK: helpers

    /// Deletes every jump to `chains` from the built-in chains, then flushes and deletes them.
    @discardableResult
    private func removeChains(_ family: IptablesFamily, _ chains: [String]) throws(RulesError) -> Bool {
        var existing: [String] = []
        for chain in chains where try run(family.command, ["-t", "filter", "-S", chain]).status == 0 {
            existing.append(chain)
        }
        var removed = !existing.isEmpty
        for chain in existing {
            for builtin in ["OUTPUT", "INPUT"] {
                // A jump added twice by hand is deleted twice; the bound keeps a bug from looping.
                for _ in 0..<16 where try hasJump(family, builtin, chain) {
                    try check(run(family.command, ["-t", "filter", "-D", builtin, "-j", chain]), "delete the jump \(builtin) -> \(chain)")
                    removed = true
                }
            }
        }
        for chain in existing { try check(run(family.command, ["-t", "filter", "-F", chain]), "flush \(chain)") }
        for chain in existing { try check(run(family.command, ["-t", "filter", "-X", chain]), "delete \(chain)") }
        return removed
    }

    /// `-C BUILTIN -j CHAIN`: exit 0 = present, 1 = absent; anything else is an error.
    func hasJump(_ family: IptablesFamily, _ builtin: String, _ chain: String,
                 table: String = "filter") throws(RulesError) -> Bool {
        let result = try run(family.command, ["-t", table, "-C", builtin, "-j", chain])
        if result.status == 0 { return true }
        if result.status == 1 { return false }
        throw failure(result, "check for the jump \(builtin) -> \(chain)")
    }

    func check(_ result: SubprocessResult, _ action: String) throws(RulesError) {
        guard result.status == 0 else { throw failure(result, action) }
    }

    private func failure(_ result: SubprocessResult, _ action: String) -> RulesError {
        let stderr = NftRunner.trimmed(result.stderr)
        if stderr.contains("Permission denied") || stderr.contains("Operation not permitted") {
            return RulesError(.permissionDenied, "cannot \(action): needs CAP_NET_ADMIN: run as root (iptables said: \(stderr))")
        }
        return RulesError(.nftFailed, "cannot \(action): exited with status \(result.status): \(stderr)")
    }

    func run(_ command: String, _ arguments: [String], input: String? = nil) throws(RulesError) -> SubprocessResult {
        let candidates = ["/usr/sbin/\(command)", "/sbin/\(command)", "/usr/local/sbin/\(command)", "/usr/bin/\(command)"]
        guard let path = Subprocess.locate(command, candidates: candidates) else {
            throw RulesError(.nftNotFound, "\(command) not found: install the iptables package (apt-get install iptables)")
        }
        guard let netns else { return try Subprocess.run(path, arguments, input: input) }
        let namespace = try NftRunner.namespacePath(netns)
        guard let nsenter = Subprocess.locate("nsenter", candidates: NftRunner.nsenterCandidates) else {
            throw RulesError(.nsenterNotFound, "nsenter not found (needed for --netns): install util-linux")
        }
        return try Subprocess.run(nsenter, ["--net=\(namespace)", "--", path] + arguments, input: input)
    }
}

extension IptablesStatus: CustomStringConvertible {
    /// Multi-line, for people.
    public var description: String {
        let name = family == .ipv4 ? "iptables (IPv4)" : "ip6tables (IPv6)"
        guard installed else { return "\(name): nfowner's chains are not installed (run `nfowner rules install --backend iptables`)" }
        var lines = ["\(name): chains \(chains.joined(separator: ", ")); jumps: \(jumps.joined(separator: "; "))"]
        for counter in counters {
            lines.append("  \(counter.chain): \(counter.packets) packets, \(counter.bytes) bytes — \(counter.rule)")
        }
        return lines.joined(separator: "\n")
    }
}
