import NetfilterSystem
import PacketModel
import PacketParsing

/// The attribution stage of the pipeline: from a parsed packet, the uid the kernel reported and
/// the cgroup class in its prefix, to its owner — the cgroup's path and unit, the process(es)
/// behind it (through `OwnerResolution`: flow cache, process table, socket lookup), and the
/// user, group and interface names.
///
/// Owned by the receive thread; the readers it uses are injected, so tests run it on fixtures.
/// A class: the pipeline calls it for every packet, and copying its references in and out of a
/// struct cost more than the lookups (≈ 400 instructions per packet, measured with callgrind).
public final class AttributionEngine {
    /// cgroup id → path and unit; nil when there is no cgroup2 (owners then carry only the id).
    public let cgroups: CgroupNames?
    /// Names the process behind each packet; nil when owner resolution is off.
    ///
    /// Per packet it is called through optional chaining (`processes?.…`), never bound with
    /// `if let`/`guard let`: a bound copy of the existential is retained and released around the
    /// call, a pair of atomic operations that cost 14–16% of the receive thread's CPU in
    /// `monitor --format none` and `--format json` (perf, 64 B at full speed).
    public let processes: (any PacketAttributing)?
    // Touched per packet by the receive thread alone: no runtime exclusivity checks.
    @exclusivity(unchecked) public var names: OwnerNames
    @exclusivity(unchecked) public var interfaces: InterfaceNames

    public init(cgroups: CgroupNames? = nil, processes: (any PacketAttributing)? = nil,
                names: OwnerNames = OwnerNames(), interfaces: InterfaceNames = InterfaceNames()) {
        self.cgroups = cgroups
        self.processes = processes
        self.names = names
        self.interfaces = interfaces
    }

    /// Resolves the packet's process (or finds it cached) and hands out only how the summary
    /// line counts it: the same work as `owner`, for runs that only count. nil when owner
    /// resolution is off.
    /// Discardable: a held packet (hold mode) is resolved only to fill the cache; its logged
    /// copy is the one counted.
    @inline(__always) @discardableResult
    public func resolve(_ packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupID: UInt64?,
                        now: UInt64) -> AttributionTally? {
        guard processes != nil else { return nil }
        let path = cgroupID.flatMap { cgroups?.entry(forID: $0)?.path }
        return processes?.resolve(packet: packet, direction: direction, uid: uid, cgroupPath: path, now: now)
    }

    /// `resolve` for a caller that built the packet's `FlowKey(packet:direction:uid:)`: the
    /// tally, and whether the flow cache gave it. A cached flow's packet reads no
    /// classification (no cgroup path looked up and retained per packet). nil when owner
    /// resolution is off.
    @inline(__always)
    public func resolve(_ packet: PacketSummary, key: FlowKey, direction: Direction, uid: UInt32?,
                        cgroupID: UInt64?, now: UInt64) -> (tally: AttributionTally, cached: Bool)? {
        guard processes != nil else { return nil }
        if let tally = processes?.cachedTally(key, now: now) ?? nil { return (tally, true) }
        let path = cgroupID.flatMap { cgroups?.entry(forID: $0)?.path }
        guard let tally = processes?.resolveUncached(key, packet: packet, direction: direction, uid: uid,
                                                     cgroupPath: path, now: now)
        else { return nil }
        return (tally, false)
    }

    /// The process(es) behind the packet, without names.
    public func attribution(_ packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupID: UInt64?,
                            now: UInt64) -> (cgroup: CgroupNames.Entry?, attribution: OwnerAttribution?) {
        let cgroup = cgroupID.flatMap { cgroups?.entry(forID: $0) }
        let attribution = processes?.attribute(packet: packet, direction: direction, uid: uid,
                                               cgroupPath: cgroup?.path, now: now)
        return (cgroup, attribution)
    }

    /// For sinks of facts: brings `attribution` (and its `identity`, see
    /// `PacketAttributing.update`) up to this packet's answer, replacing it only when the
    /// answer differs, so a steady flow of packets copies nothing. Returns how the summary line
    /// counts the answer and whether the flow cache gave it; nil (and `attribution` nil) without
    /// owner resolution. `key`: the packet's `FlowKey(packet:direction:uid:)`.
    public func updateAttribution(_ attribution: inout OwnerAttribution?, identity: inout UInt64, key: FlowKey,
                                  packet: PacketSummary, direction: Direction, uid: UInt32?, cgroupID: UInt64?,
                                  now: UInt64) -> (tally: AttributionTally, cached: Bool)? {
        guard processes != nil else {
            if attribution != nil { attribution = nil }
            return nil
        }
        // A cached flow's packet reads no classification (see `updateCached`).
        if let tally = processes?.updateCached(&attribution, identity: &identity, key: key, now: now) ?? nil {
            return (tally, true)
        }
        refreshClassification(cgroupID)
        guard let tally = processes?.update(&attribution, identity: &identity, key: key, packet: packet,
                                            direction: direction, uid: uid, cgroupPath: classifiedPath, now: now)
        else { return nil }
        return (tally, false)
    }

    /// Everything known of the packet's owner, names included. The cgroup is the named
    /// process's own when the attribution has one (see `OwnerAttribution.cgroup`), else the
    /// ruleset's classification.
    public func owner(_ packet: PacketSummary, direction: Direction, uid: UInt32?, gid: UInt32?,
                               cgroupID: UInt64?, now: UInt64) -> PacketOwner {
        let (cgroup, attribution) = attribution(packet, direction: direction, uid: uid, cgroupID: cgroupID, now: now)
        var owner = PacketOwner(uid: uid, gid: gid, userName: uid.flatMap { names.userName(of: $0) },
                                groupName: gid.flatMap { names.groupName(of: $0) }, cgroupID: cgroupID,
                                cgroupPath: cgroup?.path, unit: cgroup?.unit, attribution: attribution)
        Self.setCgroup(of: &owner, classifiedID: cgroupID, classifiedPath: cgroup?.path, classifiedUnit: cgroup?.unit)
        return owner
    }

    // The classified cgroup (from the log prefix) of the packet before: `update` looks its path
    // up again only when the id changes (or the path was not known yet). Plain stored values, not
    // an optional tuple or an `Entry`: they are read for every packet, and copying strings costs
    // retains. `classifiedKnown` is false before the first packet and after `forgetNames`.
    @exclusivity(unchecked) private var classifiedKnown = false
    @exclusivity(unchecked) private var classifiedID: UInt64?
    @exclusivity(unchecked) private var classifiedPath: String?
    @exclusivity(unchecked) private var classifiedUnit: String?
    /// Bumped whenever the classification above changes; each direction's owner records the
    /// one its cgroup was set from (the pipeline keeps an owner per direction, and the packet
    /// before may have been the other direction's).
    @exclusivity(unchecked) private var classificationVersion: UInt64 = 0
    @exclusivity(unchecked) private var outboundOwnerVersion: UInt64 = .max
    @exclusivity(unchecked) private var inboundOwnerVersion: UInt64 = .max
    /// The identity (`PacketAttributing.update`) of the attribution each direction's owner holds;
    /// .max when unknown (set another way, or forgotten).
    @exclusivity(unchecked) private var outboundIdentity: UInt64 = .max
    @exclusivity(unchecked) private var inboundIdentity: UInt64 = .max

    /// Looks the classified cgroup's path and unit up again when the id differs from the packet
    /// before's (or its path was not known yet); true when it did. Inlined: every packet asks,
    /// and the answer is almost always no (a call cost ~20 instructions per packet on the facts
    /// path).
    @discardableResult @inline(__always)
    private func refreshClassification(_ cgroupID: UInt64?) -> Bool {
        guard !classifiedKnown || classifiedID != cgroupID || (cgroupID != nil && classifiedPath == nil) else { return false }
        lookUpClassification(cgroupID)
        return true
    }

    @inline(never)
    private func lookUpClassification(_ cgroupID: UInt64?) {
        let entry = cgroupID.flatMap { cgroups?.entry(forID: $0) }
        classifiedKnown = true
        classificationVersion &+= 1
        classifiedID = cgroupID
        classifiedPath = entry?.path
        classifiedUnit = entry?.unit
    }

    /// Brings `owner` up to date for this packet, writing only what differs from the packet
    /// before — the steady state of a run (one owner for many packets) then copies and retains
    /// nothing. Names and cgroup paths not known yet are looked up again (they may appear).
    /// The owner's cgroup is rewritten only when the classification or the attribution changed:
    /// a packet of a cached flow costs no more than before.
    ///
    /// The attribution is brought up to date by identity (`PacketAttributing.update`): a cached
    /// flow's packet neither copies the cached answer nor compares it with the one held. Like the
    /// cgroup's version, the identity is kept per direction: pass the same owner for a direction
    /// every time (the pipeline keeps one per direction; a fresh owner is always filled in).
    /// Returns how the summary line counts the answer (nil without owner resolution).
    @discardableResult
    public func update(_ owner: inout PacketOwner, packet: PacketSummary, direction: Direction, uid: UInt32?,
                       gid: UInt32?, cgroupID: UInt64?, now: UInt64) -> AttributionTally? {
        update(&owner, key: FlowKey(packet: packet, direction: direction, uid: uid), packet: packet,
               direction: direction, uid: uid, gid: gid, cgroupID: cgroupID, now: now)?.tally
    }

    /// `update` for a caller that built the packet's `FlowKey(packet:direction:uid:)`; also says
    /// whether the flow cache gave the answer.
    @inline(__always)
    public func update(_ owner: inout PacketOwner, key: FlowKey, packet: PacketSummary, direction: Direction,
                       uid: UInt32?, gid: UInt32?, cgroupID: UInt64?,
                       now: UInt64) -> (tally: AttributionTally, cached: Bool)? {
        updateNames(&owner, uid: uid, gid: gid)
        refreshClassification(cgroupID)
        var cgroupStale = ownerVersion(direction) != classificationVersion
        var tally: AttributionTally?
        var cached = false
        if processes != nil {
            let before = attributionIdentity(direction)
            var identity = before
            tally = processes?.updateCached(&owner.attribution, identity: &identity, key: key, now: now) ?? nil
            cached = tally != nil
            if tally == nil {
                tally = processes?.update(&owner.attribution, identity: &identity, key: key, packet: packet,
                                         direction: direction, uid: uid, cgroupPath: classifiedPath, now: now)
            }
            // .max: an attributor without identities, which may have replaced the attribution.
            if identity != before || identity == .max {
                setAttributionIdentity(direction, identity)
                cgroupStale = true
            }
        } else if owner.attribution != nil {
            owner.attribution = nil
            cgroupStale = true
        }
        if cgroupStale {
            Self.setCgroup(of: &owner, classifiedID: cgroupID, classifiedPath: classifiedPath, classifiedUnit: classifiedUnit)
            setOwnerVersion(direction)
        }
        return tally.map { ($0, cached) }
    }

    @inline(__always)
    private func attributionIdentity(_ direction: Direction) -> UInt64 {
        direction == .inbound ? inboundIdentity : outboundIdentity
    }

    @inline(__always)
    private func setAttributionIdentity(_ direction: Direction, _ identity: UInt64) {
        if direction == .inbound { inboundIdentity = identity } else { outboundIdentity = identity }
    }

    @inline(__always)
    private func ownerVersion(_ direction: Direction) -> UInt64 {
        direction == .inbound ? inboundOwnerVersion : outboundOwnerVersion
    }

    @inline(__always)
    private func setOwnerVersion(_ direction: Direction) {
        if direction == .inbound { inboundOwnerVersion = classificationVersion } else { outboundOwnerVersion = classificationVersion }
    }

    /// The uid, gid and their names, looked up again only when they change (or were not known).
    @inline(__always)
    private func updateNames(_ owner: inout PacketOwner, uid: UInt32?, gid: UInt32?) {
        if owner.uid != uid || (uid != nil && owner.userName == nil) {
            owner.uid = uid
            owner.userName = uid.flatMap { names.userName(of: $0) }
        }
        if owner.gid != gid || (gid != nil && owner.groupName == nil) {
            owner.gid = gid
            owner.groupName = gid.flatMap { names.groupName(of: $0) }
        }
    }

    /// The owner's cgroup: the attribution's (the process's own) when it has one, else the
    /// classified one. The id stays consistent with the path: the packet's id when the process is
    /// in the classified cgroup itself, else the id looked up for the process's cgroup (nil when
    /// that failed: a path with a wrong id would be worse than no id).
    static func setCgroup(of owner: inout PacketOwner, classifiedID: UInt64?, classifiedPath: String?,
                          classifiedUnit: String?) {
        if let own = owner.attribution?.cgroup {
            owner.cgroupPath = own.path
            owner.unit = own.unit
            owner.cgroupID = own.path == classifiedPath ? classifiedID : own.id
        } else {
            owner.cgroupID = classifiedID
            owner.cgroupPath = classifiedPath
            owner.unit = classifiedUnit
        }
    }

    /// The attribution of a frame a packet socket sent on interface `interface` (see
    /// `OwnerAttributor.attributeFrame`); nil without owner resolution.
    public func frameAttribution(_ packet: PacketSummary, uid: UInt32?, interface: UInt32?,
                                 now: UInt64) -> OwnerAttribution? {
        processes?.attributeFrame(packet: packet, uid: uid, interface: interface, now: now)
    }

    /// The attribution of an inbound ICMP error quoting `quoted` (see
    /// `OwnerAttributor.attributeICMPError`); nil without owner resolution.
    public func icmpErrorAttribution(quoting quoted: PacketSummary, now: UInt64) -> OwnerAttribution? {
        processes?.attributeICMPError(quoted: quoted, now: now)
    }

    /// Brings `owner` up to `attribution` for a packet whose attribution was found another way
    /// (a packet socket's frame, an ICMP error): names as `update` keeps them, the cgroup the
    /// process's own, else the classified one (none at a device's hook).
    public func update(_ owner: inout PacketOwner, attribution: OwnerAttribution?, direction: Direction, uid: UInt32?,
                       gid: UInt32?, cgroupID: UInt64?) {
        updateNames(&owner, uid: uid, gid: gid)
        owner.attribution = attribution
        setAttributionIdentity(direction, .max)
        refreshClassification(cgroupID)
        Self.setCgroup(of: &owner, classifiedID: cgroupID, classifiedPath: classifiedPath, classifiedUnit: classifiedUnit)
        setOwnerVersion(direction)
    }

    /// How frames on interface `index` start (cached); nil when its type is not one nfowner
    /// decodes or the interface is gone.
    public func linkHeader(ofInterface index: UInt32) -> LinkHeader? {
        if let known = linkHeaders[index] { return known }
        let header = InterfaceIndex.hardwareType(of: index).flatMap(LinkHeader.init(hardwareType:))
        if linkHeaders.count > 256 { linkHeaders.removeAll() }
        linkHeaders[index] = .some(header)
        return header
    }
    @exclusivity(unchecked) private var linkHeaders: [UInt32: LinkHeader?] = [:]

    /// The name of interface `index` (cached). A method, not the property from outside: a
    /// mutating access to a class's property from another module is checked at run time.
    public func interfaceName(of index: UInt32) -> String? {
        interfaces.name(of: index)
    }

    /// The receive loop reads a datagram after being busy since `busySince` (monotonic ns): its
    /// packets may have been sent that long before it is read; with `sentAfter`, not before that
    /// moment (see `PacketAttributing.readingDatagram`).
    public func datagramRead(busySince: UInt64, sentAfter: UInt64?) {
        processes?.readingDatagram(busySince: busySince, sentAfter: sentAfter)
    }

    /// Forgets cached names (on reload).
    public func forgetNames() {
        classifiedKnown = false
        outboundIdentity = .max
        inboundIdentity = .max
        linkHeaders.removeAll()
        names.forget()
        interfaces.forget()
    }
}
