// `nfowner rules status`: is the table there, is it the one this spec renders, what have its
// rules counted, and who listens on the NFLOG group.

import Foundation
import NetfilterSystem

/// A process holding the NFLOG group's netlink socket.
public struct NflogHolder: Sendable, Equatable {
    public var pid: Int32
    /// /proc/PID/comm, or "" when it could not be read (the process just exited).
    public var command: String

    public init(pid: Int32, command: String) {
        self.pid = pid
        self.command = command
    }
}

extension NflogHolder: CustomStringConvertible {
    /// e.g. "pid 812 nfowner"
    public var description: String { command.isEmpty ? "pid \(pid)" : "pid \(pid) \(command)" }
}

/// What `status` found.
public struct RulesStatus: Sendable, Equatable, CustomStringConvertible {
    public var tableName: String
    public var netns: String?
    /// The table exists.
    public var installed: Bool
    /// Hash from the installed table's comment; nil when not installed or the comment is missing.
    public var installedHash: String?
    /// Hash of what the spec renders now.
    public var expectedHash: String
    /// Counters of nfowner's log rules (one per chain); empty when not installed.
    public var counters: [RuleCounters]
    /// The spec's NFLOG group.
    public var group: UInt16
    /// The kernel's instance for the group, or nil when no process is bound to it (packets
    /// logged to an unbound group are dropped by the kernel).
    public var listener: NflogInstance?
    /// Processes holding the listener's socket (more than one after fork or fd passing; empty
    /// when the socket could not be traced to a process).
    public var listenerProcesses: [NflogHolder]
    /// Who installed the table, from its comment; nil when not installed or not recorded (an
    /// older comment: treated as `rules install`).
    public var installer: TableInstaller?
    /// For a table a monitor installed for its run: whether that monitor (same pid and start
    /// time) still runs. Nil otherwise.
    public var installerRunning: Bool?
    /// The group each flow's first packet is logged to, when it is a group of its own, with its
    /// listener as for `group` (nil and [] when unbound).
    public var newFlowGroup: UInt16?
    public var newFlowListener: NflogInstance?
    public var newFlowListenerProcesses: [NflogHolder] = []

    public init(tableName: String, netns: String?, installed: Bool, installedHash: String?, expectedHash: String,
                counters: [RuleCounters], group: UInt16, listener: NflogInstance?, listenerProcesses: [NflogHolder],
                installer: TableInstaller? = nil, installerRunning: Bool? = nil) {
        self.installer = installer
        self.installerRunning = installerRunning
        self.tableName = tableName
        self.netns = netns
        self.installed = installed
        self.installedHash = installedHash
        self.expectedHash = expectedHash
        self.counters = counters
        self.group = group
        self.listener = listener
        self.listenerProcesses = listenerProcesses
    }

    /// Installed, and its hash equals the spec's rendering.
    public var current: Bool { installed && installedHash == expectedHash }

    /// One word for the table state: "absent", "current", or "different".
    public var state: String { !installed ? "absent" : (current ? "current" : "different") }

    public var totalPackets: UInt64 { counters.reduce(0) { $0 &+ $1.packets } }
    public var totalBytes: UInt64 { counters.reduce(0) { $0 &+ $1.bytes } }

    /// Multi-line, for people.
    public var description: String {
        var lines: [String] = []
        let place = netns.map { " in network namespace \($0)" } ?? ""
        switch state {
        case "absent":
            lines.append("table inet \(tableName)\(place): not installed (run `nfowner rules install`)")
        case "current":
            lines.append("table inet \(tableName)\(place): installed, current")
        default:
            lines.append("table inet \(tableName)\(place): installed, but differs from this configuration "
                + "(run `nfowner rules install` to replace it)")
        }
        if installed { lines.append("  installed by " + installerText) }
        for counter in counters {
            lines.append("  chain \(counter.chain): \(counter.packets) packets, \(counter.bytes) bytes logged")
        }
        lines.append(Self.listenerLine("NFLOG group \(group)", listener, listenerProcesses))
        if let newFlowGroup {
            lines.append(Self.listenerLine("NFLOG group \(newFlowGroup) (each flow's first packet)", newFlowListener,
                                           newFlowListenerProcesses))
        }
        return lines.joined(separator: "\n")
    }

    private static func listenerLine(_ name: String, _ listener: NflogInstance?, _ holders: [NflogHolder]) -> String {
        guard let listener else {
            return "\(name): no listener (logged packets are discarded; start `nfowner monitor`)"
        }
        let who = holders.isEmpty
            ? "portid \(listener.portID) (process not found)"
            : holders.map { "pid \($0.pid) (\($0.command))" }.joined(separator: ", ")
        return "\(name): bound by \(who); \(listener.queueLength) queued, "
            + "copy range \(listener.copyRange) bytes, flush timeout \(listener.flushTimeout)/100 s"
    }

    /// "`nfowner rules install`", "monitor pid 812 (running; it removes the table when it exits)", ….
    public var installerText: String {
        guard let installer else { return "`nfowner rules install` (not recorded: an older nfowner)" }
        switch (installer, installerRunning) {
        case (.monitor, true?):
            return installer.description + " (running; it removes the table when it exits)"
        case (.monitor, _):
            return installer.description + " (not running; the next monitor adopts the table and removes it on exit)"
        default:
            return installer.description + " (stays installed until `nfowner rules remove`)"
        }
    }

    /// `key=value` lines, stable keys, for scripts.
    public var keyValueText: String {
        var pairs: [(String, String)] = [
            ("table", "inet \(tableName)"),
            ("netns", netns ?? ""),
            ("installed", String(installed)),
            ("current", String(current)),
            ("state", state),
            ("installed_hash", installedHash ?? ""),
            ("expected_hash", expectedHash),
            ("packets", String(totalPackets)),
            ("bytes", String(totalBytes)),
            ("group", String(group)),
            ("listener_portid", listener.map { String($0.portID) } ?? ""),
            ("listener_pids", listenerProcesses.map { String($0.pid) }.joined(separator: ",")),
        ]
        if let listener { pairs.append(("listener_queued", String(listener.queueLength))) }
        pairs.append(("installer", installed ? (installer?.keyword ?? "rules-install") : ""))
        if case .monitor(let stamp)? = installer {
            pairs.append(("installer_pid", String(stamp.pid)))
            pairs.append(("installer_running", String(installerRunning ?? false)))
        }
        if let newFlowGroup {
            pairs.append(("new_flow_group", String(newFlowGroup)))
            pairs.append(("new_flow_listener_pids", newFlowListenerProcesses.map { String($0.pid) }.joined(separator: ",")))
        }
        return pairs.map { "\($0.0)=\($0.1)" }.joined(separator: "\n") + "\n"
    }

    /// One JSON object (no trailing newline).
    public var json: String {
        func string(_ s: String?) -> String { s.map(Self.jsonQuoted) ?? "null" }
        let counterItems = counters.map {
            "{\"chain\":\(Self.jsonQuoted($0.chain)),\"packets\":\($0.packets),\"bytes\":\($0.bytes)}"
        }
        func listenerJSON(_ listener: NflogInstance?, _ holders: [NflogHolder]) -> String {
            listener.map {
                "{\"portid\":\($0.portID),\"queued\":\($0.queueLength),\"copy_mode\":\($0.copyMode),"
                    + "\"copy_range\":\($0.copyRange),\"flush_timeout_centiseconds\":\($0.flushTimeout),"
                    + "\"processes\":[" + holders.map {
                        "{\"pid\":\($0.pid),\"command\":\(Self.jsonQuoted($0.command))}"
                    }.joined(separator: ",") + "]}"
            } ?? "null"
        }
        let newFlows = newFlowGroup.map {
            ",\"new_flow_group\":\($0),\"new_flow_listener\":\(listenerJSON(newFlowListener, newFlowListenerProcesses))"
        } ?? ""
        return "{\"table\":\(Self.jsonQuoted(tableName)),\"family\":\"inet\",\"netns\":\(string(netns)),"
            + "\"installed\":\(installed),\"current\":\(current),\"state\":\(Self.jsonQuoted(state)),"
            + "\"installed_hash\":\(string(installedHash)),\"expected_hash\":\(Self.jsonQuoted(expectedHash)),"
            + "\"counters\":[\(counterItems.joined(separator: ","))],\"packets\":\(totalPackets),\"bytes\":\(totalBytes),"
            + "\"group\":\(group),\"listener\":\(listenerJSON(listener, listenerProcesses))\(newFlows),"
            + "\"installer\":\(installerJSON)}"
    }

    private var installerJSON: String {
        guard installed else { return "null" }
        var fields = ["\"by\":" + Self.jsonQuoted(installer?.keyword ?? "rules-install")]
        if case .monitor(let stamp)? = installer {
            fields.append("\"pid\":\(stamp.pid)")
            fields.append("\"start_ticks\":\(stamp.startTicks)")
            fields.append("\"running\":\(installerRunning ?? false)")
        }
        return "{" + fields.joined(separator: ",") + "}"
    }

    static func jsonQuoted(_ text: String) -> String {
        var out = "\""
        for scalar in text.unicodeScalars {
            switch scalar {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            case _ where scalar.value < 0x20:
                let hex = String(scalar.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out + "\""
    }
}

extension NftRunner {
    /// Reads the table, its counters and the group's listener. Throws on failures other than
    /// "the table does not exist" (that is `installed == false`). `procRoot` is where process
    /// directories are scanned (tests pass a fixture tree).
    public func status(_ spec: RulesetSpec, procRoot: String = "/proc") throws(RulesError) -> RulesStatus {
        let expected = try NftScriptRenderer.contentHash(spec)
        let listing = try listTable(name: spec.tableName)
        let (listener, holders) = try nflogListener(group: spec.group, procRoot: procRoot)
        // The new-flow group, when the rules log first packets to a group of their own.
        let newFlowGroup = spec.newFlowSeconds > 0 ? spec.newFlowGroup.flatMap { $0 == spec.group ? nil : $0 } : nil
        let installer = listing.flatMap(TableComment.find(inListing:))?.installer
        var running: Bool? = nil
        if case .monitor(let stamp)? = installer { running = stamp.isRunning(procRoot: procRoot) }
        var status = RulesStatus(
            tableName: spec.tableName, netns: netns, installed: listing != nil,
            installedHash: listing.flatMap(StatusParsers.parseInstalledHash), expectedHash: expected,
            counters: listing.map(StatusParsers.parseRuleCounters) ?? [], group: spec.group,
            listener: listener, listenerProcesses: holders, installer: installer, installerRunning: running)
        if let newFlowGroup {
            status.newFlowGroup = newFlowGroup
            (status.newFlowListener, status.newFlowListenerProcesses) = try nflogListener(group: newFlowGroup,
                                                                                           procRoot: procRoot)
        }
        return status
    }

    /// The NFLOG instance bound to `group` in this runner's namespace and the processes holding
    /// its socket (found through /proc/net/netlink and /proc/PID/fd); nil and [] when unbound.
    public func nflogListener(group: UInt16, procRoot: String = "/proc") throws(RulesError)
        -> (instance: NflogInstance?, processes: [NflogHolder]) {
        let instances = try StatusParsers.parseNflogInstances(
            readOptionalNamespaceFile("/proc/net/netfilter/nfnetlink_log"))
        guard let listener = instances.first(where: { $0.group == group }) else { return (nil, []) }
        let sockets = try StatusParsers.parseNetlinkSockets(readNamespaceFile("/proc/net/netlink"))
        let inode = sockets.first {
            $0.netlinkProtocol == NetlinkSocketEntry.netfilterProtocol && $0.portID == listener.portID
        }?.inode
        guard let inode else { return (listener, []) }
        let holders = ProcessDescriptors.holders(ofSocketInode: inode, procRoot: procRoot).map { pid in
            NflogHolder(pid: pid, command: Self.command(of: pid, procRoot: procRoot))
        }
        return (listener, holders)
    }

    /// /proc/PID/comm, trimmed; "" when it could not be read (the process just exited).
    private static func command(of pid: Int32, procRoot: String) -> String {
        let comm = (try? String(contentsOfFile: "\(procRoot)/\(pid)/comm", encoding: .utf8)) ?? ""
        return comm.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    /// The nfnetlink_log file exists only once the module is loaded: absent means no listeners.
    private func readOptionalNamespaceFile(_ path: String) throws(RulesError) -> String {
        if netns == nil && !FileManager.default.fileExists(atPath: path) { return "" }
        do {
            return try readNamespaceFile(path)
        } catch let error where error.code == .ioFailure && error.reason.contains("No such file") {
            return ""
        }
    }
}
