// Reading kernel counting's set (`OwnerCounterSet`): `nft -j list set inet TABLE owners` and
// `nft -j list counter inet TABLE owners_overflow`, parsed into totals per direction, uid and
// cgroup key. nft prints an element's key as {"concat": [iif, uid, mark]}: the input interface
// by name ("lo") or, for none, "0"; the uid and the cgroup key as numbers.

import Foundation

/// One kernel counter's totals since the element was created.
public struct OwnerCount: Sendable, Equatable {
    public var packets: UInt64
    public var bytes: UInt64

    public init(packets: UInt64 = 0, bytes: UInt64 = 0) {
        self.packets = packets
        self.bytes = bytes
    }
}

/// What one element counts: the direction, the socket's uid (nil: no full socket, or an inbound
/// packet the kernel had not matched to one) and the classified cgroup's key (0: none).
public struct OwnerCounterKey: Sendable, Hashable {
    public var inbound: Bool
    public var uid: UInt32?
    public var cgroupKey: UInt32

    public init(inbound: Bool, uid: UInt32?, cgroupKey: UInt32) {
        self.inbound = inbound
        self.uid = uid
        self.cgroupKey = cgroupKey
    }
}

/// The set's counters at one moment (elements of several input interfaces added up).
public struct OwnerCounterReading: Sendable, Equatable {
    public var counts: [OwnerCounterKey: OwnerCount]
    /// Packets the full set could not hold.
    public var overflow: OwnerCount

    public init(counts: [OwnerCounterKey: OwnerCount] = [:], overflow: OwnerCount = OwnerCount()) {
        self.counts = counts
        self.overflow = overflow
    }

    /// Parses nft's JSON for the set and for the overflow counter. Throws `.unexpectedOutput`
    /// naming what did not have the expected shape.
    public static func parse(setJSON: String, counterJSON: String) throws(RulesError) -> OwnerCounterReading {
        var reading = OwnerCounterReading()
        for object in try objects(setJSON, what: "the owners set") {
            guard let set = object["set"] as? [String: Any] else { continue }
            for item in set["elem"] as? [Any] ?? [] {
                guard let element = (item as? [String: Any])?["elem"] as? [String: Any],
                      let key = (element["val"] as? [String: Any])?["concat"] as? [Any], key.count == 3,
                      let uid = number(key[1]), let cgroup = number(key[2]), cgroup <= UInt64(UInt32.max),
                      let counter = element["counter"] as? [String: Any],
                      let packets = number(counter["packets"]), let bytes = number(counter["bytes"]) else {
                    throw RulesError(.unexpectedOutput, "nft listed an owners element nfowner cannot read: "
                                     + NftText.printable(String(describing: item).prefix(200).description))
                }
                let inbound = !(key[0] as? String == "0" || number(key[0]) == 0)
                let owner = OwnerCounterKey(inbound: inbound, uid: uid == UInt64(OwnerCounterSet.noUID) ? nil : UInt32(uid),
                                            cgroupKey: UInt32(cgroup))
                reading.counts[owner, default: OwnerCount()].packets &+= packets
                reading.counts[owner, default: OwnerCount()].bytes &+= bytes
            }
        }
        for object in try objects(counterJSON, what: "the overflow counter") {
            guard let counter = object["counter"] as? [String: Any] else { continue }
            reading.overflow = OwnerCount(packets: number(counter["packets"]) ?? 0, bytes: number(counter["bytes"]) ?? 0)
        }
        return reading
    }

    private static func objects(_ json: String, what: String) throws(RulesError) -> [[String: Any]] {
        guard let root = try? JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any],
              let items = root["nftables"] as? [[String: Any]] else {
            throw RulesError(.unexpectedOutput, "nft -j did not list \(what) as JSON")
        }
        return items
    }

    /// A non-negative integer from JSON (a number, or digits in a string).
    private static func number(_ value: Any?) -> UInt64? {
        if let integer = value as? Int { return integer >= 0 ? UInt64(integer) : nil }
        if let integer = value as? UInt64 { return integer }
        if let text = value as? String { return UInt64(text) }
        return nil
    }
}

extension NftRunner {
    /// The counters of kernel counting's set in table inet `table`.
    public func readOwnerCounters(table: String) throws(RulesError) -> OwnerCounterReading {
        let name = try NftText.validateIdentifier(table, what: "table name")
        let set = try runNft(["-j", "list", "set", "inet", name, OwnerCounterSet.name])
        guard set.status == 0 else { throw Self.classify(set, doing: "list the owners set of table inet \(name)") }
        let counter = try runNft(["-j", "list", "counter", "inet", name, OwnerCounterSet.overflowCounterName])
        guard counter.status == 0 else { throw Self.classify(counter, doing: "list the overflow counter of table inet \(name)") }
        return try OwnerCounterReading.parse(setJSON: set.stdout, counterJSON: counter.stdout)
    }
}
