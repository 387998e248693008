/// The bits of an owner (what the JSON and pcapng encoders compare to reuse the last owner's
/// encoded text): its ids, and its strings and process list by storage (pointer, count,
/// flags). Equal fingerprints mean equal owners as long as the storage is alive — the encoder
/// keeps the owner it fingerprinted; unequal ones may still be equal owners (a string rebuilt
/// elsewhere), which only costs encoding them again. Comparing 16 words is far cheaper than
/// comparing strings.
public struct OwnerFingerprint: Equatable, Sendable {
    @usableFromInline var ids: SIMD8<UInt64>
    @usableFromInline var references: SIMD8<UInt64>

    @inlinable @inline(__always)
    public init(_ owner: borrowing PacketOwner) {
        let user = Self.bits(owner.userName), group = Self.bits(owner.groupName)
        let path = Self.bits(owner.cgroupPath), unit = Self.bits(owner.unit)
        let attribution = owner.attribution
        let reason = Self.bits(attribution?.reason)
        let processes: UInt64 = attribution.map { list in
            list.processes.withUnsafeBufferPointer { UInt64(UInt(bitPattern: $0.baseAddress)) ^ UInt64($0.count) << 48 }
        } ?? 0
        // The attribution's own uid shares the confidence's word: it is part of what is printed.
        let confidence: UInt64 = attribution.map { Self.code($0.confidence) | ($0.uid.map { UInt64($0) + 1 } ?? 0) << 8 } ?? 0
        ids = SIMD8(owner.uid.map { UInt64($0) | 1 << 32 } ?? 0, owner.gid.map { UInt64($0) | 1 << 32 } ?? 0,
                    owner.cgroupID ?? 0, owner.cgroupID == nil ? 0 : 1, confidence, processes, reason.0, reason.1)
        references = SIMD8(user.0, user.1, group.0, group.1, path.0, path.1, unit.0, unit.1)
    }

    /// All sixteen words at once: the derived `==` compared lane by lane through SIMD's generic
    /// equality (86 instructions an event in the JSON encoder).
    @inlinable @inline(__always)
    public static func == (lhs: OwnerFingerprint, rhs: OwnerFingerprint) -> Bool {
        let difference = (lhs.ids ^ rhs.ids) | (lhs.references ^ rhs.references)
        let half = difference.lowHalf | difference.highHalf
        let quarter = half.lowHalf | half.highHalf
        return quarter[0] | quarter[1] == 0
    }

    /// A fingerprint no owner has (an id word of all ones: uids and gids fill 33 bits), for an
    /// encoder that has encoded nothing yet. Not an optional: testing an optional's tag after
    /// the 128-byte value was stored stalled the JSON encoder (3.6% of its CPU).
    public static let unmatched = OwnerFingerprint(ids: SIMD8(repeating: .max), references: SIMD8(repeating: .max))

    @inlinable
    init(ids: SIMD8<UInt64>, references: SIMD8<UInt64>) {
        self.ids = ids
        self.references = references
    }

    /// The 16 bytes of an optional String (its ABI on 64-bit platforms; a test checks the size).
    @inlinable @inline(__always)
    public static func bits(_ text: String?) -> (UInt64, UInt64) {
        withUnsafeBytes(of: text) { raw in
            // Unreachable on 64-bit platforms; a content hash keeps the fingerprint meaningful.
            guard raw.count >= 16 else { return (UInt64(bitPattern: Int64(text.hashValue)), 1) }
            return (raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self),
                    raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
        }
    }

    @inlinable
    static func code(_ confidence: OwnerAttribution.Confidence) -> UInt64 {
        switch confidence {
        case .exact: 1
        case .single: 2
        case .candidates: 3
        case .uid: 4
        case .none: 5
        case .program: 6
        case .flow: 7
        }
    }
}
