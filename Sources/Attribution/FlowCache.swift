import NetfilterSystem
import PacketModel
import PacketParsing

/// The attribution of recently seen flows, in memory bounded by a maximum number of flows.
///
/// A `[FlowKey: OwnerAttribution]` dictionary costs well over 100 bytes per flow (a 56-byte key,
/// the attribution's array and strings, the dictionary's overhead). Here a flow costs one
/// 16-byte slot in one contiguous buffer, and each distinct attribution is stored once:
///
/// ```
/// slot (16 bytes, no references):
/// +---------------------------+-------------+-------------+------------------+
/// | fingerprint: UInt64       | attribution:| check:      | storedAt:        |
/// | (0 = empty slot)          | UInt16 index| UInt16      | UInt32 (ms)      |
/// +---------------------------+-------------+-------------+------------------+
/// ```
///
/// The table is open-addressed with linear probing over a power-of-two number of slots, at most
/// 3/4 full; it doubles as flows arrive, up to the slots `maximumFlows` needs, and never past.
/// Deletion shifts the rest of a probe run back (no tombstones).
///
/// **Memory.** The slots live in an anonymous mapping (`AnonymousMemory`), where an all-zero
/// slot is an empty one: a new table needs no initialization and a page becomes resident only
/// when a flow lands on it. Resizing moves the flows in old-slot order and gives each migrated
/// stretch of the old table back to the kernel at once, so the old and the new table are never
/// both resident: growing to 2^21 slots peaks near the new table's 32 MiB, not 16 + 32.
/// `removeAll()` gives every page back.
///
/// **Keys are not stored, only two hashes of them.** The fingerprint is the key's 64-bit hash
/// from Swift's `Hasher` (SipHash-1-3 keyed with a random per-process seed, so nobody outside can
/// construct colliding flows); its low bits also pick the slot. The check is 16 bits of a
/// different, unseeded hash (a multiply-xorshift mix of the key's fields). A slot answers for a
/// key only when both agree. Another flow's attribution is returned only if one of the `n` flows
/// held has exactly the same 64-bit SipHash (such a flow is always on the probe path, since
/// equal hashes share the home slot) and also the same check (≈ 2^-16 for distinct keys, and an
/// outsider cannot aim for it without the SipHash collision first): about n × 2^-80 per lookup
/// that misses the memo. With a million flows held that is ≈ 8 × 10^-19; at a sustained million
/// such lookups a second, once in about 38,000 years (2^80 / 10^12 s); at 10,000 a second with
/// 100,000 flows, once in about 38 million years. The check costs no memory: attribution
/// indexes fit 16 bits because at most 65,536 attributions are interned. Storing the keys (up to
/// 40 bytes each) would triple the memory.
///
/// An entry is valid for `lifetime` after it was stored — hits do not extend it, so a flow is
/// resolved again at least once per lifetime and a reused 5-tuple is not attributed to the old
/// owner for longer than that. `storedAt` is milliseconds of the caller's monotonic clock
/// modulo 2^32: an entry that no sweep removed for 49.7 days would look fresh again, which
/// `sweep(now:)` (called periodically) rules out.
///
/// In front of the table sits a one-entry memo of the last flow asked for, so the packets of a
/// bulk transfer skip hashing. Single-threaded, like the attributor that owns it.
public final class FlowCache {
    /// Two seconds, in nanoseconds.
    public static let defaultLifetime: UInt64 = 2_000_000_000
    public static let defaultMaximumFlows = 1_048_576
    /// What the command-line options accept (--flow-lifetime, seconds; --max-flows).
    public static let lifetimeSecondsRange: ClosedRange<UInt32> = 1...3600
    public static let maximumFlowsRange: ClosedRange<Int> = 1_024...16_777_216
    /// Distinct attributions kept before everything is dropped and interning starts over;
    /// also the most accepted, so that an attribution's index fits the slot's 16 bits.
    public static let defaultMaximumAttributions = 65_536

    /// All zero bytes is `empty` (fingerprint 0 is never a real one), which is what fresh or
    /// released anonymous memory reads as.
    struct Slot {
        var fingerprint: UInt64
        var attribution: UInt16
        var check: UInt16
        var storedAt: UInt32
        static let empty = Slot(fingerprint: 0, attribution: 0, check: 0, storedAt: 0)
    }

    /// How long an entry answers, in milliseconds.
    public let lifetimeMilliseconds: UInt32
    /// The most flows held at once.
    public let maximumFlows: Int
    public let maximumAttributions: Int
    /// Flows held (some may have expired and not been swept yet).
    public private(set) var count = 0
    /// Unexpired flows dropped to make room (the table was at `maximumFlows`, or the intern
    /// table at `maximumAttributions`).
    public private(set) var evictions = 0
    /// Lookups answered by the one-entry memo, without hashing.
    @exclusivity(unchecked) public private(set) var memoHits = 0

    /// Indices are always masked with `capacity - 1`, so every access is in bounds. A raw
    /// buffer rather than an Array: the hit path then pays no uniqueness or exclusivity checks.
    /// It points into `memory`, which is replaced together with it.
    @exclusivity(unchecked) private var slots: UnsafeMutableBufferPointer<Slot>
    private(set) var memory: AnonymousMemory
    @exclusivity(unchecked) private var mask: Int
    private let maximumCapacity: Int
    private let initialCapacity: Int
    private var attributions: [OwnerAttribution] = []
    private var internIndex: [OwnerAttribution: UInt16] = [:]
    /// Where the next incremental sweep starts.
    private var sweepCursor = 0

    /// The memo: the last flow looked up or stored (nil: none, or invalidated).
    @exclusivity(unchecked) private var memoKey: FlowKey?
    @exclusivity(unchecked) private var memoAttribution = OwnerAttribution(confidence: .none)
    @exclusivity(unchecked) private var memoStoredAt: UInt32 = 0
    /// `memoAttribution.tally`, worked out when the memo changes: reading it per packet copied
    /// the attribution (retains and releases) and cost `--format none` 25–60 ns a packet (bench/nflog.sh).
    @exclusivity(unchecked) private var memoTally = AttributionTally.noneOther
    /// Which interned attribution the memo holds: the intern generation (bumped whenever the
    /// intern table is emptied) above its index. Equal identities are the same attribution, so
    /// a caller that keeps the last one compares two integers instead of copying it.
    @exclusivity(unchecked) public private(set) var memoIdentity: UInt64 = .max
    /// The memo before it: a connection's two directions (a datagram logged at output, then at
    /// input; a segment and its ACK) alternate packet by packet, and each is the other's flow.
    /// A miss of the memo that hits this one swaps the two, without hashing.
    @exclusivity(unchecked) private var otherKey: FlowKey?
    @exclusivity(unchecked) private var otherAttribution = OwnerAttribution(confidence: .none)
    @exclusivity(unchecked) private var otherStoredAt: UInt32 = 0
    @exclusivity(unchecked) private var otherTally = AttributionTally.noneOther
    @exclusivity(unchecked) private var otherIdentity: UInt64 = .max
    private var internGeneration: UInt64 = 0

    /// Tests only: bytes of slot memory given back to the kernel (resizes and `removeAll()`),
    /// and how many times.
    private(set) var releasedBytes = 0
    private(set) var releases = 0

    /// Tests only: replaces the SipHash fingerprint, to force collisions (nil: the real one).
    private let fingerprintOverride: ((FlowKey) -> UInt64)?

    /// `lifetime` in nanoseconds (at least 1 ms is kept); `maximumFlows` at least 1;
    /// `maximumAttributions` 1...65,536.
    public convenience init(lifetime: UInt64 = FlowCache.defaultLifetime,
                            maximumFlows: Int = FlowCache.defaultMaximumFlows,
                            maximumAttributions: Int = FlowCache.defaultMaximumAttributions) {
        self.init(lifetime: lifetime, maximumFlows: maximumFlows, maximumAttributions: maximumAttributions,
                  fingerprint: nil)
    }

    /// `fingerprint`: a test hook (see `fingerprintOverride`); 0 is mapped to 1 like the real one.
    init(lifetime: UInt64 = FlowCache.defaultLifetime, maximumFlows: Int = FlowCache.defaultMaximumFlows,
         maximumAttributions: Int = FlowCache.defaultMaximumAttributions,
         fingerprint: ((FlowKey) -> UInt64)?) {
        fingerprintOverride = fingerprint
        lifetimeMilliseconds = UInt32(clamping: max(1, min(lifetime / 1_000_000, 1 << 30)))
        self.maximumFlows = min(max(1, maximumFlows), 1 << 28)
        // Indexes 0..<maximumAttributions must fit the slot's UInt16.
        self.maximumAttributions = min(max(1, maximumAttributions), Int(UInt16.max) + 1)
        // Room for maximumFlows at 3/4 load.
        maximumCapacity = Self.powerOfTwo(atLeast: max(16, (self.maximumFlows * 4 + 2) / 3))
        initialCapacity = min(maximumCapacity, 1024)
        (memory, slots) = Self.allocate(initialCapacity)
        mask = initialCapacity - 1
    }

    /// Slots in the table now.
    public var capacity: Int { slots.count }
    /// Distinct attributions held.
    public var attributionCount: Int { attributions.count }

    /// Memory the cache holds: the slots, and the intern table's entries (an attribution's
    /// strings and process array are shared with the events that carried it and not counted).
    public var bytesAllocated: Int {
        slots.count * MemoryLayout<Slot>.stride
            + attributions.capacity * MemoryLayout<OwnerAttribution>.stride
            + internIndex.capacity * (MemoryLayout<OwnerAttribution>.stride + MemoryLayout<UInt16>.stride + 1)
    }

    /// The attribution stored for `key` less than the lifetime before `now` (monotonic ns), or
    /// nil. Allocates nothing.
    public func lookup(_ key: FlowKey, now: UInt64) -> OwnerAttribution? {
        contains(key, now: now) ? memoAttribution : nil
    }

    /// Whether an attribution is stored for `key` less than the lifetime before `now`, without
    /// handing it out (a caller that only needs the flow resolved pays no retain/release).
    /// A hit becomes the memo.
    public func contains(_ key: FlowKey, now: UInt64) -> Bool {
        let nowMilliseconds = Self.milliseconds(now)
        if let memoKey, memoKey == key {
            guard isFresh(memoStoredAt, now: nowMilliseconds) else { return false }
            memoHits += 1
            return true
        }
        if let otherKey, otherKey == key {
            guard isFresh(otherStoredAt, now: nowMilliseconds) else { return false }
            swapMemos()
            memoHits += 1
            return true
        }
        let fingerprint = self.fingerprint(key)
        guard let index = find(fingerprint, Self.check(key)) else { return false }
        let slot = slots[index]
        guard isFresh(slot.storedAt, now: nowMilliseconds), Int(slot.attribution) < attributions.count else { return false }
        remember(key, attributions[Int(slot.attribution)], index: slot.attribution, storedAt: slot.storedAt)
        return true
    }

    /// How the summary line counts the attribution stored for `key` (see `contains`), or nil.
    /// Reads the memo's confidence (and for `none` its reason) without handing the
    /// attribution out.
    public func tally(_ key: FlowKey, now: UInt64) -> AttributionTally? {
        contains(key, now: now) ? memoTally : nil
    }

    /// Stores `attribution` for `key` at `now` (monotonic ns), replacing what was there. At
    /// `maximumFlows`, drops expired flows first, then the oldest ones (counted in `evictions`).
    public func insert(_ key: FlowKey, _ attribution: OwnerAttribution, now: UInt64) {
        let nowMilliseconds = Self.milliseconds(now)
        let interned: UInt16
        if let known = internIndex[attribution] {
            interned = known
        } else {
            if attributions.count >= maximumAttributions {
                // Rare (attributions repeat: one per process or reason); a full reset is
                // simpler than reference-counting them.
                evictions += count
                removeAll()
            }
            // < maximumAttributions ≤ 65,536 here, so it fits.
            interned = UInt16(truncatingIfNeeded: attributions.count)
            attributions.append(attribution)
            internIndex[attribution] = interned
        }
        let fingerprint = self.fingerprint(key)
        let check = Self.check(key)
        if let index = find(fingerprint, check) {
            slots[index].attribution = interned
            slots[index].storedAt = nowMilliseconds
        } else {
            if count >= maximumFlows {
                makeRoom(now: nowMilliseconds)
            } else if (count + 1) * 4 > slots.count * 3, slots.count < maximumCapacity {
                rehash(capacity: slots.count * 2)
            }
            place(Slot(fingerprint: fingerprint, attribution: interned, check: check, storedAt: nowMilliseconds))
            count += 1
        }
        remember(key, attribution, index: interned, storedAt: nowMilliseconds)
    }

    /// Forgets the flow `key` (nothing when it is not held), so its next packet is resolved
    /// again: its cached answer was made before something better was known.
    public func remove(_ key: FlowKey) {
        if memoKey == key { memoKey = nil }
        if otherKey == key { otherKey = nil }
        guard let index = find(fingerprint(key), Self.check(key)) else { return }
        remove(at: index)
    }

    /// Removes expired flows from the next `slots` slots (the whole table over successive
    /// calls), and shrinks the table when a full pass leaves it mostly empty. Call it
    /// periodically (the receive loop's tick); it bounds each call's work.
    public func sweep(now: UInt64, slots limit: Int = 262_144) {
        let nowMilliseconds = Self.milliseconds(now)
        let steps = min(max(1, limit), slots.count)
        if sweepCursor >= slots.count { sweepCursor = 0 }
        for _ in 0..<steps {
            removeOld(at: sweepCursor, olderThan: lifetimeMilliseconds, now: nowMilliseconds)
            sweepCursor += 1
            if sweepCursor == slots.count {
                sweepCursor = 0
                if slots.count > initialCapacity, count * 8 < slots.count {
                    rehash(capacity: max(initialCapacity, Self.powerOfTwo(atLeast: count * 2)))
                }
                break
            }
        }
        if memoKey != nil, !isFresh(memoStoredAt, now: nowMilliseconds) { memoKey = nil }
        if otherKey != nil, !isFresh(otherStoredAt, now: nowMilliseconds) { otherKey = nil }
    }

    /// Drops every flow and attribution; keeps the table's current size, but gives its memory
    /// back (the slots read as empty again and become resident as flows arrive).
    public func removeAll() {
        noteReleased(memory.releaseAll())
        count = 0
        attributions.removeAll(keepingCapacity: true)
        internIndex.removeAll(keepingCapacity: true)
        internGeneration &+= 1
        memoKey = nil
        otherKey = nil
    }

    // MARK: - Internals

    /// The slot holding both hashes, or nil. Slots with the same fingerprint but another check
    /// are other flows (a SipHash collision): probing goes on past them.
    private func find(_ fingerprint: UInt64, _ check: UInt16) -> Int? {
        var index = Int(truncatingIfNeeded: fingerprint) & mask
        while true {
            let stored = slots[index].fingerprint
            if stored == fingerprint, slots[index].check == check { return index }
            if stored == 0 { return nil }
            index = (index + 1) & mask
        }
    }

    /// The attribution the memo holds (the last flow looked up or stored): a copy.
    public var memoValue: OwnerAttribution { memoAttribution }
    /// How the summary line counts the memo's attribution.
    public var memoTallyValue: AttributionTally { memoTally }

    private func remember(_ key: FlowKey, _ attribution: OwnerAttribution, index: UInt16, storedAt: UInt32) {
        // The memo becomes the other one (moved, not copied), unless it is this flow's.
        if let current = memoKey, current != key {
            otherKey = current
            swap(&otherAttribution, &memoAttribution)
            otherIdentity = memoIdentity
            otherTally = memoTally
            otherStoredAt = memoStoredAt
        }
        memoKey = key
        memoIdentity = internGeneration << 16 | UInt64(index)
        memoAttribution = attribution
        memoTally = attribution.tally
        memoStoredAt = storedAt
    }

    private func swapMemos() {
        swap(&memoKey, &otherKey)
        swap(&memoAttribution, &otherAttribution)
        swap(&memoIdentity, &otherIdentity)
        swap(&memoTally, &otherTally)
        swap(&memoStoredAt, &otherStoredAt)
    }

    private func isFresh(_ storedAt: UInt32, now: UInt32) -> Bool {
        now &- storedAt < lifetimeMilliseconds
    }

    /// Called at `maximumFlows`: drops the expired flows; while that frees less than a quarter
    /// of the table, also the flows older than half, then a quarter of the lifetime, then all.
    /// Each pass is linear in the table, so freeing a quarter keeps it amortized over as many
    /// inserts.
    private func makeRoom(now: UInt32) {
        let target = maximumFlows - maximumFlows / 4
        memoKey = nil
        for age in [lifetimeMilliseconds, lifetimeMilliseconds / 2, lifetimeMilliseconds / 4, 0] {
            let before = count
            for index in 0..<slots.count { removeOld(at: index, olderThan: age, now: now) }
            if age < lifetimeMilliseconds { evictions += before - count }
            if count <= target { return }
        }
    }

    /// Removes the flow at `index` while it is at least `age` ms old (`age` 0: any flow); the
    /// backward shift may move a later flow into `index`, which is then checked too.
    private func removeOld(at index: Int, olderThan age: UInt32, now: UInt32) {
        while slots[index].fingerprint != 0, now &- slots[index].storedAt >= age {
            remove(at: index)
        }
    }

    /// Backward-shift deletion: moves each later flow of the probe run whose home slot is at or
    /// before the hole into it, so lookups never stop early at a gap.
    private func remove(at index: Int) {
        var hole = index
        var next = index
        while true {
            next = (next + 1) & mask
            let slot = slots[next]
            if slot.fingerprint == 0 { break }
            let home = Int(truncatingIfNeeded: slot.fingerprint) & mask
            if (next - home) & mask >= (next - hole) & mask {
                slots[hole] = slot
                hole = next
            }
        }
        slots[hole] = .empty
        count -= 1
    }

    /// Moves every flow into a new table of `capacity` slots, in old-slot order, giving the old
    /// table's memory back a stretch at a time as it empties. When doubling, the flow at old
    /// index i lands at i or i + old capacity (or a little past, probing; a probe run that had
    /// wrapped around the end lands near the end), so the new table fills as two sequential
    /// streams while the old one drains: the memory held stays near the new table's size.
    /// Halving is the same with the new table smaller.
    private func rehash(capacity: Int) {
        let old = slots
        let oldMemory = memory
        (memory, slots) = Self.allocate(capacity)
        mask = capacity - 1
        let stride = MemoryLayout<Slot>.stride
        withExtendedLifetime(oldMemory) {
            var start = 0
            while start < old.count {
                let end = min(old.count, start + Self.releaseStretch)
                for index in start..<end where old[index].fingerprint != 0 { place(old[index]) }
                noteReleased(oldMemory.release(start * stride..<end * stride))
                start = end
            }
        }
        sweepCursor = 0
    }

    /// Slots migrated between two releases of the old table: 64 KiB (16 pages of 4 KiB), so
    /// growing to 2^21 slots costs 256 madvise calls rather than 4,096, for at most 64 KiB held
    /// twice.
    private static let releaseStretch = max(AnonymousMemory.pageSize, 65_536) / MemoryLayout<Slot>.stride

    /// Puts `slot` in its home or the first empty slot after it (the flow is not in the table).
    @inline(__always)
    private func place(_ slot: Slot) {
        var index = Int(truncatingIfNeeded: slot.fingerprint) & mask
        while slots[index].fingerprint != 0 { index = (index + 1) & mask }
        slots[index] = slot
    }

    private func noteReleased(_ bytes: Int) {
        guard bytes > 0 else { return }
        releasedBytes += bytes
        releases += 1
    }

    /// `capacity` empty slots: fresh anonymous memory reads as all zeros, which is `Slot.empty`
    /// (checked in the tests), so nothing is written and no page is made resident here.
    private static func allocate(_ capacity: Int) -> (AnonymousMemory, UnsafeMutableBufferPointer<Slot>) {
        let memory = AnonymousMemory.zeroed(byteCount: capacity * MemoryLayout<Slot>.stride)
        let start = memory.baseAddress.bindMemory(to: Slot.self, capacity: capacity)
        return (memory, UnsafeMutableBufferPointer(start: start, count: capacity))
    }

    private func fingerprint(_ key: FlowKey) -> UInt64 {
        guard let fingerprintOverride else { return Self.fingerprint(key) }
        let hash = fingerprintOverride(key)
        return hash == 0 ? 1 : hash
    }

    /// The key's seeded SipHash; 0 marks an empty slot, so it becomes 1.
    static func fingerprint(_ key: FlowKey) -> UInt64 {
        let hash = UInt64(truncatingIfNeeded: key.hashValue)
        return hash == 0 ? 1 : hash
    }

    /// 16 bits of a hash unrelated to SipHash: each 64-bit word of the key is xored in and
    /// multiplied by an odd constant, then murmur3's fmix64 spreads the state before the top 16
    /// bits are taken. Unseeded on purpose: a false match needs the seeded fingerprint to collide
    /// first, which nobody outside can aim for.
    static func check(_ key: FlowKey) -> UInt16 {
        // The fixed-size fields carry flags for uid presence and the address families, so that
        // e.g. a v4 address and a v6 one with the same bits differ.
        let words = key.words
        var hash = mix(0x9E37_79B9_7F4A_7C15, words.0)
        hash = mix(hash, words.1)
        hash = mix(hash, words.2)
        hash = mix(hash, words.3)
        hash = mix(hash, words.4)
        hash = mix(hash, words.5)
        // fmix64 (MurmurHash3's finalizer).
        hash ^= hash >> 33
        hash &*= 0xFF51_AFD7_ED55_8CCD
        hash ^= hash >> 33
        hash &*= 0xC4CE_B9FE_1A85_EC53
        hash ^= hash >> 33
        return UInt16(truncatingIfNeeded: hash >> 48)
    }

    @inline(__always)
    private static func mix(_ hash: UInt64, _ word: UInt64) -> UInt64 {
        let product = (hash ^ word) &* 0x9FB2_1C65_1E98_DF25
        return product ^ (product >> 29)
    }

    private static func milliseconds(_ nanoseconds: UInt64) -> UInt32 {
        UInt32(truncatingIfNeeded: nanoseconds / 1_000_000)
    }

    private static func powerOfTwo(atLeast value: Int) -> Int {
        var result = 1
        while result < value { result <<= 1 }
        return result
    }
}
