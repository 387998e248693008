import PacketModel
import PacketSources

/// What the pipeline counted after the source: printed with the source's counters as the
/// `key=value` summary line on exit.
public struct PipelineCounters: Sendable, Equatable {
    /// Packets whose IP header could not be parsed.
    public var parseErrors: UInt64 = 0
    /// Packets handed to the sinks (received minus parse errors; bounded by --count).
    public var emitted: UInt64 = 0
    /// IP datagram bytes of the received packets, from their headers.
    public var bytes: UInt64 = 0
    /// Packets that carried an owner uid.
    public var withOwner: UInt64 = 0
    /// Flows (resolutions, not packets) whose owner's cgroup — the named process's own — differs
    /// from the cgroup the ruleset classified the packet into; nil when owner resolution is off.
    public var cgroupCorrections: Int?
    /// Emitted packets per confidence, and those of confidence `none` per kind of reason; nil
    /// when owner resolution is off. Every emitted packet is counted in exactly one.
    public var attributions: AttributionTallies?
    /// Frames packet sockets sent, logged at a device (see `PacketSocketTable`), and of those
    /// the ones without an IP packet (ARP, another EtherType), which are counted only; nil
    /// when the run logs no packet sockets.
    public var linkFrames: UInt64?
    public var nonIPFrames: UInt64?
    /// Programs whose exec was read after they exited, named from the kernel's exit record
    /// (docs/processes.md); nil when owner resolution is off.
    public var namedFromExitRecords: Int?

    public init() {}
}

/// Everything a run counted, as the summary line prints it.
///
/// The summary line is a public contract (docs/monitor.md): keys are only ever added.
public struct SessionCounters: Sendable, Equatable {
    public var source = SourceCounters()
    public var pipeline = PipelineCounters()
    /// The cgroup follower's changes to the ruleset; nil when no follower ran.
    public var follower: FollowerCounters?

    public init(source: SourceCounters = SourceCounters(), pipeline: PipelineCounters = PipelineCounters(),
                follower: FollowerCounters? = nil) {
        self.source = source
        self.pipeline = pipeline
        self.follower = follower
    }

    /// e.g. `received=12 lost=0 enobufs=0 parse_errors=0 emitted=12 ...`; `durationSeconds`
    /// nil leaves `duration_s` out (a trace, whose length is the command's). `suffix`: the
    /// command's own keys (`" exit_status=0"`), which came last before keys added since
    /// (`cgroup_corrections`), and keep their place.
    public func summaryLine(durationSeconds: Double?, groups: [UInt16], suffix: String = "") -> String {
        let groupList = groups.map(String.init).joined(separator: ",")
        var line = "received=\(source.received) lost=\(source.lost) enobufs=\(source.enobufs) "
            + "parse_errors=\(source.malformed + pipeline.parseErrors) emitted=\(pipeline.emitted) "
            + "with_owner=\(pipeline.withOwner) bytes=\(pipeline.bytes) batches=\(source.batches) "
            + "truncated_batches=\(source.truncatedBatches) groups=\(groupList)"
        if let durationSeconds {
            line += " duration_s=\((durationSeconds * 1000).rounded() / 1000)"
        }
        line += " wakeups=\(source.wakeups)"
        if let follower {
            line += " cgroups_added=\(follower.added) cgroups_removed=\(follower.removed) "
                + "cgroup_update_failures=\(follower.failures)"
        }
        line += suffix
        if let corrections = pipeline.cgroupCorrections {
            line += " cgroup_corrections=\(corrections)"
        }
        if let held = source.held {
            line += " held=\(held) held_verdict_failures=\(source.heldVerdictFailures ?? 0)"
        }
        // Added after the held keys (issue 13), so they come after them.
        if let attributions = pipeline.attributions { line += attributions.summaryKeys }
        if let frames = pipeline.linkFrames { line += " link_frames=\(frames) non_ip_frames=\(pipeline.nonIPFrames ?? 0)" }
        // Added after the packet-socket keys, so it comes after them.
        if let named = pipeline.namedFromExitRecords { line += " exe_from_exit_records=\(named)" }
        return line
    }
}

/// What the cgroup follower changed in the ruleset.
public struct FollowerCounters: Sendable, Equatable {
    public var added = 0
    public var removed = 0
    public var failures = 0
    public init(added: Int = 0, removed: Int = 0, failures: Int = 0) {
        self.added = added
        self.removed = removed
        self.failures = failures
    }
}
