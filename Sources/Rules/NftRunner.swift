// Runs nft, optionally inside a named network namespace (`nsenter --net=/run/netns/NAME nft …`,
// never `ip netns exec`, which remounts /sys). Turns nft's failures into RulesError values that
// say what to do. Only ever names nfowner's own table: there is no flush and no call that takes
// another table's name from anywhere but a validated RulesetSpec.

import Foundation

/// Runs nft against the host's or a named namespace's ruleset.
public struct NftRunner: Sendable {
    /// Network namespace name (a file in /run/netns), or nil for the caller's own namespace.
    public let netns: String?
    /// Path of the nft binary; nil means auto-detect at the first call.
    public let nftPath: String?

    static let nftCandidates = ["/usr/sbin/nft", "/sbin/nft", "/usr/local/sbin/nft", "/usr/bin/nft"]
    static let nsenterCandidates = ["/usr/bin/nsenter", "/bin/nsenter", "/usr/sbin/nsenter", "/usr/local/bin/nsenter"]

    public init(netns: String? = nil, nftPath: String? = nil) {
        self.netns = netns
        self.nftPath = nftPath
    }

    // MARK: nft commands

    /// Runs `script` with `nft -f -`: one transaction, all or nothing.
    public func apply(script: String) throws(RulesError) {
        let result = try runNft(["-f", "-"], input: script)
        guard result.status == 0 else { throw Self.classify(result, doing: "apply the ruleset") }
    }

    /// Validates `script` against the kernel without committing (`nft --check -f -`): the kernel
    /// sees the whole batch and aborts it, so missing kernel features are reported.
    public func check(script: String) throws(RulesError) {
        let result = try runNft(["--check", "-f", "-"], input: script)
        guard result.status == 0 else { throw Self.classify(result, doing: "check the ruleset") }
    }

    /// `nft list table inet NAME`, or nil when there is no such table. Other failures throw.
    /// `terse` (`nft -t`) leaves out set and map elements: nft 1.0.6 resolves each cgroup id in
    /// them back to a path by walking cgroupfs, which is slow with many cgroups.
    public func listTable(name: String, terse: Bool = false) throws(RulesError) -> String? {
        let table = try NftText.validateIdentifier(name, what: "table name")
        let result = try runNft((terse ? ["-t"] : []) + ["list", "table", "inet", table])
        if result.status == 0 { return result.stdout }
        // nft reports a missing table as ENOENT ("Error: No such file or directory").
        if result.stderr.contains("No such file or directory") { return nil }
        throw Self.classify(result, doing: "list table inet \(table)")
    }

    /// `nft list ruleset`: everything, for diagnostics and tests. nfowner never writes it back.
    public func listRuleset() throws(RulesError) -> String {
        let result = try runNft(["list", "ruleset"])
        guard result.status == 0 else { throw Self.classify(result, doing: "list the ruleset") }
        return result.stdout
    }

    /// Deletes table inet NAME in one transaction. Returns false when it was not there (not an
    /// error: removing is idempotent), true when it was deleted.
    @discardableResult
    public func deleteTable(name: String) throws(RulesError) -> Bool {
        // Not `list` first: nft 1.0.6 resolves every cgroup id in a listing back to a path by
        // walking cgroupfs, which took 52 s with 1,000 classified cgroups. Delete and read ENOENT.
        let table = try NftText.validateIdentifier(name, what: "table name")
        let result = try runNft(["delete", "table", "inet", table])
        if result.status == 0 { return true }
        if result.stderr.contains("No such file or directory") { return false }
        throw Self.classify(result, doing: "delete table inet \(table)")
    }

    // MARK: nfowner operations

    /// Installs or replaces nfowner's table for `spec` atomically, recording `installer` in its
    /// comment.
    public func install(_ spec: RulesetSpec, installer: TableInstaller? = nil) throws(RulesError) {
        try apply(script: NftScriptRenderer.install(spec, installer: installer))
    }

    /// Deletes nfowner's table; returns whether it existed.
    @discardableResult
    /// The packet-socket table of the same name (`table netdev`) goes too, also when this run
    /// did not ask for one (one left by a run that was killed); without packet sockets asked
    /// for, a failure to delete it (a kernel without netdev tables) is not this run's error.
    public func remove(_ spec: RulesetSpec) throws(RulesError) -> Bool {
        let removed = try deleteTable(name: spec.tableName)
        do {
            try deletePacketSocketTable(name: spec.tableName)
        } catch where !spec.packetSocketInterfaces.isEmpty {
            throw error
        } catch {}
        return removed
    }

    /// Whether `table netdev NAME` (the packet-socket table) is installed.
    public func hasPacketSocketTable(name: String) -> Bool {
        guard let table = try? NftText.validateIdentifier(name, what: "table name"),
              let result = try? runNft(["list", "table", "netdev", table]) else { return false }
        return result.status == 0
    }

    /// Deletes `table netdev NAME` when it is there.
    func deletePacketSocketTable(name: String) throws(RulesError) {
        let table = try NftText.validateIdentifier(name, what: "table name")
        let result = try runNft(["delete", "table", "netdev", table])
        guard result.status != 0, !result.stderr.contains("No such file or directory") else { return }
        throw Self.classify(result, doing: "delete table netdev \(table)")
    }

    /// Checks that the kernel accepts nf_tables and an NFLOG `log group` rule, without changing
    /// anything (two `nft --check` runs on a throwaway table). Throws `.kernelUnsupported` naming
    /// the missing piece, `.permissionDenied` when not root, or whatever nft reported.
    public func probeLogSupport(group: UInt16 = RulesetSpec.defaultGroup) throws(RulesError) {
        let base = "table inet nfowner_probe {\n\tchain output {\n\t\ttype filter hook output priority 0; policy accept;\n"
        do {
            try check(script: base + "\t}\n}\n")
        } catch let error where error.code == .nftFailed {
            throw RulesError(.kernelUnsupported,
                "the kernel refused an nftables table (is nf_tables available? try: modprobe nf_tables): \(error.reason)")
        }
        do {
            try check(script: base + "\t\tlog group \(group) snaplen 128\n\t}\n}\n")
        } catch let error where error.code == .nftFailed {
            throw RulesError(.kernelUnsupported,
                "the kernel refused a `log group` rule: it lacks nft_log or nfnetlink_log "
                + "(try: modprobe nft_log nfnetlink_log): \(error.reason)")
        }
    }

    /// Reads a file as seen from inside the namespace (for /proc/net files, which are per
    /// namespace): directly without a namespace, else through `nsenter --net=… cat`.
    public func readNamespaceFile(_ path: String) throws(RulesError) -> String {
        guard let netns else {
            do {
                return try String(contentsOfFile: path, encoding: .utf8)
            } catch {
                throw RulesError(.ioFailure, "cannot read \(path): \(error.localizedDescription)")
            }
        }
        let result = try runInNamespace(netns, ["cat", path], input: nil)
        guard result.status == 0 else {
            throw RulesError(.ioFailure, "cannot read \(path) in namespace \(netns): \(Self.trimmed(result.stderr))")
        }
        return result.stdout
    }

    // MARK: running

    func resolvedNftPath() throws(RulesError) -> String {
        if let nftPath {
            guard FileManager.default.isExecutableFile(atPath: nftPath) else {
                throw RulesError(.nftNotFound, "nft not found at \(nftPath): install the nftables package (apt-get install nftables)")
            }
            return nftPath
        }
        guard let found = Subprocess.locate("nft", candidates: Self.nftCandidates) else {
            throw RulesError(.nftNotFound, "nft not found: install the nftables package (apt-get install nftables)")
        }
        return found
    }

    func runNft(_ arguments: [String], input: String? = nil) throws(RulesError) -> SubprocessResult {
        let nft = try resolvedNftPath()
        guard let netns else { return try Subprocess.run(nft, arguments, input: input) }
        return try runInNamespace(netns, [nft] + arguments, input: input)
    }

    private func runInNamespace(_ name: String, _ command: [String], input: String?) throws(RulesError) -> SubprocessResult {
        let path = try Self.namespacePath(name)
        guard let nsenter = Subprocess.locate("nsenter", candidates: Self.nsenterCandidates) else {
            throw RulesError(.nsenterNotFound, "nsenter not found (needed for --netns): install util-linux")
        }
        return try Subprocess.run(nsenter, ["--net=\(path)", "--"] + command, input: input)
    }

    /// `/run/netns/NAME` after checking NAME is a plain file name and the file exists.
    static func namespacePath(_ name: String) throws(RulesError) -> String {
        guard !name.isEmpty, name != ".", name != "..", !name.contains("/"), !name.utf8.contains(0) else {
            throw RulesError(.namespaceNotFound, "invalid network namespace name '\(NftText.printable(name))': give a name from `ip netns list`")
        }
        let path = "/run/netns/" + name
        guard FileManager.default.fileExists(atPath: path) else {
            throw RulesError(.namespaceNotFound, "network namespace '\(name)' not found (\(path) does not exist): create it with `ip netns add \(name)` or check `ip netns list`")
        }
        return path
    }

    /// Maps a failed nft (or nsenter) run to an error that names the cause and the fix.
    static func classify(_ result: SubprocessResult, doing action: String) -> RulesError {
        let stderr = trimmed(result.stderr)
        if stderr.contains("Operation not permitted") || stderr.contains("Permission denied") {
            return RulesError(.permissionDenied, "cannot \(action): needs CAP_NET_ADMIN: run as root (nft said: \(stderr))")
        }
        if stderr.contains("Protocol not supported") || stderr.contains("Address family not supported") {
            return RulesError(.kernelUnsupported,
                "cannot \(action): the kernel has no nf_tables support (try: modprobe nf_tables) (nft said: \(stderr))")
        }
        return RulesError(.nftFailed, "cannot \(action): nft exited with status \(result.status): \(stderr)")
    }

    static func trimmed(_ text: String) -> String {
        text.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}
