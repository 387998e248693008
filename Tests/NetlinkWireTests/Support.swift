import Foundation
import NetlinkWire

/// A decoded item with the payload copied out, so tests can compare items after the callback.
enum DecodedItem: Equatable {
    case packet(NflogRecord, payload: [UInt8])
    case done
    case error(errno: Int32, sequence: UInt32)
    case malformed(NetlinkWireError.Code)
    case other(type: UInt16)

    var isMalformed: Bool {
        if case .malformed = self { return true }
        return false
    }
}

func hasMalformed(_ items: [DecodedItem]) -> Bool { items.contains { $0.isMalformed } }

/// Decodes `bytes` from an allocation of exactly `bytes.count` bytes and checks that every
/// payload view lies inside it. Returns the items and whether all views were in bounds.
func decodeAll(_ bytes: [UInt8]) -> (items: [DecodedItem], errors: [NetlinkWireError], viewsInBounds: Bool) {
    let storage = UnsafeMutableRawBufferPointer.allocate(byteCount: bytes.count, alignment: 8)
    defer { storage.deallocate() }
    storage.copyBytes(from: bytes)
    let batch = UnsafeRawBufferPointer(storage)
    var items: [DecodedItem] = []
    var errors: [NetlinkWireError] = []
    var inBounds = true
    NflogBatchDecoder.forEachItem(in: batch) { item in
        switch item {
        case .packet(let record, let payload):
            if payload.count > 0 {
                let start = payload.baseAddress.map { $0 - (batch.baseAddress ?? $0) } ?? -1
                if start < 0 || start + payload.count > batch.count { inBounds = false }
            }
            items.append(.packet(record, payload: Array(payload)))
        case .done: items.append(.done)
        case .error(let errno, let sequence): items.append(.error(errno: errno, sequence: sequence))
        case .malformed(let error):
            errors.append(error)
            items.append(.malformed(error.code))
        case .other(let type): items.append(.other(type: type))
        }
    }
    return (items, errors, inBounds)
}

/// Names of the recorded kernel fixtures (see Fixtures/README.md).
let fixtureNames = [
    "ack-bind", "error-eperm-second-bind", "udp4-nobody", "udp6-nobody-snaplen", "tcp-syn-nobody",
    "tcp-synack-no-owner", "icmp-echo-nobody", "icmp-unreachable-kernel", "udp4-input-no-prefix",
    "batch-5-udp4",
]

struct FixtureMissing: Error { let name: String }

func loadFixture(_ name: String) throws -> [UInt8] {
    guard let url = Bundle.module.url(forResource: name, withExtension: "bin", subdirectory: "Fixtures") else {
        throw FixtureMissing(name: name)
    }
    return [UInt8](try Data(contentsOf: url))
}

// Hand-built netlink bytes, independent of the module's writer. Host order is little-endian on
// every machine this project targets; the golden tests check that.

func hostBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value) { Array($0) } }
func beBytes<T: FixedWidthInteger>(_ value: T) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }

/// An nlattr with an explicit nla_len (defaults to the honest one), padded to 4.
func rawAttribute(_ type: UInt16, _ value: [UInt8], length: UInt16? = nil) -> [UInt8] {
    var bytes = hostBytes(length ?? UInt16(4 + value.count)) + hostBytes(type) + value
    while bytes.count % 4 != 0 { bytes.append(0) }
    return bytes
}

/// A netlink message with an explicit nlmsg_len (defaults to the honest one).
func rawMessage(type: UInt16, flags: UInt16 = 0, sequence: UInt32 = 0, body: [UInt8], length: UInt32? = nil) -> [UInt8] {
    hostBytes(length ?? UInt32(16 + body.count)) + hostBytes(type) + hostBytes(flags)
        + hostBytes(sequence) + hostBytes(UInt32(0)) + body
}

/// nfgenmsg for IPv4, group 7.
let nfgen7: [UInt8] = [2, 0, 0, 7]

/// SplitMix64: a seeded generator so fuzz failures reproduce.
struct SeededGenerator: RandomNumberGenerator {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
