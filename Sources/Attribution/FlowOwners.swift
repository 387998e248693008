import PacketModel
import PacketParsing

/// The last known owner of each connection, by its local and remote ends, whatever the
/// direction of the packet it was found for.
///
/// The flow cache answers a packet from its own flow key, which includes the direction and the
/// uid the kernel attached: the packets of one connection that carry no uid — inbound ones the
/// kernel did not early-demux (loopback), and everything after close() (data still queued, FIN,
/// TIME-WAIT ACKs) — are other flows to it. This memo lets them find the owner the connection's
/// socket was found with. It is written only when a flow is resolved to a named process and
/// read only when a flow without a uid is resolved, so it costs nothing per packet.
///
/// Bounded: at most `capacity` connections; when full, those not seen for `retention` go
/// first, then everything (a rare reset beats bookkeeping on the hot path's side).
///
/// Compact, because a flood of new connections fills it: a connection is kept as a 64-bit
/// fingerprint of its key with a 32-bit check from a second mix, and its owner as an index into
/// a table of the distinct attributions (a few processes own most connections) — 24 bytes an
/// entry where the key and the attribution inline took 136 (65,536 connections held 24 MiB of
/// RSS, and `monitor`'s 1M-flow bound of 64 MiB was exceeded). The table's storage is reserved
/// up front, so it never regrows (pages it does not use are never touched).
final class FlowOwners {
    struct Owner {
        var attribution: OwnerAttribution
        /// The owner's uid (the socket's).
        var uid: UInt32
        /// Monotonic ns when it was found.
        var foundAt: UInt64
    }

    /// How long after it was last found an owner is still credited (ns): TIME_WAIT and an
    /// orphan's FIN_WAIT2 last 60 s here (tcp_fin_timeout), plus room for a slow drain.
    static let defaultRetention: UInt64 = 120_000_000_000
    static let defaultCapacity = 65_536

    /// Distinct attributions held before everything is forgotten at once.
    static let defaultMaximumAttributions = 4_096

    let retention: UInt64
    let capacity: Int
    let maximumAttributions: Int

    private struct Entry {
        var check: UInt32
        var uid: UInt32
        var attribution: UInt32
        var foundAt: UInt64
    }
    private var entries: [UInt64: Entry] = [:]
    private var attributions: [OwnerAttribution] = []
    private var attributionIndex: [OwnerAttribution: UInt32] = [:]

    init(retention: UInt64 = FlowOwners.defaultRetention, capacity: Int = FlowOwners.defaultCapacity,
         maximumAttributions: Int = FlowOwners.defaultMaximumAttributions) {
        self.retention = retention
        self.capacity = max(1, capacity)
        self.maximumAttributions = max(1, maximumAttributions)
        entries.reserveCapacity(self.capacity)
    }

    var count: Int { entries.count }

    /// The key's fingerprint and check: two multiply-xorshift mixes of its words with different
    /// seeds. Two connections alike in both (1 in 2^96 per pair) would share an owner.
    private static func fingerprint(_ key: FlowKey) -> (UInt64, UInt32) {
        (key.mixed(), UInt32(truncatingIfNeeded: key.mixed(seed: 0xD6E8_FEB8_6659_FD93) >> 17))
    }

    /// The connection `packet` belongs to as seen from this host: its local end (the source of
    /// an outbound packet, the destination of an inbound one) as the key's source. nil for a
    /// packet that names no connection: a later fragment, an ICMP message other than an echo
    /// request leaving or an echo reply arriving (only those belong to a ping socket; the
    /// opposite two are the kernel's own business).
    static func connection(of packet: PacketSummary, direction: Direction) -> FlowKey? {
        let outbound = direction == .outbound
        let (local, remote) = outbound ? (packet.source, packet.destination) : (packet.destination, packet.source)
        var localPort: UInt16 = 0, remotePort: UInt16 = 0
        switch packet.transport {
        case .notFirstFragment:
            return nil
        case .icmp(let info), .icmpv6(let info):
            let request: UInt8 = packet.family == .ipv4 ? 8 : 128, reply: UInt8 = packet.family == .ipv4 ? 0 : 129
            guard let echoID = info.echoIdentifier, info.type == (outbound ? request : reply) else { return nil }
            localPort = echoID
        default:
            guard let source = packet.sourcePort, let destination = packet.destinationPort else {
                // A protocol without ports (a raw socket's): keyed by the addresses alone.
                break
            }
            (localPort, remotePort) = outbound ? (source, destination) : (destination, source)
        }
        return FlowKey(source: local, destination: remote, protocolNumber: packet.protocolNumber,
                       sourcePort: localPort, destinationPort: remotePort, inbound: false, uid: nil)
    }

    /// The flow-cache keys of `connection`'s packets without a uid, both directions (see
    /// `FlowKey.init(packet:direction:uid:)`; an echo's are keyed by id and type).
    static func keysWithoutUID(of connection: FlowKey) -> [FlowKey] {
        let local = connection.source, remote = connection.destination
        let localPort = connection.sourcePort, remotePort = connection.destinationPort
        let protocolNumber = connection.protocolNumber
        let (outboundPorts, inboundPorts): ((UInt16, UInt16), (UInt16, UInt16)) = switch protocolNumber {
        case IPProtocolNumber.icmp: ((localPort, 8), (localPort, 0))
        case IPProtocolNumber.icmpv6: ((localPort, 128), (localPort, 129))
        default: ((localPort, remotePort), (remotePort, localPort))
        }
        return [
            FlowKey(source: local, destination: remote, protocolNumber: protocolNumber, sourcePort: outboundPorts.0,
                    destinationPort: outboundPorts.1, inbound: false, uid: nil),
            FlowKey(source: remote, destination: local, protocolNumber: protocolNumber, sourcePort: inboundPorts.0,
                    destinationPort: inboundPorts.1, inbound: true, uid: nil),
        ]
    }

    /// Remembers that `connection` is owned by the process(es) of `attribution` with `uid`. An
    /// `exact` owner found within the retention is not replaced by a weaker answer (the socket
    /// found, then gone by the time a later, batched packet of it was resolved): only by
    /// another exact one.
    func remember(_ connection: FlowKey, _ attribution: OwnerAttribution, uid: UInt32, now: UInt64) {
        if attribution.confidence != .exact, let known = owner(of: connection, now: now),
           known.attribution.confidence == .exact {
            return
        }
        let (print, check) = Self.fingerprint(connection)
        if entries[print] == nil, entries.count >= capacity {
            removeExpired(now: now)
            if entries.count >= capacity { entries.removeAll(keepingCapacity: true) }
        }
        let index = intern(attribution)
        entries[print] = Entry(check: check, uid: uid, attribution: index, foundAt: now)
    }

    /// `attribution`'s index in the table; a full table is emptied first, with every entry (they
    /// name attributions by index).
    private func intern(_ attribution: OwnerAttribution) -> UInt32 {
        if let index = attributionIndex[attribution] { return index }
        if attributions.count >= maximumAttributions {
            entries.removeAll(keepingCapacity: true)
            attributions.removeAll(keepingCapacity: true)
            attributionIndex.removeAll(keepingCapacity: true)
        }
        let index = UInt32(attributions.count)
        attributions.append(attribution)
        attributionIndex[attribution] = index
        return index
    }

    /// The owner of `connection` found less than `maximumAge` ns before `now` (at most the
    /// retention), or nil.
    func owner(of connection: FlowKey, now: UInt64, maximumAge: UInt64? = nil) -> Owner? {
        let (print, check) = Self.fingerprint(connection)
        guard let entry = entries[print], entry.check == check,
              now &- entry.foundAt < min(maximumAge ?? retention, retention)
        else { return nil }
        return Owner(attribution: attributions[Int(entry.attribution)], uid: entry.uid, foundAt: entry.foundAt)
    }

    /// Drops owners older than the retention. Called from the periodic housekeeping, it scans
    /// the memo at most once per `evictionInterval`, not on every tick.
    func evictExpired(now: UInt64) {
        guard !entries.isEmpty, now &- lastEviction >= Self.evictionInterval else { return }
        lastEviction = now
        removeExpired(now: now)
    }

    /// Removes expired entries in place (`filter` would build a second table beside the first).
    /// The attribution table is emptied when no entry is left to name one.
    private func removeExpired(now: UInt64) {
        let expired = entries.compactMap { now &- $0.value.foundAt >= retention ? $0.key : nil }
        for key in expired { entries.removeValue(forKey: key) }
        if entries.isEmpty {
            attributions.removeAll(keepingCapacity: true)
            attributionIndex.removeAll(keepingCapacity: true)
        }
    }

    private var lastEviction: UInt64 = 0
    static let evictionInterval: UInt64 = 10_000_000_000
}
